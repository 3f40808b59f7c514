package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxProblems bounds how many errors one Parse reports, so a garbage file
// gives a readable message rather than thousands of lines.
const maxProblems = 20

// Parse reads an SSLight YAML config strictly: it starts from [Default] and
// overlays every key in data. name identifies data in error messages
// (usually the file path). Every problem found is reported, at most 20, as
// [*UnknownKeyError], [*TypeError] or [*DuplicateKeyError] values joined
// with errors.Join (a single problem is returned as is); YAML syntax errors
// are returned wrapped.
//
// Accepted values follow the reference's loader (PyYAML + yacs) where that
// is unambiguous: True/False and yes/no/on/off are booleans, an integer is
// accepted where a float is expected, and an empty value ("KEY:") is the
// empty string for string keys. Non-finite numbers (.nan, .inf) are
// rejected. Parse does not call [Config.Validate]: overrides usually come
// next.
func Parse(data []byte, name string) (*Config, error) {
	cfg := Default()
	if err := cfg.overlay(data, name); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Load reads a config from path, which is one of
//
//   - "preset:<name>": an embedded preset (see [PresetNames]);
//   - a local file path;
//   - a bare preset name such as "dino_cnn_sslight" (or with ".yaml"),
//     used only when no file of that name exists, so a local file always
//     wins.
func Load(path string) (*Config, error) {
	if name, ok := strings.CutPrefix(path, "preset:"); ok {
		return Preset(name)
	}
	data, err := os.ReadFile(path)
	if err == nil {
		if empty(data) {
			// An empty file would silently train the defaults (vit_tiny at
			// 224/96), almost never what its author meant.
			return nil, fmt.Errorf("load config %s: the file is empty or holds only comments; write the keys to change, or name a preset (%s)",
				path, strings.Join(PresetNames(), ", "))
		}
		return Parse(data, path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		if _, perr := PresetYAML(path); perr == nil {
			return Preset(path)
		}
		return nil, fmt.Errorf("load config %s: %w (and no preset has that name; presets: %s)",
			path, err, strings.Join(PresetNames(), ", "))
	}
	return nil, fmt.Errorf("load config %s: %w", path, err)
}

// empty reports whether data holds no YAML document (nothing, blanks or
// comments only).
func empty(data []byte) bool {
	var doc yaml.Node
	return errors.Is(yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc), io.EOF)
}

// overlay parses data and writes every key it sets into c.
func (c *Config) overlay(data []byte, name string) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file or only comments: the defaults
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return fmt.Errorf("%s: more than one YAML document (the second starts at line %d); a config is one document",
			name, extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	root = deref(root)
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil // "---" and nothing else
	}
	d := &decoder{src: name}
	d.section(root, theSchema().root, "", reflect.ValueOf(c).Elem())
	return d.err()
}

// decoder collects the problems of one document.
type decoder struct {
	src       string
	errs      []error
	truncated bool
}

func (d *decoder) fail(err error) {
	if len(d.errs) >= maxProblems {
		d.truncated = true
		return
	}
	d.errs = append(d.errs, err)
}

func (d *decoder) err() error {
	switch {
	case len(d.errs) == 0:
		return nil
	case len(d.errs) == 1:
		return d.errs[0]
	}
	errs := d.errs
	if d.truncated {
		errs = append(errs, fmt.Errorf("%s: more problems not shown", d.src))
	}
	return errors.Join(errs...)
}

func (d *decoder) typeErr(key string, n *yaml.Node, want string) {
	d.fail(&TypeError{Source: d.src, Key: key, Line: n.Line, Want: want, Got: describe(n)})
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// section decodes a mapping node into the struct v described by sec.
func (d *decoder) section(n *yaml.Node, sec *sectionInfo, prefix string, v reflect.Value) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		d.typeErr(prefix, n, kindSection.want())
		return
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(&TypeError{Source: d.src, Key: prefix, Line: k.Line, Want: "plain key names", Got: describe(k) + " as a key"})
			continue
		}
		key := joinKey(prefix, k.Value)
		f := sec.byName[k.Value]
		if f == nil {
			d.fail(&UnknownKeyError{Source: d.src, Key: key, Line: k.Line, Suggestion: theSchema().suggest(key)})
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(&DuplicateKeyError{Source: d.src, Key: key, Line: k.Line, FirstLine: first})
			continue
		}
		seen[k.Value] = k.Line
		fv := v.Field(f.path[len(f.path)-1])
		if f.kind == kindSection {
			d.section(val, f.sub, f.dotted, fv)
			continue
		}
		d.leaf(val, f, fv)
	}
}

// leaf decodes one value node into fv. fv is only written when the whole
// value is valid.
func (d *decoder) leaf(n *yaml.Node, f *fieldInfo, fv reflect.Value) {
	n = deref(n)
	switch f.kind {
	case kindFloatList, kindIntList:
		if n.Kind != yaml.SequenceNode {
			d.typeErr(f.dotted, n, f.kind.want())
			return
		}
		elem := kindFloat
		if f.kind == kindIntList {
			elem = kindInt
		}
		out := reflect.MakeSlice(fv.Type(), len(n.Content), len(n.Content))
		ok := true
		for i, e := range n.Content {
			e = deref(e)
			key := fmt.Sprintf("%s[%d]", f.dotted, i)
			if !d.scalar(e, elem, key, out.Index(i)) {
				ok = false
			}
		}
		if ok {
			fv.Set(out)
		}
	default:
		d.scalar(n, f.kind, f.dotted, fv)
	}
}

// scalar decodes a scalar node of kind k into fv and reports whether it did.
func (d *decoder) scalar(n *yaml.Node, k kind, key string, fv reflect.Value) bool {
	if n.Kind != yaml.ScalarNode {
		d.typeErr(key, n, k.want())
		return false
	}
	tag := n.ShortTag()
	switch k {
	case kindString:
		switch tag {
		case "!!str":
			fv.SetString(n.Value)
		case "!!null":
			fv.SetString("") // PyYAML reads "KEY:" as None, which the reference treats as empty
		default:
			d.typeErr(key, n, "a string (quote values that look like numbers or booleans)")
			return false
		}
	case kindInt, kindInt64:
		var x int64
		if tag != "!!int" || n.Decode(&x) != nil {
			d.typeErr(key, n, k.want())
			return false
		}
		if k == kindInt && int64(int(x)) != x {
			d.typeErr(key, n, "an integer that fits in int")
			return false
		}
		fv.SetInt(x)
	case kindFloat:
		var x float64
		if (tag != "!!float" && tag != "!!int") || n.Decode(&x) != nil {
			d.typeErr(key, n, k.want())
			return false
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			d.typeErr(key, n, "a finite number")
			return false
		}
		fv.SetFloat(x)
	case kindBool:
		var b bool
		switch {
		case tag == "!!bool" && n.Decode(&b) == nil:
		case tag == "!!str" && n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) == 0 && isYAML11Bool(n.Value):
			b, _ = parseBool(n.Value)
		default:
			d.typeErr(key, n, k.want())
			return false
		}
		fv.SetBool(b)
	default:
		panic("configs: scalar of kind " + strconv.Itoa(int(k)))
	}
	return true
}

// isYAML11Bool reports whether PyYAML (YAML 1.1) reads the plain scalar s
// as a boolean although YAML 1.2 does not.
func isYAML11Bool(s string) bool {
	switch s {
	case "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF":
		return true
	}
	return false
}

// describe names what a node holds, for "got ..." in messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "an empty value"
		case "!!str":
			return strconv.Quote(clip(n.Value))
		case "!!int":
			return "the integer " + clip(n.Value)
		case "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + clip(n.Value)
		}
		return clip(n.Value) + " (" + n.ShortTag() + ")"
	}
	return "an unexpected YAML node"
}

// clip shortens long values in messages.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
