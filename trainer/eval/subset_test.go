package eval

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestStratifiedSubsetCounts(t *testing.T) {
	// Class sizes 100, 10, 1 and 25; the expected counts are
	// round(fraction·size), at least 1, worked out by hand.
	var labels []int
	for c, n := range []int{100, 10, 1, 25} {
		for range n {
			labels = append(labels, c)
		}
	}
	// Interleave the classes so index order and class order differ.
	labels = interleave(labels)
	tests := []struct {
		fraction float64
		want     []int // per class
	}{
		{0.01, []int{1, 1, 1, 1}},  // 1, 0.1→1, 0.01→1, 0.25→1
		{0.1, []int{10, 1, 1, 3}},  // 10, 1, 0.1→1, 2.5→3 (half away from zero)
		{0.5, []int{50, 5, 1, 13}}, // 12.5→13
		{1, []int{100, 10, 1, 25}},
	}
	for _, tt := range tests {
		got, err := StratifiedSubset(labels, 4, tt.fraction, 7)
		if err != nil {
			t.Fatal(err)
		}
		counts := make([]int, 4)
		for _, i := range got {
			counts[labels[i]]++
		}
		if !slices.Equal(counts, tt.want) {
			t.Errorf("fraction %v: per-class counts %v, want %v", tt.fraction, counts, tt.want)
		}
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("fraction %v: indices not increasing and unique: %v", tt.fraction, got)
		}
	}
}

func interleave(labels []int) []int {
	out := make([]int, len(labels))
	// A fixed permutation: i ↦ (i·37) mod n, with gcd(37, n) = 1.
	n := len(labels)
	for i, l := range labels {
		out[(i*37)%n] = l
	}
	return out
}

func TestStratifiedSubsetProperties(t *testing.T) {
	labels := make([]int, 5000)
	for i := range labels {
		labels[i] = (i * 7) % 10
	}
	a, _ := StratifiedSubset(labels, 10, 0.01, 3)
	b, _ := StratifiedSubset(labels, 10, 0.01, 3)
	if !slices.Equal(a, b) {
		t.Error("same seed gave different subsets")
	}
	c, _ := StratifiedSubset(labels, 10, 0.01, 4)
	if slices.Equal(a, c) {
		t.Error("seeds 3 and 4 gave the same subset")
	}
	// Nested: the 1% subset lies inside the 10% subset of the same seed.
	ten, _ := StratifiedSubset(labels, 10, 0.1, 3)
	for _, i := range a {
		if _, ok := slices.BinarySearch(ten, i); !ok {
			t.Fatalf("sample %d is in the 1%% subset but not in the 10%% subset", i)
		}
	}
	if len(a) != 50 || len(ten) != 500 {
		t.Errorf("sizes %d and %d, want 50 and 500", len(a), len(ten))
	}
	// Spread: the chosen samples are not simply the first of each class.
	if a[len(a)-1] < 2500 {
		t.Errorf("1%% subset %v is bunched at the start", a)
	}
}

func TestStratifiedSubsetErrors(t *testing.T) {
	tests := []struct {
		name     string
		labels   []int
		classes  int
		fraction float64
	}{
		{"no labels", nil, 2, 0.1},
		{"no classes", []int{0}, 0, 0.1},
		{"zero fraction", []int{0, 1}, 2, 0},
		{"fraction above 1", []int{0, 1}, 2, 1.5},
		{"label out of range", []int{0, 2}, 2, 0.5},
		{"negative label", []int{0, -1}, 2, 0.5},
		{"empty class", []int{0, 0, 2}, 3, 0.5},
	}
	for _, tt := range tests {
		if _, err := StratifiedSubset(tt.labels, tt.classes, tt.fraction, 0); !errors.Is(err, ErrInput) {
			t.Errorf("%s: error %v, want ErrInput", tt.name, err)
		}
	}
}

func TestParseSubsetList(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		errHas   string // "" when the list is valid
	}{
		{"reference format", "n01440764_10026.JPEG\nn01440764_10027.JPEG\nn01443537_10007.JPEG\n",
			[]string{"n01440764_10026.JPEG", "n01440764_10027.JPEG", "n01443537_10007.JPEG"}, ""},
		{"no final newline, CRLF, blanks and spaces", "a.JPEG\r\n\r\n  b.JPEG \r\nc.JPEG",
			[]string{"a.JPEG", "b.JPEG", "c.JPEG"}, ""},
		{"path", "a.JPEG\nn01440764/b.JPEG\n", nil, "line 2"},
		{"backslash", "n01440764\\b.JPEG\n", nil, "not a path"},
		{"two names on a line", "a.JPEG b.JPEG\n", nil, "white space"},
		{"control character", "a\x00.JPEG\n", nil, "control character"},
		{"invalid UTF-8", "a\xff.JPEG\n", nil, "UTF-8"},
		{"dot dot", "..\n", nil, "not a file name"},
		{"duplicate", "a.JPEG\nb.JPEG\na.JPEG\n", nil, "line 3: \"a.JPEG\" repeats line 1"},
		{"empty", "", nil, "no file names"},
		{"only blanks", "\n \r\n\t\n", nil, "no file names"},
		{"over-long line", "a.JPEG\n" + strings.Repeat("x", 5000) + "\n", nil, "line 2: longer than"},
	}
	for _, tt := range tests {
		got, err := ParseSubsetList(strings.NewReader(tt.in))
		if tt.errHas == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			} else if !slices.Equal(got, tt.want) {
				t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("%s: error %v, want ErrInput mentioning %q", tt.name, err, tt.errHas)
		}
	}
	// A read error is passed on, not mistaken for bad content.
	boom := errors.New("boom")
	if _, err := ParseSubsetList(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("reader failure: error %v, want boom", err)
	}
}

// FuzzParseSubsetList checks that any input either parses into valid,
// unique file names that survive a write-and-reparse round trip, or fails
// with ErrInput; it never panics.
func FuzzParseSubsetList(f *testing.F) {
	for _, s := range []string{
		"n01440764_10026.JPEG\nn01440764_10027.JPEG\n",
		"a\r\n\r\nb\n",
		"a/b\n",
		"a\na\n",
		"",
		" \t\n",
		"a b\n",
		"\xff\n",
		"..\n.\n",
		strings.Repeat("y", 4097),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		names, err := ParseSubsetList(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("error %v does not wrap ErrInput", err)
			}
			return
		}
		if len(names) == 0 {
			t.Fatal("no error and no names")
		}
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, "/\\ \t\r\n\x00") || seen[n] {
				t.Fatalf("invalid or repeated name %q", n)
			}
			seen[n] = true
		}
		again, err := ParseSubsetList(strings.NewReader(strings.Join(names, "\n")))
		if err != nil || !slices.Equal(again, names) {
			t.Fatalf("round trip: %q, %v; want %q", again, err, names)
		}
	})
}

func TestMatchSubset(t *testing.T) {
	paths := []string{
		"train/n01/n01_3.JPEG", "train/n01/n01_1.JPEG", "train/n02/n02_9.JPEG", "n02_4.JPEG",
	}
	got, err := MatchSubset([]string{"n02_4.JPEG", "n01_1.JPEG"}, paths)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 3}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, tt := range []struct {
		name   string
		names  []string
		paths  []string
		errHas string
	}{
		{"missing", []string{"n01_1.JPEG", "n03_1.JPEG"}, paths, `1 of 2 names match no path (first: ["n03_1.JPEG"])`},
		{"ambiguous", []string{"x.JPEG"}, []string{"a/x.JPEG", "b/x.JPEG"}, `"x.JPEG" matches both "a/x.JPEG" and "b/x.JPEG"`},
		{"repeated name", []string{"n01_1.JPEG", "n01_1.JPEG"}, paths, "given twice"},
	} {
		_, err := MatchSubset(tt.names, tt.paths)
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("%s: error %v, want ErrInput mentioning %s", tt.name, err, tt.errHas)
		}
	}
}
