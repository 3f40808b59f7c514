package configs

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownPreset is returned (wrapped) by [Preset], [PresetYAML] and
// [Load] for a preset name that does not exist.
var ErrUnknownPreset = errors.New("unknown preset")

// UnknownKeyError reports a key that is not part of the schema, with the
// closest valid key when one is plausibly meant.
type UnknownKeyError struct {
	Source     string // the config's name (file path, "preset:x"); "" for an override
	Key        string // full dotted key as written, e.g. MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZ
	Line       int    // 1-based line in Source; 0 when not from a file
	Suggestion string // closest valid dotted key, or ""
}

func (e *UnknownKeyError) Error() string {
	var b strings.Builder
	writeSource(&b, e.Source)
	b.WriteString("unknown key ")
	b.WriteString(e.Key)
	writeLine(&b, e.Line)
	if e.Suggestion != "" {
		b.WriteString("; did you mean ")
		b.WriteString(e.Suggestion)
		b.WriteString("?")
	}
	return b.String()
}

// TypeError reports a value whose type does not fit its key, or a value that
// is not a finite number where one is needed.
type TypeError struct {
	Source string // as in UnknownKeyError
	Key    string // full dotted key; list elements carry their index, e.g. DATA.MEAN[2]
	Line   int    // 1-based line; 0 when not from a file
	Want   string // what the key holds, e.g. "an integer"
	Got    string // what was found, e.g. `"abc"` or "a list"
}

func (e *TypeError) Error() string {
	var b strings.Builder
	writeSource(&b, e.Source)
	key := e.Key
	if key == "" {
		key = "top level"
	}
	b.WriteString(key)
	writeLine(&b, e.Line)
	fmt.Fprintf(&b, ": want %s, got %s", e.Want, e.Got)
	return b.String()
}

// DuplicateKeyError reports a key given twice in one mapping. PyYAML keeps
// the last value silently; sslight refuses, since one of the two is a
// mistake.
type DuplicateKeyError struct {
	Source    string
	Key       string // full dotted key
	Line      int    // the second occurrence
	FirstLine int    // the first occurrence
}

func (e *DuplicateKeyError) Error() string {
	var b strings.Builder
	writeSource(&b, e.Source)
	fmt.Fprintf(&b, "duplicate key %s (line %d; first given at line %d)", e.Key, e.Line, e.FirstLine)
	return b.String()
}

// ValidationError is one problem found by [Config.Validate]. Validate
// returns all problems at once, joined with errors.Join; use errors.As to
// get the first, or unwrap the join for all of them.
type ValidationError struct {
	Key     string // full dotted key the problem is about
	Problem string // what is wrong and what would be right
}

func (e *ValidationError) Error() string { return e.Key + ": " + e.Problem }

func writeSource(b *strings.Builder, src string) {
	if src != "" {
		b.WriteString(src)
		b.WriteString(": ")
	}
}

func writeLine(b *strings.Builder, line int) {
	if line > 0 {
		fmt.Fprintf(b, " (line %d)", line)
	}
}
