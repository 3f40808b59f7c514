package coco

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// polygonVectors were produced by pycocotools 2.0 (maskApi.c):
// mask.merge(mask.frPyObjects(polys, h, w)), with mask.area and mask.toBbox
// of the result. They pin the rasteriser's rounding: sub-pixel vertices,
// vertices outside the image, a repeated vertex (zero-length edge), a
// polygon thinner than a pixel, several parts, an odd coordinate count and
// parts too short to add anything.
var polygonVectors = []struct {
	name   string
	polys  [][]float64
	h, w   int
	counts string
	area   int64
	bbox   BBox
}{
	{"square", [][]float64{{10, 10, 20, 10, 20, 20, 10, 20}}, 30, 30, "f9:d000000000000000000R9", 100, BBox{10, 10, 10, 10}},
	{"triangle", [][]float64{{2.3, 1.7, 17.9, 4.2, 8.1, 15.6}}, 20, 24, "n12b03M2N2O2M1OO1O1O1N2O2N1O1O1Oe3", 99, BBox{3, 2, 15, 13}},
	{"outside", [][]float64{{-5, -3, 12.5, -2, 14, 9.9, -4, 11}}, 10, 12, "0h3", 120, BBox{0, 0, 12, 10}},
	{"degenerate", [][]float64{{5, 5, 5, 5, 15, 5.04, 15, 15, 5, 15}}, 20, 20, "Y3::00000000000000000o2", 100, BBox{5, 5, 10, 10}},
	{"twoparts", [][]float64{{1, 1, 6, 1, 6, 6, 1, 6}, {8.2, 8.4, 12.6, 9, 10.1, 13.3}}, 16, 14, "a05;0000000W1LnN2M1ONi0", 35, BBox{1, 1, 11, 12}},
	{"thin", [][]float64{{3, 3, 3.1, 3, 3.1, 18, 3, 18}}, 20, 10, "X6", 0, BBox{0, 0, 0, 0}},
	{"shortlater", [][]float64{{1, 1, 9, 1, 5, 8}, {4, 4}, {}}, 10, 10, ";192N1O2N00N2O1N;", 28, BBox{1, 1, 8, 6}},
	{"oddlen", [][]float64{{1, 1, 9, 1, 5, 8, 7}}, 10, 10, ";192N1O2N00N2O1N;", 28, BBox{1, 1, 8, 6}},
}

func TestSegmentationRLEMatchesPycocotools(t *testing.T) {
	for _, tc := range polygonVectors {
		t.Run(tc.name, func(t *testing.T) {
			r, err := SegmentationRLE(&Segmentation{Polygons: tc.polys}, tc.h, tc.w)
			if err != nil {
				t.Fatal(err)
			}
			if got := EncodeCounts(r.Counts); got != tc.counts {
				t.Errorf("counts %q, want %q", got, tc.counts)
			}
			if r.Size != [2]int{tc.h, tc.w} {
				t.Errorf("size %v, want [%d %d]", r.Size, tc.h, tc.w)
			}
			if got := r.Area(); got != tc.area {
				t.Errorf("area %d, want %d", got, tc.area)
			}
			if got := r.BBox(); got != tc.bbox {
				t.Errorf("bbox %v, want %v", got, tc.bbox)
			}
		})
	}
}

func TestBoxRLEMatchesPycocotools(t *testing.T) {
	// pycocotools _mask.frBbox([[2.5, 3.5, 7.25, 4]], 12, 16).
	r := BoxRLE(BBox{2.5, 3.5, 7.25, 4}, 12, 16)
	if got, want := EncodeCounts(r.Counts), "X14800000000000T2"; got != want {
		t.Errorf("counts %q, want %q", got, want)
	}
	if got := r.Area(); got != 28 {
		t.Errorf("area %d, want 28", got)
	}
}

// TestGoldenPolygonAreas rasterises every polygon and RLE of the golden
// ground truth, whose "area" fields pycocotools computed from the masks.
func TestGoldenPolygonAreas(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "golden", "coco", "*", "gt.json"))
	if len(files) == 0 {
		t.Fatal("no golden ground truth under testdata/golden/coco")
	}
	n := 0
	for _, f := range files {
		d, err := Parse(bytes.NewReader(readFixture(t, f)), f)
		if err != nil {
			t.Fatal(err)
		}
		size := map[int64][2]int{}
		for _, im := range d.Images {
			size[im.ID] = [2]int{im.Height, im.Width}
		}
		for _, a := range d.Annotations {
			hw := size[a.ImageID]
			r, err := SegmentationRLE(a.Segmentation, hw[0], hw[1])
			if err != nil {
				t.Fatalf("%s annotation %d: %v", f, a.ID, err)
			}
			if got := float64(r.Area()); got != a.Area {
				t.Errorf("%s annotation %d: mask area %g, pycocotools %g", f, a.ID, got, a.Area)
			}
			n++
		}
	}
	t.Logf("%d golden masks checked", n)
}

// randomMask draws a mask of blobs so runs of both values and full
// columns occur.
func randomMask(rng *rand.Rand, h, w int) []byte {
	m := make([]byte, h*w)
	for range rng.IntN(4) {
		x0, y0 := rng.IntN(w), rng.IntN(h)
		x1, y1 := x0+rng.IntN(w-x0)+1, y0+rng.IntN(h-y0)+1
		for x := x0; x < x1; x++ {
			for y := y0; y < y1; y++ {
				if rng.IntN(8) != 0 {
					m[x*h+y] = 1
				}
			}
		}
	}
	return m
}

func TestMaskRoundTripAndBBox(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		h, w := 1+rng.IntN(12), 1+rng.IntN(12)
		m := randomMask(rng, h, w)
		r := EncodeMask(m, h, w)
		back, err := r.Mask()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, m) {
			t.Fatalf("round trip of %dx%d mask changed it", h, w)
		}
		// The box from a pixel scan.
		xs, ys, xe, ye, any := w, h, -1, -1, false
		var area int64
		for x := range w {
			for y := range h {
				if m[x*h+y] != 0 {
					xs, ys, xe, ye, any = min(xs, x), min(ys, y), max(xe, x), max(ye, y), true
					area++
				}
			}
		}
		want := BBox{}
		if any {
			want = BBox{float64(xs), float64(ys), float64(xe - xs + 1), float64(ye - ys + 1)}
			// rleToBbox widens to the full height when a run of ones
			// crosses into the next column.
			if crossesColumn(m, h) {
				want[1], want[3] = 0, float64(h)
			}
		}
		if got := r.BBox(); got != want {
			t.Fatalf("bbox %v, want %v (mask %dx%d %v)", got, want, h, w, m)
		}
		if r.Area() != area {
			t.Fatalf("area %d, want %d", r.Area(), area)
		}
	}
}

// crossesColumn reports whether a run of ones continues from the bottom
// of one column to the top of the next.
func crossesColumn(m []byte, h int) bool {
	for i := h; i < len(m); i += h {
		if m[i-1] != 0 && m[i] != 0 {
			return true
		}
	}
	return false
}

func TestBBoxNonCanonical(t *testing.T) {
	// Zero-length runs: rleToBbox looks at the pixel before each run end
	// with unsigned arithmetic, so [0, 0, ...] points at pixel 2³²−1.
	// Values from pycocotools' toBbox of frUncompressedRLE (2×2 masks).
	tests := []struct {
		counts []uint32
		want   BBox
	}{
		{[]uint32{2, 0, 2}, BBox{0, 0, 2, 2}},          // the empty run of ones "covers" pixels 1 and 2
		{[]uint32{0, 4}, BBox{0, 0, 2, 2}},             // all set
		{[]uint32{4}, BBox{}},                          // no ones
		{[]uint32{0, 0, 4}, BBox{0, 0, 2147483648, 2}}, // t = 2³²−1: x = 2147483647, y = 1
		{[]uint32{1, 1, 1, 1}, BBox{0, 1, 2, 1}},       // pixels 1 and 3
		{[]uint32{1, 2, 1}, BBox{0, 0, 2, 2}},          // ones cross a column: full height
		{[]uint32{}, BBox{}},                           // no runs at all
		{[]uint32{3, 1}, BBox{1, 1, 1, 1}},             // last pixel
	}
	for _, tc := range tests {
		r := &RLE{Size: [2]int{2, 2}, Counts: tc.counts}
		if got := r.BBox(); got != tc.want {
			t.Errorf("BBox(%v) = %v, want %v", tc.counts, got, tc.want)
		}
	}
}

func TestMaskIoUAndMergeAgainstPixels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		h, w := 1+rng.IntN(10), 1+rng.IntN(10)
		a, b := randomMask(rng, h, w), randomMask(rng, h, w)
		var na, inter, union int
		and, or := make([]byte, h*w), make([]byte, h*w)
		for i := range a {
			if a[i] != 0 {
				na++
			}
			if a[i] != 0 && b[i] != 0 {
				inter++
				and[i] = 1
			}
			if a[i] != 0 || b[i] != 0 {
				union++
				or[i] = 1
			}
		}
		ra, rb := EncodeMask(a, h, w), EncodeMask(b, h, w)
		want, wantCrowd := 0.0, 0.0
		if inter > 0 {
			want, wantCrowd = float64(inter)/float64(union), float64(inter)/float64(na)
		}
		if got := MaskIoU(ra, rb, false); got != want {
			t.Fatalf("MaskIoU = %v, want %v", got, want)
		}
		if got := MaskIoU(ra, rb, true); got != wantCrowd {
			t.Fatalf("crowd MaskIoU = %v, want %v", got, wantCrowd)
		}
		for _, op := range []struct {
			intersect bool
			want      []byte
		}{{false, or}, {true, and}} {
			m, err := MergeRLE([]*RLE{ra, rb}, op.intersect)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Mask()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, op.want) {
				t.Fatalf("merge(intersect=%v) differs from the pixel-wise result", op.intersect)
			}
			// rleMerge writes canonical runs: no zero-length run after the
			// first, as rleEncode would.
			if !slices.Equal(m.Counts, EncodeMask(op.want, h, w).Counts) {
				t.Fatalf("merge runs %v, want %v", m.Counts, EncodeMask(op.want, h, w).Counts)
			}
		}
	}
}

func TestMaskIoUVectors(t *testing.T) {
	// pycocotools: a = triangle [1,1, 9,1, 5,8], b = rectangle [3,0, 9,0,
	// 9,9, 3,9] in a 10×10 image; areas 28 and 54, intersection 24.
	a, err := SegmentationRLE(&Segmentation{Polygons: [][]float64{{1, 1, 9, 1, 5, 8}}}, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SegmentationRLE(&Segmentation{Polygons: [][]float64{{3, 0, 9, 0, 9, 9, 3, 9}}}, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := MaskIoU(a, b, false), 24.0/58; got != want {
		t.Errorf("iou %v, want %v", got, want)
	}
	if got, want := MaskIoU(a, b, true), 24.0/28; got != want {
		t.Errorf("crowd iou %v, want %v", got, want)
	}
	union, _ := MergeRLE([]*RLE{a, b}, false)
	inter, _ := MergeRLE([]*RLE{a, b}, true)
	if got := EncodeCounts(union.Counts); got != ";192M6K000000000:" {
		t.Errorf("union %q", got)
	}
	if got := EncodeCounts(inter.Counts); got != "o0462N00N2O1N;" {
		t.Errorf("intersection %q", got)
	}
	other := &RLE{Size: [2]int{10, 11}, Counts: []uint32{110}}
	if got := MaskIoU(a, other, false); got != -1 {
		t.Errorf("iou of masks of different sizes = %v, want -1", got)
	}
	if _, err := MergeRLE([]*RLE{a, other}, false); !errors.Is(err, ErrMaskSize) {
		t.Errorf("merge of different sizes: err %v, want ErrMaskSize", err)
	}
}

func TestBoxIoU(t *testing.T) {
	// Worked by hand: intersection w·h over union (crowd: over the
	// detection's area).
	tests := []struct {
		dt, gt BBox
		crowd  bool
		want   float64
	}{
		{BBox{0, 0, 10, 10}, BBox{5, 5, 10, 10}, false, 25.0 / 175},
		{BBox{0, 0, 10, 10}, BBox{2, 2, 4, 4}, true, 16.0 / 100},
		{BBox{3, 4, 5.5, 2.25}, BBox{5, 5, 10, 10}, false, 4.375 / (12.375 + 100 - 4.375)},
		{BBox{3, 4, 5.5, 2.25}, BBox{2, 2, 4, 4}, true, 6 / 12.375},
		{BBox{0, 0, 10, 10}, BBox{10, 0, 5, 5}, false, 0}, // touching
		{BBox{0, 0, 10, 10}, BBox{0, 0, 10, 10}, false, 1},
		{BBox{0, 0, 0, 10}, BBox{0, 0, 10, 10}, false, 0}, // empty box
	}
	for _, tc := range tests {
		if got := BoxIoU(tc.dt, tc.gt, tc.crowd); got != tc.want {
			t.Errorf("BoxIoU(%v, %v, %v) = %v, want %v", tc.dt, tc.gt, tc.crowd, got, tc.want)
		}
	}
}

func TestCheckPolygons(t *testing.T) {
	tests := []struct {
		polys [][]float64
		h, w  int
		want  string // substring of the error, "" for none
	}{
		{[][]float64{{1, 1, 5, 1, 5, 5}}, 10, 10, ""},
		{[][]float64{{1, 1, 5, 1, 5}}, 10, 10, ""}, // 5 coordinates: pycocotools takes 2 points
		{nil, 10, 10, "empty polygon list"},
		{[][]float64{}, 10, 10, "empty polygon list"},
		{[][]float64{{1, 1, 5, 1}}, 10, 10, "polygon 0 has 4 coordinates"},
		{[][]float64{{1, 1, 5, 1, 5, 5}, {1e9, 0, 1, 1, 2, 2}}, 10, 10, "polygon 1 coordinate 0"},
		{[][]float64{{1, 1, 5, 1, 5, math.Inf(1)}}, 10, 10, "coordinate 5"},
		{[][]float64{{1, 1, 5, 1, 5, 5}}, 0, 10, "not positive"},
	}
	for _, tc := range tests {
		err := CheckPolygons(tc.polys, tc.h, tc.w)
		if tc.want == "" {
			if err != nil {
				t.Errorf("CheckPolygons(%v): %v", tc.polys, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckPolygons(%v) = %v, want an error containing %q", tc.polys, err, tc.want)
		}
	}
}

func TestRLEMaskRefusesBadRuns(t *testing.T) {
	for _, r := range []*RLE{
		{Size: [2]int{2, 2}, Counts: []uint32{1, 1}},
		{Size: [2]int{2, 2}, Counts: []uint32{3, 3}},
		{Size: [2]int{-1, 2}, Counts: nil},
	} {
		if _, err := r.Mask(); err == nil {
			t.Errorf("Mask of %v %v: no error", r.Size, r.Counts)
		}
	}
}

// FuzzDecodeCounts feeds arbitrary strings to the compressed-RLE decoder:
// it must not panic, and what it accepts must encode back to a string that
// decodes to the same runs.
func FuzzDecodeCounts(f *testing.F) {
	for _, v := range polygonVectors {
		f.Add(v.counts)
	}
	for _, s := range []string{"", "0", "o", "1O", "PPPPPPPP", "`i;1e31O1O100O1O1", "Ya;", "\x00", "ooooooo1", "01L"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		counts, err := DecodeCounts(s)
		if err != nil {
			return
		}
		again, err := DecodeCounts(EncodeCounts(counts))
		if err != nil {
			t.Fatalf("re-encoded counts of %q do not decode: %v", s, err)
		}
		if !slices.Equal(again, counts) {
			t.Fatalf("round trip of %q: %v, want %v", s, again, counts)
		}
	})
}

// FuzzPolygonRLE rasterises arbitrary polygons: whatever CheckPolygons
// accepts must give runs that cover the image exactly and a mask whose
// area and box agree with its runs.
func FuzzPolygonRLE(f *testing.F) {
	f.Add(uint8(10), uint8(12), []byte{10, 10, 20, 10, 20, 20, 10, 20})
	f.Add(uint8(20), uint8(24), []byte{2, 1, 17, 4, 8, 15, 8, 15})
	f.Add(uint8(3), uint8(1), []byte{0, 0, 255, 255, 0, 255})
	f.Fuzz(func(t *testing.T, h, w uint8, raw []byte) {
		if h == 0 || w == 0 || len(raw) > 400 {
			return
		}
		// Coordinates in quarter pixels around and beyond the image.
		p := make([]float64, len(raw))
		for i, b := range raw {
			p[i] = float64(int(b)-64) / 4
		}
		polys := [][]float64{p}
		if CheckPolygons(polys, int(h), int(w)) != nil {
			return
		}
		r, err := SegmentationRLE(&Segmentation{Polygons: polys}, int(h), int(w))
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.Mask()
		if err != nil {
			t.Fatalf("polygon %v in %dx%d: %v", p, h, w, err)
		}
		var area int64
		for _, v := range m {
			area += int64(v)
		}
		if area != r.Area() {
			t.Fatalf("area %d, mask has %d", r.Area(), area)
		}
		if !slices.Equal(r.Counts, EncodeMask(m, int(h), int(w)).Counts) {
			t.Fatalf("runs %v are not canonical", r.Counts)
		}
	})
}
