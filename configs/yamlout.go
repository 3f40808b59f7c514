package configs

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// YAML writes the whole config (every key, in the reference's order) as a
// YAML document that [Parse] reads back to an equal config, and that the
// reference's loader (PyYAML + yacs) accepts too: floats always carry a
// decimal point and a signed exponent when they have one (1.0e-06 style is
// what PyYAML needs to see a float), lists are in flow style like the
// reference's files, and strings are quoted when they would otherwise read
// as another type. It fails only for a non-finite float or a string that is
// not UTF-8, which Parse and Set never produce.
func (c *Config) YAML() ([]byte, error) {
	root, err := sectionNode(theSchema().root, reflect.ValueOf(c).Elem())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("write config YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write config YAML: %w", err)
	}
	return buf.Bytes(), nil
}

func sectionNode(sec *sectionInfo, v reflect.Value) (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, f := range sec.fields {
		fv := v.Field(f.path[len(f.path)-1])
		if v.Type().Field(f.path[len(f.path)-1]).Tag.Get("canonical") == "-" && fv.IsZero() {
			continue // a run-time extension left unset (TRAIN.DEVICE): the reference knows no such key
		}
		var val *yaml.Node
		var err error
		switch f.kind {
		case kindSection:
			val, err = sectionNode(f.sub, fv)
		case kindFloatList, kindIntList:
			val = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
			for i := range fv.Len() {
				var e *yaml.Node
				e, err = scalarNode(f.dotted, fv.Index(i))
				if err != nil {
					break
				}
				val.Content = append(val.Content, e)
			}
		default:
			val, err = scalarNode(f.dotted, fv)
		}
		if err != nil {
			return nil, err
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.name}
		n.Content = append(n.Content, key, val)
	}
	return n, nil
}

func scalarNode(key string, v reflect.Value) (*yaml.Node, error) {
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return nil, fmt.Errorf("write %s: %q is not valid UTF-8", key, v.String())
		}
		str := v.String()
		style := yaml.DoubleQuotedStyle
		if plainYAMLString(str) {
			style = 0
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: style, Value: str}, nil
	case reflect.Int, reflect.Int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}, nil
	case reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool())}, nil
	case reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("write %s: %v is not a finite number", key, f)
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: yamlFloat(f)}, nil
	}
	panic("configs: YAML of unsupported kind " + v.Kind().String())
}

// yamlFloat writes f exactly (shortest round-trip digits) in a form both
// YAML 1.2 and PyYAML's YAML 1.1 resolver read as a float: a decimal point
// is always present, and exponents are signed.
func yamlFloat(f float64) string {
	s := string(appendCanonicalFloat(nil, f))
	mant, exp, hasExp := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if !hasExp {
		return mant
	}
	return mant + "e" + exp // ES6 exponents carry their sign already
}

// plainYAMLString reports whether s can be written unquoted and still read
// back as the same string by YAML 1.2 and by PyYAML's YAML 1.1 resolver:
// a letter or underscore, then letters, digits and _ . / -, and not one of
// the words either version reads as a boolean or null. Everything else is
// double-quoted, which keeps every character (yaml.v3 drops a leading
// newline in the literal block style it would otherwise pick).
func plainYAMLString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '.' || c == '/' || c == '-')) {
			return false
		}
	}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "true", "false", "on", "off", "null":
		return false
	}
	return true
}
