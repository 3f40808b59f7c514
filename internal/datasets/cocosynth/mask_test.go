package cocosynth

import (
	"slices"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/coco"
)

// parseMask reads rows of '#' (set) and '.' (clear).
func parseMask(rows ...string) *mask {
	m := newMask(len(rows[0]), len(rows))
	for y, r := range rows {
		for x, c := range r {
			m.Pix[y*m.W+x] = c == '#'
		}
	}
	return m
}

func (m *mask) String() string {
	var b strings.Builder
	for y := 0; y < m.H; y++ {
		for x := 0; x < m.W; x++ {
			if m.Pix[y*m.W+x] {
				b.WriteByte('#')
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestFillHoles(t *testing.T) {
	tests := []struct {
		name     string
		in, want []string
	}{
		{"ring", []string{".....", ".###.", ".#.#.", ".###.", "....."}, []string{".....", ".###.", ".###.", ".###.", "....."}},
		// The gap at the ring's corner is 4-connected to nothing outside
		// (its only way out is diagonal), so it is a hole.
		{"diagonal leak", []string{"....", ".##.", ".#.#", ".##."}, []string{"....", ".##.", ".###", ".##."}},
		{"open C", []string{"###", "#..", "###"}, []string{"###", "#..", "###"}},
		{"touching the border", []string{"#.#", "###"}, []string{"#.#", "###"}},
	}
	for _, tc := range tests {
		got := fillHoles(parseMask(tc.in...))
		if want := parseMask(tc.want...); !slices.Equal(got.Pix, want.Pix) {
			t.Errorf("%s: got\n%swant\n%s", tc.name, got, want)
		}
	}
}

func TestPolygonsHandTraced(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want [][]float64
	}{
		{"one pixel", []string{"...", ".#.", "..."}, [][]float64{{1, 1, 2, 1, 2, 2, 1, 2}}},
		{"bar", []string{"....", ".###"}, [][]float64{{1, 1, 4, 1, 4, 2, 1, 2}}},
		// Clockwise on screen from the first pixel's top-left corner.
		{"L", []string{"#..", "#..", "###"}, [][]float64{{0, 0, 1, 0, 1, 2, 3, 2, 3, 3, 0, 3}}},
		{"two parts", []string{"#.", ".#"}, [][]float64{{0, 0, 1, 0, 1, 1, 0, 1}, {1, 1, 2, 1, 2, 2, 1, 2}}},
		{"T", []string{"###", ".#."}, [][]float64{{0, 0, 3, 0, 3, 1, 2, 1, 2, 2, 1, 2, 1, 1, 0, 1}}},
	}
	for _, tc := range tests {
		got := polygons(parseMask(tc.in...))
		if !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// checkOutline asserts the property polygons promises: pycocotools'
// rasteriser (sinks/coco.PolygonRLE, tested against it) turns the traced
// polygons of a filled mask back into exactly that mask.
func checkOutline(t *testing.T, m *mask) {
	t.Helper()
	f := fillHoles(m)
	for i, v := range m.Pix {
		if v && !f.Pix[i] {
			t.Fatalf("fillHoles cleared pixel %d of\n%s", i, m)
		}
	}
	if g := fillHoles(f); !slices.Equal(g.Pix, f.Pix) {
		t.Fatalf("fillHoles is not idempotent on\n%s", m)
	}
	polys := polygons(f)
	var rles []*coco.RLE
	for _, p := range polys {
		rles = append(rles, coco.PolygonRLE(p, f.H, f.W))
	}
	want := coco.EncodeMask(colMajor(f.Pix, f.H, f.W), f.H, f.W)
	if len(rles) == 0 {
		if want.Area() != 0 {
			t.Fatalf("no polygon for a non-empty mask\n%s", f)
		}
		return
	}
	got, err := coco.MergeRLE(rles, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Counts, want.Counts) {
		t.Fatalf("polygons %v rasterise to %d pixels, not the mask's %d:\n%s", polys, got.Area(), want.Area(), f)
	}
}

func TestPolygonsRasteriseBack(t *testing.T) {
	for _, rows := range [][]string{
		{"#.#.#", ".#.#.", "#.#.#", ".#.#."},
		{"#####", "#...#", "#.#.#", "#...#", "#####"},
		{"##..##", "##..##", "..##..", "..##..", "##..##"},
		{".#.", "###", ".#."},
	} {
		checkOutline(t, parseMask(rows...))
	}
}

// FuzzPolygons builds masks from arbitrary bytes (first byte: width) and
// checks that the traced outline rasterises back to the filled mask.
func FuzzPolygons(f *testing.F) {
	f.Add([]byte{3, 1, 0, 1, 0, 1, 0, 1, 0, 1})
	f.Add([]byte{5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1})
	f.Add([]byte{4, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		w := int(b[0])%12 + 1
		px := b[1:]
		h := min(len(px)/w, 12)
		if h == 0 {
			return
		}
		m := newMask(w, h)
		for i := range m.Pix {
			m.Pix[i] = px[i]&1 == 1
		}
		checkOutline(t, m)
	})
}
