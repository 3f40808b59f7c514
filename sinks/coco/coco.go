// Package coco models the COCO "instances" annotation format (the
// instances_<split>.json files of COCO 2017 and the many data sets that
// copy it) and the detection result lists evaluated against it.
//
// Parse reads a file strictly: every known key must have the type COCO
// gives it, and a wrong type or a missing required key is an error naming
// the JSON path ("annotations[12].bbox: want 4 numbers, got 3"). Unknown
// keys are ignored at every level, because COCO derivatives add their own
// (LVIS, Objects365, person keypoints).
//
// Check then applies the format's semantic rules (ids unique, references
// resolved, boxes inside their image, masks the size of their image) and
// splits the data into an Index of consistent records and a list of
// Problems, one per refused record, so that a bad annotation costs that
// annotation and not the whole data set.
package coco

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Dataset is the content of an instances file.
type Dataset struct {
	Info        *Info        `json:"info,omitempty"`
	Licenses    []License    `json:"licenses,omitempty"`
	Images      []Image      `json:"images"`
	Annotations []Annotation `json:"annotations"`
	Categories  []Category   `json:"categories"`
}

// Info describes the data set as a whole.
type Info struct {
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
	Version     string `json:"version,omitempty"`
	Year        int    `json:"year,omitempty"`
	Contributor string `json:"contributor,omitempty"`
	DateCreated string `json:"date_created,omitempty"`
}

// License is one entry of the licenses list that images refer to.
type License struct {
	ID   int64  `json:"id"`
	Name string `json:"name,omitempty"`
	URL  string `json:"url,omitempty"`
}

// Image is one image record. FileName is relative to the split's image
// folder (e.g. "000000000139.jpg" under val2017/).
type Image struct {
	ID           int64  `json:"id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileName     string `json:"file_name"`
	License      int64  `json:"license,omitempty"`
	FlickrURL    string `json:"flickr_url,omitempty"`
	COCOURL      string `json:"coco_url,omitempty"`
	DateCaptured string `json:"date_captured,omitempty"`
}

// BBox is a box as COCO writes it: [x, y, width, height] in pixels, with
// (x, y) the top-left corner.
type BBox [4]float64

// Annotation is one object instance. Area is the mask area in pixels (for
// evaluation's small/medium/large ranges), IsCrowd marks a region of many
// objects (always 0 or 1 in valid data), Segmentation is nil for data sets
// with boxes only.
type Annotation struct {
	ID           int64         `json:"id"`
	ImageID      int64         `json:"image_id"`
	CategoryID   int64         `json:"category_id"`
	BBox         BBox          `json:"bbox"`
	Area         float64       `json:"area"`
	IsCrowd      int           `json:"iscrowd"`
	Segmentation *Segmentation `json:"segmentation,omitempty"`
}

// Category is one class. Ids need not be contiguous (COCO's run 1..90 with
// gaps for 80 classes).
type Category struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Supercategory string `json:"supercategory,omitempty"`
}

// Segmentation is an object mask, either as polygons (each a flat list x1,
// y1, x2, y2, ... in pixels) or as a run-length encoding. Exactly one of the
// two is set.
type Segmentation struct {
	Polygons [][]float64
	RLE      *RLE
}

// RLE is a binary mask of Size[0] rows by Size[1] columns stored as run
// lengths over the column-major pixel order, alternating runs of 0s and 1s
// and starting with 0s (pycocotools' layout).
type RLE struct {
	Size   [2]int // [height, width], the order COCO writes
	Counts []uint32
	// Compressed records that the counts came in pycocotools' compressed
	// string form; MarshalJSON writes them back the same way.
	Compressed bool
}

// Area returns the number of pixels set: the sum of the 1-runs.
func (r *RLE) Area() int64 {
	var a int64
	for i := 1; i < len(r.Counts); i += 2 {
		a += int64(r.Counts[i])
	}
	return a
}

// Pixels returns the sum of all runs, which equals height×width in a
// consistent mask.
func (r *RLE) Pixels() int64 {
	var a int64
	for _, c := range r.Counts {
		a += int64(c)
	}
	return a
}

// rleJSON is the wire form of an RLE: counts is a JSON array of numbers
// (uncompressed, as crowd regions in ground truth) or a string (compressed,
// as in result files).
type rleJSON struct {
	Size   *[]json.RawMessage `json:"size"`
	Counts json.RawMessage    `json:"counts"`
}

// MarshalJSON writes polygons as a list of lists and an RLE as
// {"size": [h, w], "counts": ...}.
func (s Segmentation) MarshalJSON() ([]byte, error) {
	if s.RLE == nil {
		if s.Polygons == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(s.Polygons)
	}
	var counts any = s.RLE.Counts
	if s.RLE.Compressed {
		counts = EncodeCounts(s.RLE.Counts)
	} else if s.RLE.Counts == nil {
		counts = []uint32{}
	}
	return json.Marshal(struct {
		Size   [2]int `json:"size"`
		Counts any    `json:"counts"`
	}{s.RLE.Size, counts})
}

// UnmarshalJSON reads either form; null leaves s empty. Errors are
// *PathError with a path relative to the segmentation value.
func (s *Segmentation) UnmarshalJSON(data []byte) error {
	data = bytes.TrimLeft(data, " \t\r\n")
	*s = Segmentation{}
	if len(data) == 0 {
		return &PathError{Msg: "empty value"}
	}
	if isNullJSON(data) {
		return nil
	}
	switch data[0] {
	case '[':
		// One pass for the common, valid case; the element-wise pass below
		// only runs to name the bad polygon.
		if err := json.Unmarshal(data, &s.Polygons); err == nil && !slices.ContainsFunc(s.Polygons, func(p []float64) bool { return p == nil }) {
			return nil
		}
		var raw []json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			return &PathError{Msg: err.Error()}
		}
		s.Polygons = make([][]float64, len(raw))
		for i, p := range raw {
			if err := json.Unmarshal(p, &s.Polygons[i]); err != nil || s.Polygons[i] == nil {
				return &PathError{Path: fmt.Sprintf("[%d]", i), Msg: "want a polygon (a list of numbers), got " + describe(p)}
			}
		}
		return nil
	case '{':
		var w rleJSON
		if err := json.Unmarshal(data, &w); err != nil {
			return typeError("", err)
		}
		rle := &RLE{}
		if w.Size == nil {
			return &PathError{Path: ".size", Msg: "missing or null (want [height, width])"}
		}
		if len(*w.Size) != 2 {
			return &PathError{Path: ".size", Msg: fmt.Sprintf("want [height, width], got %d numbers", len(*w.Size))}
		}
		for i, v := range *w.Size {
			if err := json.Unmarshal(v, &rle.Size[i]); err != nil || bytes.Equal(v, []byte("null")) {
				return &PathError{Path: fmt.Sprintf(".size[%d]", i), Msg: "want an integer, got " + describe(v)}
			}
		}
		c := bytes.TrimLeft(w.Counts, " \t\r\n")
		switch {
		case len(c) == 0 || bytes.Equal(c, []byte("null")):
			return &PathError{Path: ".counts", Msg: "missing or null (want a list of run lengths or a compressed string)"}
		case c[0] == '"':
			var str string
			if err := json.Unmarshal(c, &str); err != nil {
				return &PathError{Path: ".counts", Msg: err.Error()}
			}
			counts, err := DecodeCounts(str)
			if err != nil {
				return &PathError{Path: ".counts", Msg: err.Error()}
			}
			rle.Counts, rle.Compressed = counts, true
		case c[0] == '[':
			if err := json.Unmarshal(c, &rle.Counts); err != nil {
				return &PathError{Path: ".counts", Msg: "want run lengths (integers 0 to 4294967295): " + shortErr(err)}
			}
			if rle.Counts == nil {
				rle.Counts = []uint32{}
			}
		default:
			return &PathError{Path: ".counts", Msg: "want a list of run lengths or a compressed string, got " + describe(c)}
		}
		s.RLE = rle
		return nil
	}
	return &PathError{Msg: "want polygons (a list) or an RLE (an object), got " + describe(data)}
}
