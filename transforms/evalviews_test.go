package transforms

import (
	"context"
	"encoding/json"
	"image/color"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/coco"
	"github.com/sslight-go/sslight/transforms/source"
)

// constantItems writes n one-colour PNGs of w×h, colour i for item i.
func constantItems(t *testing.T, n, w, h int) ([]source.Item, []color.RGBA) {
	t.Helper()
	items := make([]source.Item, n)
	cols := make([]color.RGBA, n)
	for i := range items {
		c := color.RGBA{uint8(20 * i), uint8(250 - 30*i), uint8(7 * i), 255}
		items[i], cols[i] = writePNG(t, w, h, func(int, int) color.RGBA { return c }), c
	}
	return items, cols
}

// checkConstantViews checks that row i of x is colour i normalised, in
// every pixel: whatever the crop, a one-colour image gives its colour.
func checkConstantViews(t *testing.T, x []float32, cols []color.RGBA, size int, mean, std [3]float32) {
	t.Helper()
	n := 3 * size * size
	for i, c := range cols {
		for ch, px := range []uint8{c.R, c.G, c.B} {
			want := (float32(px)/255 - mean[ch]) / std[ch]
			for _, g := range x[i*n+ch*size*size : i*n+(ch+1)*size*size] {
				if math.Abs(float64(g-want)) > 1e-5 {
					t.Fatalf("view %d channel %d has %v, want %v (colour %v)", i, ch, g, want, c)
				}
			}
		}
	}
}

// TestApplyItemsKeepsOrder renders more one-colour images than there are
// goroutines and expects view i to hold colour i, for both views.
func TestApplyItemsKeepsOrder(t *testing.T) {
	ctx := context.Background()
	items, cols := constantItems(t, 2*runtime.GOMAXPROCS(0)+3, 30, 20)
	mean, std := [3]float32{0.5, 0.4, 0.3}, [3]float32{0.2, 0.25, 0.3}
	ev := EvalView{Size: 16, Mean: mean, Std: std}
	x := make([]float32, len(items)*3*16*16)
	if err := ev.ApplyItems(ctx, items, x); err != nil {
		t.Fatal(err)
	}
	checkConstantViews(t, x, cols, 16, mean, std)

	lv := LinearTrainView{Size: 12, Mean: mean, Std: std, Seed: 3}
	x = make([]float32, len(items)*3*12*12)
	for epoch := range 2 {
		if err := lv.ApplyItems(ctx, items, epoch, x); err != nil {
			t.Fatal(err)
		}
		checkConstantViews(t, x, cols, 12, mean, std)
	}
}

// TestApplyItemsFirstBadItem: with two unreadable items, the error names
// the first in listing order, whatever the number of goroutines.
func TestApplyItemsFirstBadItem(t *testing.T) {
	ctx := context.Background()
	items, _ := constantItems(t, 6, 8, 8)
	for _, i := range []int{4, 2} {
		items[i].URI = filepath.Join(t.TempDir(), "gone.png")
	}
	ev := EvalView{Size: 8, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}
	lv := LinearTrainView{Size: 8, Mean: ev.Mean, Std: ev.Std}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 3, 8} {
		runtime.GOMAXPROCS(procs)
		x := make([]float32, len(items)*3*8*8)
		for name, err := range map[string]error{
			"eval":   ev.ApplyItems(ctx, items, x),
			"linear": lv.ApplyItems(ctx, items, 0, x),
		} {
			if err == nil || !strings.HasPrefix(err.Error(), items[2].URI+": "+StageRead+": ") {
				t.Errorf("%s, %d goroutines: err %v, want one naming %s and the read stage", name, procs, err, items[2].URI)
			}
		}
	}
	if err := ev.ApplyItems(ctx, items, make([]float32, 10)); err == nil {
		t.Error("a destination too small for the views: no error")
	}
	if err := (EvalView{Size: 8}).ApplyItems(ctx, items, make([]float32, len(items)*3*8*8)); err == nil {
		t.Error("a view with std 0: no error")
	}
}

// cocoItem writes a PNG and lists it as the coco source would, with anns.
func cocoItem(t *testing.T, id int64, w, h int, at func(x, y int) color.RGBA, anns ...coco.Annotation) source.Item {
	t.Helper()
	it := writePNG(t, w, h, at)
	meta, err := json.Marshal(source.COCOMeta{ImageID: id, Width: w, Height: h, Annotations: anns})
	if err != nil {
		t.Fatal(err)
	}
	it.Meta = meta
	return it
}

func TestLoadDetectionImages(t *testing.T) {
	ctx := context.Background()
	grey := func(int, int) color.RGBA { return color.RGBA{120, 120, 120, 255} }
	checker := func(x, y int) color.RGBA {
		return color.RGBA{uint8(255 * ((x + y) % 2)), uint8(10 * x), uint8(10 * y), 255}
	}
	items := []source.Item{
		// 40×20 to 20×20: x halves, y stays.
		cocoItem(t, 7, 40, 20, grey,
			coco.Annotation{ID: 1, CategoryID: 3, BBox: coco.BBox{4, 2, 10, 6}},
			coco.Annotation{ID: 2, CategoryID: 5, BBox: coco.BBox{0, 0, 40, 20}, IsCrowd: 1},
			coco.Annotation{ID: 3, CategoryID: 5, BBox: coco.BBox{20, 10, 8, 4}}),
		// Already 20×20: the pixels are kept as they are.
		cocoItem(t, 9, 20, 20, checker, coco.Annotation{ID: 4, CategoryID: 3, BBox: coco.BBox{1, 2, 3, 4}}),
	}
	got, err := LoadDetectionImages(ctx, items, 20, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := got[0], got[1]
	if a.ID != 7 || a.ScaleX != 2 || a.ScaleY != 1 || len(a.Pix) != 3*20*20 || len(a.Objects) != 2 ||
		a.Objects[0] != (DetectionObject{CategoryID: 3, Box: [4]float64{2, 2, 5, 6}}) ||
		a.Objects[1] != (DetectionObject{CategoryID: 5, Box: [4]float64{10, 10, 4, 4}}) {
		t.Errorf("resized image: id %d, scale %v×%v, %d values, objects %+v", a.ID, a.ScaleX, a.ScaleY, len(a.Pix), a.Objects)
	}
	for i, v := range a.Pix {
		if v < 119 || v > 121 {
			t.Fatalf("a grey image resized has value %d at %d", v, i)
		}
	}
	if b.ID != 9 || b.ScaleX != 1 || b.ScaleY != 1 || len(b.Objects) != 1 || b.Objects[0].Box != [4]float64{1, 2, 3, 4} {
		t.Errorf("image at size: %+v", b.Objects)
	}
	for y := range 20 {
		for x := range 20 {
			c, p := checker(x, y), b.Pix[3*(20*y+x):]
			if p[0] != c.R || p[1] != c.G || p[2] != c.B {
				t.Fatalf("pixel (%d, %d) = %v, want %v", x, y, p[:3], c)
			}
		}
	}

	bad := items[1]
	bad.Meta = json.RawMessage(`{"image_id": "nine"}`)
	gone := items[0]
	gone.URI = filepath.Join(t.TempDir(), "gone.png")
	for _, tc := range []struct {
		items []source.Item
		size  int
		want  string
	}{
		{[]source.Item{items[0], bad}, 20, bad.URI + ": annotations"},
		{[]source.Item{items[0], gone, bad}, 20, gone.URI + ": "},
		{items, 0, "detection input size 0"},
	} {
		if _, err := LoadDetectionImages(ctx, tc.items, tc.size, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err %v, want %q", err, tc.want)
		}
	}
}
