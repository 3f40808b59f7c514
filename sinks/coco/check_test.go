package coco

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// base is a small consistent data set: two 100x50 images, categories with
// non-contiguous ids given out of order, one annotation per image.
func base() *Dataset {
	return &Dataset{
		Images: []Image{
			{ID: 10, Width: 100, Height: 50, FileName: "a.jpg"},
			{ID: 20, Width: 100, Height: 50, FileName: "sub/b.jpg"},
		},
		Categories: []Category{{ID: 90, Name: "toothbrush"}, {ID: 1, Name: "person"}, {ID: 18, Name: "dog"}},
		Annotations: []Annotation{
			{ID: 1, ImageID: 10, CategoryID: 1, BBox: BBox{10, 10, 20, 20}, Area: 400,
				Segmentation: &Segmentation{Polygons: [][]float64{{10, 10, 30, 10, 30, 30}}}},
			{ID: 2, ImageID: 20, CategoryID: 90, BBox: BBox{0, 0, 100, 50}, Area: 2, IsCrowd: 1,
				// 50x100 mask, column-major: 4998 zeros, then the last 2 pixels set
				Segmentation: &Segmentation{RLE: &RLE{Size: [2]int{50, 100}, Counts: []uint32{4998, 2}}}},
		},
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *Dataset)
		want   []string // "path: reason substring" of each Problem, in order
		anns   int      // accepted annotations
	}{
		{name: "valid", mutate: func(d *Dataset) {}, anns: 2},
		{name: "unknown image", mutate: func(d *Dataset) { d.Annotations[0].ImageID = 11 },
			want: []string{"annotations[0]: unknown image id 11"}, anns: 1},
		{name: "unknown category", mutate: func(d *Dataset) { d.Annotations[1].CategoryID = 2 },
			want: []string{"annotations[1]: unknown category id 2"}, anns: 1},
		{name: "negative box width", mutate: func(d *Dataset) { d.Annotations[0].BBox[2] = -1 },
			want: []string{"annotations[0]: negative bbox size -1x20"}, anns: 1},
		{name: "box past right edge", mutate: func(d *Dataset) { d.Annotations[0].BBox = BBox{90, 10, 11.5, 5} },
			want: []string{"annotations[0]: bbox [90, 10, 11.5, 5] lies outside the 100x50 image"}, anns: 1},
		{name: "box past bottom edge", mutate: func(d *Dataset) { d.Annotations[0].BBox = BBox{0, 40, 5, 11.01} },
			want: []string{"annotations[0]: bbox [0, 40, 5, 11.01] lies outside"}, anns: 1},
		{name: "box left of image", mutate: func(d *Dataset) { d.Annotations[0].BBox = BBox{-1.5, 0, 5, 5} },
			want: []string{"annotations[0]: bbox [-1.5, 0, 5, 5] lies outside"}, anns: 1},
		{name: "box above image", mutate: func(d *Dataset) { d.Annotations[0].BBox = BBox{0, -2, 5, 5} },
			want: []string{"annotations[0]: bbox [0, -2, 5, 5] lies outside"}, anns: 1},
		{name: "box within the 1px slack", mutate: func(d *Dataset) { d.Annotations[0].BBox = BBox{-1, -0.5, 101, 51} }, anns: 2},
		{name: "duplicate annotation id", mutate: func(d *Dataset) { d.Annotations[1].ID = 1 },
			want: []string{"annotations[1]: duplicate annotation id 1"}, anns: 1},
		{name: "duplicate category id", mutate: func(d *Dataset) {
			d.Categories = append(d.Categories, Category{ID: 18, Name: "dog again"})
		}, want: []string{"categories[3]: duplicate category id 18"}, anns: 2},
		{name: "duplicate image id", mutate: func(d *Dataset) {
			d.Images = append(d.Images, Image{ID: 10, Width: 10, Height: 10, FileName: "c.jpg"})
		}, want: []string{"images[2]: duplicate image id 10"}, anns: 2},
		{name: "duplicate file name", mutate: func(d *Dataset) {
			d.Images = append(d.Images, Image{ID: 30, Width: 10, Height: 10, FileName: "a.jpg"})
		}, want: []string{`images[2]: duplicate file_name "a.jpg"`}, anns: 2},
		{name: "zero-width image takes its annotations", mutate: func(d *Dataset) { d.Images[0].Width = 0 },
			want: []string{"images[0]: width and height must be positive, got 0x50", "annotations[0]: image id 10 was refused"}, anns: 1},
		{name: "negative height", mutate: func(d *Dataset) { d.Images[1].Height = -5 },
			want: []string{"images[1]: width and height must be positive, got 100x-5", "annotations[1]: image id 20 was refused"}, anns: 1},
		{name: "file name escapes", mutate: func(d *Dataset) { d.Images[0].FileName = "../etc/passwd" },
			want: []string{`images[0]: file_name "../etc/passwd" is not a clean relative path`, "annotations[0]: image id 10 was refused"}, anns: 1},
		{name: "absolute file name", mutate: func(d *Dataset) { d.Images[1].FileName = "/b.jpg" },
			want: []string{`images[1]: file_name "/b.jpg" is not a clean relative path`, "annotations[1]: image id 20 was refused"}, anns: 1},
		{name: "empty file name", mutate: func(d *Dataset) { d.Images[1].FileName = "" },
			want: []string{`images[1]: file_name "" is not a clean relative path`, "annotations[1]: image id 20 was refused"}, anns: 1},
		{name: "iscrowd 2", mutate: func(d *Dataset) { d.Annotations[0].IsCrowd = 2 },
			want: []string{"annotations[0]: iscrowd must be 0 or 1, got 2"}, anns: 1},
		{name: "negative area", mutate: func(d *Dataset) { d.Annotations[0].Area = -3 },
			want: []string{"annotations[0]: negative area -3"}, anns: 1},
		{name: "odd polygon", mutate: func(d *Dataset) {
			d.Annotations[0].Segmentation.Polygons = append(d.Annotations[0].Segmentation.Polygons, []float64{1, 2, 3, 4, 5, 6, 7})
		}, want: []string{"annotations[0]: segmentation[1]: a polygon needs an even number of at least 6 coordinates, got 7"}, anns: 1},
		{name: "two-point polygon", mutate: func(d *Dataset) { d.Annotations[0].Segmentation.Polygons[0] = []float64{1, 2, 3, 4} },
			want: []string{"annotations[0]: segmentation[0]: a polygon needs an even number of at least 6 coordinates, got 4"}, anns: 1},
		{name: "empty polygon list means no mask", mutate: func(d *Dataset) { d.Annotations[0].Segmentation.Polygons = [][]float64{} }, anns: 2},
		{name: "mask of another size", mutate: func(d *Dataset) { d.Annotations[1].Segmentation.RLE.Size = [2]int{100, 50} },
			want: []string{"annotations[1]: segmentation size [100, 50] differs from the image's [50, 100] (height, width)"}, anns: 1},
		{name: "runs short of the image", mutate: func(d *Dataset) { d.Annotations[1].Segmentation.RLE.Counts = []uint32{4000, 2} },
			want: []string{"annotations[1]: segmentation runs cover 4002 pixels, the 100x50 image has 5000"}, anns: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := base()
			tc.mutate(d)
			ix, probs := Check(d)
			var got []string
			for _, p := range probs {
				got = append(got, p.Path+": "+p.Reason)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q\nwant %q", got, tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Fatalf("problem %d = %q\nwant prefix %q", i, got[i], tc.want[i])
				}
			}
			if n := ix.NumAnnotations(); n != tc.anns {
				t.Fatalf("%d annotations accepted, want %d", n, tc.anns)
			}
		})
	}
}

func TestCheckIndex(t *testing.T) {
	d := base()
	d.Annotations = append(d.Annotations, Annotation{ID: 3, ImageID: 10, CategoryID: 18, BBox: BBox{0, 0, 1, 1}})
	ix, probs := Check(d)
	if len(probs) != 0 {
		t.Fatal(probs)
	}
	var names []string
	for _, c := range ix.Categories {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"person", "dog", "toothbrush"}) {
		t.Fatalf("categories by id: %v", names)
	}
	for id, want := range map[int64]int{1: 0, 18: 1, 90: 2} {
		if got, ok := ix.CategoryIndex(id); !ok || got != want {
			t.Fatalf("CategoryIndex(%d) = %d, %v; want %d", id, got, ok, want)
		}
	}
	if _, ok := ix.CategoryIndex(3); ok {
		t.Fatal("CategoryIndex(3) found")
	}
	if im, ok := ix.Image(20); !ok || im.FileName != "sub/b.jpg" {
		t.Fatalf("Image(20) = %+v, %v", im, ok)
	}
	var ids []int64
	for _, a := range ix.Annotations[10] {
		ids = append(ids, a.ID)
	}
	if !slices.Equal(ids, []int64{1, 3}) {
		t.Fatalf("annotations of image 10: %v, want [1 3] in file order", ids)
	}
}

func FuzzParseCOCO(f *testing.F) {
	f.Add([]byte(doc(img, ann(`"bbox": [0, 0, 1, 1], "segmentation": [[0, 0, 1, 0, 1, 1]]`))))
	f.Add([]byte(doc(img, ann(`"bbox": [0, 0, 4, 3], "iscrowd": 1, "segmentation": {"size": [3, 4], "counts": [5, 2, 5]}`))))
	f.Add([]byte(doc(img, ann(`"bbox": [0, 0, 4, 3], "segmentation": {"size": [3, 4], "counts": "52X0"}`))))
	f.Add([]byte(`{"info": {"year": 2017, "description": "x"}, "licenses": [{"id": 1, "name": "cc"}], "images": [], "type": "instances"}`))
	f.Add([]byte(`[{"image_id": 1, "category_id": 2, "score": 0.5, "bbox": [0, 0, 1, 1], "segmentation": {"size": [1, 1], "counts": "1"}}]`))
	f.Add([]byte(`{"images": [{"id": 1,}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if d, err := Parse(bytes.NewReader(data), "fuzz"); err == nil {
			ix, probs := Check(d)
			if len(ix.Images)+countKind(probs, KindImage) != len(d.Images) ||
				ix.NumAnnotations()+countKind(probs, KindAnnotation) != len(d.Annotations) ||
				len(ix.Categories)+countKind(probs, KindCategory) != len(d.Categories) {
				t.Fatalf("records lost: %d images, %d annotations, %d categories; index %d %d %d, problems %v",
					len(d.Images), len(d.Annotations), len(d.Categories), len(ix.Images), ix.NumAnnotations(), len(ix.Categories), probs)
			}
			out, err := json.Marshal(d)
			if err != nil {
				t.Fatalf("marshal a parsed data set: %v", err)
			}
			back, err := Parse(bytes.NewReader(out), "again")
			if err != nil {
				t.Fatalf("re-parse %s: %v", out, err)
			}
			if !reflect.DeepEqual(d, back) {
				t.Fatalf("round trip changed the data set:\n%s", out)
			}
		} else if _, ok := err.(*PathError); !ok {
			t.Fatalf("error %T is not a *PathError: %v", err, err)
		}
		if res, err := ParseResults(bytes.NewReader(data), "fuzz"); err == nil {
			out, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseResults(bytes.NewReader(out), "again")
			if err != nil || !reflect.DeepEqual(res, back) {
				t.Fatalf("results round trip: %v\n%s", err, out)
			}
		}
		if counts, err := DecodeCounts(string(data)); err == nil {
			back, err := DecodeCounts(EncodeCounts(counts))
			if err != nil || !slices.Equal(back, counts) {
				t.Fatalf("counts %v re-decode to %v, %v", counts, back, err)
			}
		}
	})
}

func countKind(probs []Problem, kind string) int {
	n := 0
	for _, p := range probs {
		if p.Kind == kind {
			n++
		}
	}
	return n
}
