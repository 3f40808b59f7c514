package eval

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// StratifiedSubset picks the labelled samples of a semi-supervised run on a
// data set without published subset lists: from every class it takes
// round(fraction · the class's size) samples (half away from zero), at least
// one, and returns their indices into labels in increasing order.
//
// The choice is a function of (seed, sample index) only: each sample gets a
// pseudo-random key from a hash of the two and a class keeps its samples
// with the smallest keys. So the subset does not depend on the machine or
// Go version, and for one seed a smaller fraction's subset is contained in
// a larger one's (the 1% labels are among the 10% labels, as in the
// reference's ImageNet lists).
//
// Every class in [0, classes) must have a sample; an empty class cannot
// contribute one and is reported as an error naming it.
func StratifiedSubset(labels []int, classes int, fraction float64, seed uint64) ([]int, error) {
	switch {
	case classes <= 0:
		return nil, fmt.Errorf("stratified subset: %d classes: must be positive: %w", classes, ErrInput)
	case !(fraction > 0 && fraction <= 1):
		return nil, fmt.Errorf("stratified subset: fraction %v outside (0, 1]: %w", fraction, ErrInput)
	case len(labels) == 0:
		return nil, fmt.Errorf("stratified subset: no labels: %w", ErrInput)
	}
	type keyed struct {
		key uint64
		i   int
	}
	byClass := make([][]keyed, classes)
	for i, l := range labels {
		if l < 0 || l >= classes {
			return nil, fmt.Errorf("stratified subset: label %d of sample %d outside [0, %d): %w", l, i, classes, ErrInput)
		}
		byClass[l] = append(byClass[l], keyed{sampleKey(seed, uint64(i)), i})
	}
	var out []int
	for c, members := range byClass {
		if len(members) == 0 {
			return nil, fmt.Errorf("stratified subset: class %d has no samples: %w", c, ErrInput)
		}
		take := max(1, int(math.Round(fraction*float64(len(members)))))
		slices.SortFunc(members, func(a, b keyed) int {
			if a.key != b.key {
				if a.key < b.key {
					return -1
				}
				return 1
			}
			return a.i - b.i
		})
		for _, m := range members[:take] {
			out = append(out, m.i)
		}
	}
	slices.Sort(out)
	return out, nil
}

// sampleKey hashes (seed, index) with SplitMix64's finaliser applied twice,
// so neighbouring indices and seeds get unrelated keys.
func sampleKey(seed, i uint64) uint64 {
	return mix64(seed ^ mix64(i+0x9E3779B97F4A7C15))
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// maxSubsetLine bounds a subset list's line: ImageNet file names are about
// 25 bytes, and a bounded line keeps a corrupt file (no newlines) from
// being read whole into memory.
const maxSubsetLine = 4096

// ParseSubsetList reads a semi-supervised subset list in the reference's
// format (SimCLR's semi_1percent.txt / semi_10percent.txt for ImageNet, as
// SSLight uses them): one image file name per line, such as
// n01440764_10026.JPEG. Surrounding spaces and CR line ends are dropped and
// blank lines skipped; the names come back in file order.
//
// A name is a file name, not a path: it may not hold a slash, a backslash,
// white space or control characters, and must be valid UTF-8. A repeated
// name, an over-long line (over 4096 bytes) or a list without names is an
// error naming the line.
func ParseSubsetList(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxSubsetLine)
	var names []string
	seen := make(map[string]int)
	line := 0
	for sc.Scan() {
		line++
		name := strings.TrimSpace(sc.Text())
		if name == "" {
			continue
		}
		if err := checkSubsetName(name); err != nil {
			return nil, fmt.Errorf("subset list line %d: %q: %w", line, shorten(name), err)
		}
		if first, ok := seen[name]; ok {
			return nil, fmt.Errorf("subset list line %d: %q repeats line %d: %w", line, name, first, ErrInput)
		}
		seen[name] = line
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("subset list line %d: longer than %d bytes: %w", line+1, maxSubsetLine, ErrInput)
		}
		return nil, fmt.Errorf("subset list: reading line %d: %w", line+1, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("subset list: no file names: %w", ErrInput)
	}
	return names, nil
}

// checkSubsetName reports why name cannot be an image file name.
func checkSubsetName(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("not valid UTF-8: %w", ErrInput)
	}
	for _, r := range name {
		switch {
		case r == '/' || r == '\\':
			return fmt.Errorf("a file name, not a path, is expected: %w", ErrInput)
		case unicode.IsSpace(r):
			return fmt.Errorf("white space inside a file name (one name per line): %w", ErrInput)
		case unicode.IsControl(r):
			return fmt.Errorf("control character %U in a file name: %w", r, ErrInput)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("not a file name: %w", ErrInput)
	}
	return nil
}

// shorten cuts a string for an error message.
func shorten(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:80] + "…"
}

// MatchSubset returns the indices, in increasing order, of the paths whose
// file name (the part after the last slash) is in names: it maps a parsed
// subset list onto a data set's listing. Every name must match exactly one
// path; a name with no path (the list belongs to another data set or the
// listing is incomplete) or with several is an error naming it.
func MatchSubset(names, paths []string) ([]int, error) {
	want := make(map[string]int, len(names))
	for _, n := range names {
		if _, dup := want[n]; dup {
			return nil, fmt.Errorf("subset: name %q given twice: %w", n, ErrInput)
		}
		want[n] = -1
	}
	for i, p := range paths {
		base := p[strings.LastIndexByte(p, '/')+1:]
		prev, ok := want[base]
		if !ok {
			continue
		}
		if prev >= 0 {
			return nil, fmt.Errorf("subset: %q matches both %q and %q: %w", base, paths[prev], p, ErrInput)
		}
		want[base] = i
	}
	out := make([]int, 0, len(names))
	var missing []string
	for _, n := range names {
		if i := want[n]; i >= 0 {
			out = append(out, i)
		} else {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		shown := missing[:min(3, len(missing))]
		return nil, fmt.Errorf("subset: %d of %d names match no path (first: %q): %w", len(missing), len(names), shown, ErrInput)
	}
	slices.Sort(out)
	return out, nil
}
