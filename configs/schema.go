package configs

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// kind is what a config key holds, as far as parsing and printing care.
type kind int

const (
	kindSection kind = iota
	kindString
	kindInt
	kindInt64
	kindFloat
	kindBool
	kindFloatList
	kindIntList
)

// want describes a kind for "want X, got Y" messages.
func (k kind) want() string {
	switch k {
	case kindSection:
		return "a mapping of keys"
	case kindString:
		return "a string"
	case kindInt, kindInt64:
		return "an integer"
	case kindFloat:
		return "a number"
	case kindBool:
		return "true or false"
	case kindFloatList:
		return "a list of numbers such as [0.3, 1.0]"
	case kindIntList:
		return "a list of integers such as [2, 6]"
	}
	return "?"
}

// fieldInfo is one key of the schema: a section or a leaf.
type fieldInfo struct {
	name   string       // the key as written in YAML, e.g. LOCAL_CROP_SIZE
	dotted string       // full dotted key, e.g. MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE
	path   []int        // reflect field index path from Config
	kind   kind         //
	sub    *sectionInfo // the keys of a section; nil for a leaf
}

// sectionInfo is a mapping level of the schema (the root or a section).
type sectionInfo struct {
	fields []*fieldInfo // declaration order, which is the reference's order
	byName map[string]*fieldInfo
}

// schema is the Config type seen as YAML keys. It is derived once from the
// struct tags, so the tags are the single source of truth for key names.
type schema struct {
	root      *sectionInfo
	byDotted  map[string]*fieldInfo
	leaves    []*fieldInfo // every leaf, declaration order
	names     []string     // every dotted name (sections and leaves), for suggestions
	lowerName []string     // names, lower-cased
}

var theSchema = sync.OnceValue(func() *schema {
	s := &schema{byDotted: map[string]*fieldInfo{}}
	s.root = s.build(reflect.TypeFor[Config](), "", nil)
	return s
})

// build walks a struct type. Unsupported field types are programmer errors
// (the Config tree is fixed at compile time), so they panic; every test
// touches the schema, which keeps such a panic out of releases.
func (s *schema) build(t reflect.Type, prefix string, path []int) *sectionInfo {
	sec := &sectionInfo{byName: map[string]*fieldInfo{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("yaml")
		if name == "" || name == "-" {
			panic(fmt.Sprintf("configs: field %s.%s has no yaml tag", t.Name(), sf.Name))
		}
		f := &fieldInfo{
			name:   name,
			dotted: joinKey(prefix, name),
			path:   append(append([]int(nil), path...), i),
		}
		switch {
		case sf.Type.Kind() == reflect.Struct:
			f.kind = kindSection
		case sf.Type.Kind() == reflect.String:
			f.kind = kindString
		case sf.Type.Kind() == reflect.Int:
			f.kind = kindInt
		case sf.Type.Kind() == reflect.Int64:
			f.kind = kindInt64
		case sf.Type.Kind() == reflect.Float64:
			f.kind = kindFloat
		case sf.Type.Kind() == reflect.Bool:
			f.kind = kindBool
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Float64:
			f.kind = kindFloatList
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Int:
			f.kind = kindIntList
		default:
			panic(fmt.Sprintf("configs: field %s has unsupported type %s", f.dotted, sf.Type))
		}
		if _, dup := sec.byName[name]; dup {
			panic("configs: duplicate key " + f.dotted)
		}
		sec.fields = append(sec.fields, f)
		sec.byName[name] = f
		s.byDotted[f.dotted] = f
		s.names = append(s.names, f.dotted)
		s.lowerName = append(s.lowerName, strings.ToLower(f.dotted))
		if f.kind == kindSection {
			f.sub = s.build(sf.Type, f.dotted, f.path)
		} else {
			s.leaves = append(s.leaves, f)
		}
	}
	return sec
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// Keys returns every leaf key of the schema as a full dotted name
// (e.g. "MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE"), in the reference's
// order. These are the names [Config.Set] accepts.
func Keys() []string {
	s := theSchema()
	out := make([]string, len(s.leaves))
	for i, f := range s.leaves {
		out[i] = f.dotted
	}
	return out
}

// suggest returns the valid dotted name closest to key (Levenshtein
// distance, ignoring case), or "" when nothing is close enough to be a
// plausible typo: more than a quarter of the key's characters would have
// to change. Ties go to the name that comes first in the schema.
func (s *schema) suggest(key string) string {
	lower := strings.ToLower(key)
	best, bestD := "", -1
	for i, n := range s.lowerName {
		d := levenshtein(lower, n)
		if bestD < 0 || d < bestD {
			best, bestD = s.names[i], d
		}
	}
	if bestD < 0 || bestD*4 > len(key) {
		return ""
	}
	return best
}

// levenshtein is the edit distance (insertions, deletions, substitutions)
// between a and b, counted in bytes: keys are ASCII.
func levenshtein(a, b string) int {
	if len(a) < len(b) {
		a, b = b, a
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
