package coco

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The fixtures are pycocotools-checked ground truth and results from the
// golden COCO evaluation case "crowd_manydets" (see testdata/source/coco):
// 36 images, 105 annotations of which 16 are iscrowd regions stored as
// uncompressed RLE whose "area" pycocotools computed from the mask,
// categories 1, 3, 18, 44, and 257 results with compressed RLE masks.
const (
	gtPath = "../../testdata/source/coco/crowd_manydets_gt.json"
	dtPath = "../../testdata/source/coco/crowd_manydets_dt.json"
)

func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseGroundTruth(t *testing.T) {
	d, err := Parse(bytes.NewReader(readFixture(t, gtPath)), "gt.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Images) != 36 || len(d.Annotations) != 105 {
		t.Fatalf("%d images, %d annotations; want 36, 105", len(d.Images), len(d.Annotations))
	}
	var ids []int64
	for _, c := range d.Categories {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []int64{1, 3, 18, 44}) || d.Categories[2].Name != "dog" {
		t.Fatalf("categories %+v", d.Categories)
	}
	if d.Info == nil || d.Info.Description != "synthetic COCO-format ground truth" {
		t.Fatalf("info %+v", d.Info)
	}
	images := map[int64]Image{}
	for _, im := range d.Images {
		images[im.ID] = im
	}
	crowd := 0
	for _, a := range d.Annotations {
		if a.Segmentation == nil {
			t.Fatalf("annotation %d has no segmentation", a.ID)
		}
		if r := a.Segmentation.RLE; r != nil {
			crowd++
			im := images[a.ImageID]
			if r.Compressed || r.Size != [2]int{im.Height, im.Width} {
				t.Fatalf("annotation %d: RLE size %v compressed %v, image %dx%d", a.ID, r.Size, r.Compressed, im.Width, im.Height)
			}
			if float64(r.Area()) != a.Area {
				t.Fatalf("annotation %d: RLE area %d, pycocotools area %g", a.ID, r.Area(), a.Area)
			}
		} else if len(a.Segmentation.Polygons) == 0 {
			t.Fatalf("annotation %d: neither polygons nor RLE", a.ID)
		}
	}
	if crowd != 16 {
		t.Fatalf("%d RLE annotations, want 16", crowd)
	}
	first := d.Annotations[0]
	if first.ID != 1 || first.ImageID != 1028 || first.CategoryID != 1 || first.BBox != (BBox{251, 89, 22, 18}) || first.Area != 320 || len(first.Segmentation.Polygons[0]) != 28 {
		t.Fatalf("first annotation %+v", first)
	}

	ix, probs := Check(d)
	if len(probs) != 0 {
		t.Fatalf("valid ground truth refused: %v", probs)
	}
	if ix.NumAnnotations() != 105 || len(ix.Images) != 36 || len(ix.Annotations) != 32 {
		t.Fatalf("index: %d annotations over %d images (of %d)", ix.NumAnnotations(), len(ix.Annotations), len(ix.Images))
	}
	if i, ok := ix.CategoryIndex(44); !ok || i != 3 {
		t.Fatalf("CategoryIndex(44) = %d, %v", i, ok)
	}

	// Writing the data set and reading it back gives the same data set.
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(bytes.NewReader(out), "roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, back) {
		t.Fatal("data set changed through Marshal and Parse")
	}
}

func TestParseResults(t *testing.T) {
	gt, err := Parse(bytes.NewReader(readFixture(t, gtPath)), "gt.json")
	if err != nil {
		t.Fatal(err)
	}
	images := map[int64]Image{}
	for _, im := range gt.Images {
		images[im.ID] = im
	}
	raw := readFixture(t, dtPath)
	res, err := ParseResults(bytes.NewReader(raw), "dt.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 257 {
		t.Fatalf("%d results, want 257", len(res))
	}
	var strs []struct {
		Segmentation struct {
			Counts string `json:"counts"`
		} `json:"segmentation"`
	}
	if err := json.Unmarshal(raw, &strs); err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		im, ok := images[r.ImageID]
		if !ok || r.BBox == nil || r.Segmentation == nil || r.Segmentation.RLE == nil {
			t.Fatalf("result %d: %+v", i, r)
		}
		rle := r.Segmentation.RLE
		if !rle.Compressed || rle.Size != [2]int{im.Height, im.Width} {
			t.Fatalf("result %d: size %v, image %dx%d", i, rle.Size, im.Width, im.Height)
		}
		// The runs of a mask cover its image exactly: an independent check
		// that every count decoded right.
		if got, want := rle.Pixels(), int64(im.Width*im.Height); got != want {
			t.Fatalf("result %d: runs cover %d pixels, want %d", i, got, want)
		}
		if enc := EncodeCounts(rle.Counts); enc != strs[i].Segmentation.Counts {
			t.Fatalf("result %d: re-encoded %q, file has %q", i, enc, strs[i].Segmentation.Counts)
		}
	}
	if r := res[0]; r.ImageID != 1000 || r.Segmentation.RLE.Size != [2]int{135, 243} {
		t.Fatalf("first result %+v", r)
	}
}

// Hand-worked vectors of pycocotools' string form. [5, 40, 3, 70]: 5 → '5';
// 40 = 8 + 1·32 → chars 8|0x20=40 ('X'), 1 ('1'); 3 → '3'; the fourth is
// stored as 70−40 = 30 = 0x1e, whose bit 0x10 would read as a sign, so a
// continuation char 62 ('n') and a 0 ('0') follow. With 10 in place of 70
// the difference is −30: low bits 2 with continuation (34, 'R'), then 31
// ('O'), whose sign bit ends the number.
func TestCountsVectors(t *testing.T) {
	tests := []struct {
		s      string
		counts []uint32
	}{
		{"", []uint32{}},
		{"123", []uint32{1, 2, 3}},
		{"5X13n0", []uint32{5, 40, 3, 70}},
		{"5X13RO", []uint32{5, 40, 3, 10}},
		{"0", []uint32{0}},
		{"oooooo3", []uint32{4294967295}}, // (2^30−1) + 3·2^30
	}
	for _, tc := range tests {
		got, err := DecodeCounts(tc.s)
		if err != nil || !slices.Equal(got, tc.counts) {
			t.Errorf("DecodeCounts(%q) = %v, %v; want %v", tc.s, got, err, tc.counts)
		}
		if enc := EncodeCounts(tc.counts); enc != tc.s {
			t.Errorf("EncodeCounts(%v) = %q, want %q", tc.counts, enc, tc.s)
		}
	}
	big := []uint32{0, 4294967295, 0, 1}
	if got, err := DecodeCounts(EncodeCounts(big)); err != nil || !slices.Equal(got, big) {
		t.Errorf("max count round trip: %v %v", got, err)
	}
}

func TestCountsErrors(t *testing.T) {
	tests := []struct{ s, want string }{
		{"~", "byte 0 ('~') is outside"},
		{"12 ", "byte 2 (' ') is outside"},
		{"X", "end inside count 0"},
		{"1oooooooo", "count 1 has more than 7 characters"},
		{"513RO", "count 3 decodes to -29"},
		// Six 'o' (63: 31 with continuation) carry 2^30−1; '4' adds 4·2^30.
		{"oooooo4", "count 0 decodes to 5368709119"},
	}
	for _, tc := range tests {
		_, err := DecodeCounts(tc.s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeCounts(%q) error %v, want %q", tc.s, err, tc.want)
		}
	}
}
