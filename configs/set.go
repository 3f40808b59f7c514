package configs

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Set overrides one key from a command-line flag: dottedKey is the full
// key as in YAML ("MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE") and value its
// text ("96"). Lists are written "[0.3,1.0]", "0.3,1.0" or "(0.3, 1.0)";
// booleans true/false/yes/no/on/off (any case); strings are taken
// verbatim (they must be valid UTF-8). An unknown key is an [*UnknownKeyError] with a suggestion and
// a bad value a [*TypeError]; c is unchanged on error. Set does not
// validate the result: call [Config.Validate] after the last override.
func (c *Config) Set(dottedKey, value string) error {
	s := theSchema()
	f := s.byDotted[dottedKey]
	if f == nil {
		return &UnknownKeyError{Key: dottedKey, Suggestion: s.suggest(dottedKey)}
	}
	if f.kind == kindSection {
		return fmt.Errorf("%s is a section, not a key; set one of its keys, e.g. %s", dottedKey, f.sub.fields[0].dotted)
	}
	fv := reflect.ValueOf(c).Elem().FieldByIndex(f.path)
	switch f.kind {
	case kindString:
		if !utf8.ValidString(value) {
			return &TypeError{Key: dottedKey, Want: "valid UTF-8 text", Got: strconv.Quote(clip(value))}
		}
		fv.SetString(value)
	case kindFloatList, kindIntList:
		parts := splitList(value)
		out := reflect.MakeSlice(fv.Type(), len(parts), len(parts))
		elem := kindFloat
		if f.kind == kindIntList {
			elem = kindInt
		}
		for i, p := range parts {
			if err := setScalar(out.Index(i), elem, p); err != nil {
				return &TypeError{Key: fmt.Sprintf("%s[%d]", dottedKey, i), Want: err.Error(), Got: strconv.Quote(clip(p))}
			}
		}
		fv.Set(out)
	default:
		if err := setScalar(fv, f.kind, strings.TrimSpace(value)); err != nil {
			return &TypeError{Key: dottedKey, Want: err.Error(), Got: strconv.Quote(clip(value))}
		}
	}
	return nil
}

// splitList splits "[a, b]", "(a, b)" or "a,b" into trimmed elements.
// "[]" and "" are the empty list.
func splitList(s string) []string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '[' && s[len(s)-1] == ']' || s[0] == '(' && s[len(s)-1] == ')') {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// setScalar parses s as kind k into fv. The error text is what was wanted.
func setScalar(fv reflect.Value, k kind, s string) error {
	switch k {
	case kindInt, kindInt64:
		bits := 64
		if k == kindInt {
			bits = strconv.IntSize
		}
		x, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return fmt.Errorf("%s", k.want())
		}
		fv.SetInt(x)
	case kindFloat:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("a finite number")
		}
		fv.SetFloat(x)
	case kindBool:
		b, ok := parseBool(s)
		if !ok {
			return fmt.Errorf("%s", k.want())
		}
		fv.SetBool(b)
	default:
		panic("configs: setScalar of kind " + strconv.Itoa(int(k)))
	}
	return nil
}

// parseBool reads the boolean words PyYAML knows, in any case.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}
