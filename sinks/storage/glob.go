package storage

import (
	"path"
	"strings"
)

// Globs on object stores (gs://, memfs://) match '/'-separated name
// segments: within a segment '*', '?', '[...]' and '\' escapes mean what
// path.Match says (none of them crosses a '/'); a segment that is exactly
// "**" matches any number of segments, none included. Local globs are
// filepath.Glob's (no "**"). The scheme and, on gs://, the bucket are
// literal.

// globMeta reports whether s holds a glob character.
func globMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// globPrefix is the longest literal start of pattern: the prefix an object
// listing can ask for before matching.
func globPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// validGlob reports whether every segment of pattern is a well-formed
// path.Match pattern.
func validGlob(pattern string) error {
	for _, seg := range strings.Split(pattern, "/") {
		if seg == "**" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return err
		}
	}
	return nil
}

// matchGlob reports whether name matches pattern segment by segment
// (validGlob(pattern) must hold).
func matchGlob(pattern, name string) bool {
	return matchSegments(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(name); i++ {
				if matchSegments(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
