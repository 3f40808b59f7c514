package coco

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PathError is a structural error in a COCO file: a value of the wrong type,
// a missing required key, malformed JSON. Path is the JSON path of the
// offending value ("annotations[12].bbox"); Name is the file.
type PathError struct {
	Name string
	Path string
	Msg  string
}

// Error renders "coco: <file>: <path>: <what is wrong>".
func (e *PathError) Error() string {
	var b strings.Builder
	b.WriteString("coco: ")
	if e.Name != "" {
		b.WriteString(e.Name)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// at returns err with its path prefixed by prefix and its file named.
func at(name, prefix string, err error) error {
	var pe *PathError
	if errors.As(err, &pe) {
		return &PathError{Name: name, Path: prefix + pe.Path, Msg: pe.Msg}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &PathError{Name: name, Path: prefix, Msg: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &PathError{Name: name, Path: prefix, Msg: "unexpected end of file"}
	}
	if te := typeError("", err); te != err {
		return at(name, prefix, te)
	}
	return &PathError{Name: name, Path: prefix, Msg: err.Error()}
}

// typeError turns a *json.UnmarshalTypeError into a *PathError whose path
// is the Go field path, which here matches the JSON keys ("bbox",
// "segmentation.size"). Other errors come back unchanged.
func typeError(prefix string, err error) error {
	var ute *json.UnmarshalTypeError
	if !errors.As(err, &ute) {
		return err
	}
	p := prefix
	if ute.Field != "" {
		p += "." + ute.Field
	}
	return &PathError{Path: p, Msg: fmt.Sprintf("want %s, got JSON %s", goTypeName(ute.Type.String()), ute.Value)}
}

// goTypeName says what a Go target type means in JSON terms.
func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "*int"):
		return "an integer"
	case strings.HasPrefix(t, "uint"):
		return "a non-negative integer"
	case strings.HasPrefix(t, "float"), strings.HasPrefix(t, "*float"):
		return "a number"
	case t == "string", t == "*string":
		return "a string"
	case strings.HasPrefix(t, "[]"), strings.HasPrefix(t, "*[]"):
		return "a list"
	}
	return "an object"
}

// describe names the JSON type of a raw value, for error messages.
func describe(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return "nothing"
	}
	switch s[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "the number " + truncate(s, 24)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// shortErr strips encoding/json's "json: " prefix and Go type details.
func shortErr(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return "got JSON " + ute.Value
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Wire forms with pointers for the keys COCO requires, so that an absent
// key is told apart from a zero value.
type (
	imageJSON struct {
		ID           *int64  `json:"id"`
		Width        *int    `json:"width"`
		Height       *int    `json:"height"`
		FileName     *string `json:"file_name"`
		License      int64   `json:"license"`
		FlickrURL    string  `json:"flickr_url"`
		COCOURL      string  `json:"coco_url"`
		DateCaptured string  `json:"date_captured"`
	}
	annotationJSON struct {
		ID           *int64     `json:"id"`
		ImageID      *int64     `json:"image_id"`
		CategoryID   *int64     `json:"category_id"`
		BBox         *[]float64 `json:"bbox"`
		Area         *float64   `json:"area"`
		IsCrowd      int        `json:"iscrowd"`
		Segmentation segField   `json:"segmentation"`
	}
	categoryJSON struct {
		ID            *int64  `json:"id"`
		Name          *string `json:"name"`
		Supercategory string  `json:"supercategory"`
	}
	licenseJSON struct {
		ID   *int64 `json:"id"`
		Name string `json:"name"`
		URL  string `json:"url"`
	}
	resultJSON struct {
		ImageID      *int64     `json:"image_id"`
		CategoryID   *int64     `json:"category_id"`
		BBox         *[]float64 `json:"bbox"`
		Score        *float64   `json:"score"`
		Segmentation segField   `json:"segmentation"`
	}
)

// segField decodes the "segmentation" key, prefixing the key to the
// Segmentation's relative error paths; null leaves it nil.
type segField struct{ s *Segmentation }

func (f *segField) UnmarshalJSON(data []byte) error {
	if isNullJSON(data) {
		f.s = nil
		return nil
	}
	f.s = new(Segmentation)
	if err := f.s.UnmarshalJSON(data); err != nil {
		var pe *PathError
		if errors.As(err, &pe) {
			return &PathError{Path: ".segmentation" + pe.Path, Msg: pe.Msg}
		}
		return &PathError{Path: ".segmentation", Msg: err.Error()}
	}
	return nil
}

func isNullJSON(data []byte) bool {
	return strings.TrimSpace(string(data)) == "null"
}

// missing reports the first required key whose pointer is nil.
func missing(keys ...any) string {
	for i := 0; i+1 < len(keys); i += 2 {
		if isNil(keys[i+1]) {
			return keys[i].(string)
		}
	}
	return ""
}

func isNil(p any) bool {
	switch p := p.(type) {
	case *int64:
		return p == nil
	case *int:
		return p == nil
	case *string:
		return p == nil
	case *float64:
		return p == nil
	case *[]float64:
		return p == nil
	}
	panic(fmt.Sprintf("coco: isNil of %T", p))
}

func missingErr(key string) error {
	return &PathError{Path: "." + key, Msg: "missing or null"}
}

func toBBox(b []float64) (BBox, error) {
	if len(b) != 4 {
		return BBox{}, &PathError{Path: ".bbox", Msg: fmt.Sprintf("want 4 numbers [x, y, width, height], got %d", len(b))}
	}
	return BBox{b[0], b[1], b[2], b[3]}, nil
}

// Parse reads an instances file. name is used in errors. It keeps the file's
// record order; see Check for the semantic rules.
func Parse(r io.Reader, name string) (*Dataset, error) {
	dec := json.NewDecoder(r)
	d := &Dataset{}
	seen := map[string]bool{}
	err := object(dec, func(key string) error {
		if seen[key] {
			return &PathError{Path: key, Msg: "duplicate key"}
		}
		seen[key] = true
		switch key {
		case "info":
			var info *Info
			if err := dec.Decode(&info); err != nil {
				return at("", "info", err)
			}
			d.Info = info
			return nil
		case "licenses":
			return array(dec, "licenses", func() error {
				var w licenseJSON
				if err := dec.Decode(&w); err != nil {
					return err
				}
				if w.ID == nil {
					return missingErr("id")
				}
				d.Licenses = append(d.Licenses, License{ID: *w.ID, Name: w.Name, URL: w.URL})
				return nil
			})
		case "images":
			d.Images = []Image{}
			return array(dec, "images", func() error {
				var w imageJSON
				if err := dec.Decode(&w); err != nil {
					return err
				}
				if k := missing("id", w.ID, "width", w.Width, "height", w.Height, "file_name", w.FileName); k != "" {
					return missingErr(k)
				}
				d.Images = append(d.Images, Image{ID: *w.ID, Width: *w.Width, Height: *w.Height, FileName: *w.FileName,
					License: w.License, FlickrURL: w.FlickrURL, COCOURL: w.COCOURL, DateCaptured: w.DateCaptured})
				return nil
			})
		case "annotations":
			d.Annotations = []Annotation{}
			return array(dec, "annotations", func() error {
				var w annotationJSON
				if err := dec.Decode(&w); err != nil {
					return err
				}
				if k := missing("id", w.ID, "image_id", w.ImageID, "category_id", w.CategoryID, "bbox", w.BBox, "area", w.Area); k != "" {
					return missingErr(k)
				}
				box, err := toBBox(*w.BBox)
				if err != nil {
					return err
				}
				d.Annotations = append(d.Annotations, Annotation{ID: *w.ID, ImageID: *w.ImageID, CategoryID: *w.CategoryID,
					BBox: box, Area: *w.Area, IsCrowd: w.IsCrowd, Segmentation: w.Segmentation.s})
				return nil
			})
		case "categories":
			d.Categories = []Category{}
			return array(dec, "categories", func() error {
				var w categoryJSON
				if err := dec.Decode(&w); err != nil {
					return err
				}
				if k := missing("id", w.ID, "name", w.Name); k != "" {
					return missingErr(k)
				}
				d.Categories = append(d.Categories, Category{ID: *w.ID, Name: *w.Name, Supercategory: w.Supercategory})
				return nil
			})
		}
		// Unknown keys are skipped: COCO derivatives add their own.
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return at("", key, err)
		}
		return nil
	})
	if err != nil {
		return nil, withName(name, err)
	}
	if d.Images == nil {
		return nil, &PathError{Name: name, Path: "images", Msg: "missing (an instances file lists its images)"}
	}
	// Test-set files (image_info_test2017.json) have no annotations; an
	// empty list keeps Dataset's JSON form parseable by Parse again.
	if d.Annotations == nil {
		d.Annotations = []Annotation{}
	}
	if d.Categories == nil {
		d.Categories = []Category{}
	}
	return d, nil
}

// Result is one detection in a result list (the format COCO evaluation
// loads with loadRes): a box, a mask or both, with a confidence score.
type Result struct {
	ImageID      int64         `json:"image_id"`
	CategoryID   int64         `json:"category_id"`
	BBox         *BBox         `json:"bbox,omitempty"`
	Score        float64       `json:"score"`
	Segmentation *Segmentation `json:"segmentation,omitempty"`
}

// ParseResults reads a result list: a JSON array of Result objects. Each
// needs image_id, category_id, score and at least one of bbox and
// segmentation.
func ParseResults(r io.Reader, name string) ([]Result, error) {
	dec := json.NewDecoder(r)
	out := []Result{}
	err := array(dec, "", func() error {
		var w resultJSON
		if err := dec.Decode(&w); err != nil {
			return err
		}
		if k := missing("image_id", w.ImageID, "category_id", w.CategoryID, "score", w.Score); k != "" {
			return missingErr(k)
		}
		res := Result{ImageID: *w.ImageID, CategoryID: *w.CategoryID, Score: *w.Score, Segmentation: w.Segmentation.s}
		if w.BBox != nil {
			box, err := toBBox(*w.BBox)
			if err != nil {
				return err
			}
			res.BBox = &box
		}
		if res.BBox == nil && res.Segmentation == nil {
			return &PathError{Msg: "has neither bbox nor segmentation"}
		}
		out = append(out, res)
		return nil
	})
	if err == nil {
		err = atEnd(dec)
	}
	if err != nil {
		return nil, withName(name, err)
	}
	return out, nil
}

func withName(name string, err error) error {
	var pe *PathError
	if errors.As(err, &pe) {
		return &PathError{Name: name, Path: pe.Path, Msg: pe.Msg}
	}
	return at(name, "", err)
}

// object reads a top-level JSON object, calling field for each key with
// the decoder positioned at its value, then checks nothing follows it.
func object(dec *json.Decoder, field func(key string) error) error {
	tok, err := dec.Token()
	if err != nil {
		return at("", "", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &PathError{Msg: fmt.Sprintf("want a JSON object at the top level, got %s", tokenName(tok))}
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return at("", "", err)
		}
		key, ok := tok.(string)
		if !ok {
			return &PathError{Msg: fmt.Sprintf("want an object key, got %s", tokenName(tok))}
		}
		if err := field(key); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return at("", "", err)
	}
	return atEnd(dec)
}

// atEnd checks that only white space follows the top-level value.
func atEnd(dec *json.Decoder) error {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return at("", "", err)
	}
	return &PathError{Msg: fmt.Sprintf("unexpected %s after the top-level value", tokenName(tok))}
}

// array reads a JSON array at path, calling elem for each element with the
// decoder positioned at it; errors from elem get "path[i]" prefixed.
func array(dec *json.Decoder, path string, elem func() error) error {
	tok, err := dec.Token()
	if err != nil {
		return at("", path, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return &PathError{Path: path, Msg: fmt.Sprintf("want a list, got %s", tokenName(tok))}
	}
	for i := 0; dec.More(); i++ {
		if err := elem(); err != nil {
			p := fmt.Sprintf("%s[%d]", path, i)
			if te := typeError(p, err); te != err {
				return te
			}
			return at("", p, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return at("", path, err)
	}
	return nil
}

// tokenName describes a json.Token for error messages.
func tokenName(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		if t == '[' {
			return "a list"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}
