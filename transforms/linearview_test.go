package transforms

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sslight-go/sslight/transforms/source"
)

// writePNG writes a w×h PNG whose pixel (x, y) is at(x, y) and returns it
// as a listed item.
func writePNG(t *testing.T, w, h int, at func(x, y int) color.RGBA) source.Item {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, at(x, y))
		}
	}
	path := filepath.Join(t.TempDir(), "img.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return source.Item{URI: path, Key: "class/img.png", Index: -1, Size: st.Size()}
}

// TestLinearTrainViewConstantImage: whatever the crop and flip, a
// one-colour image gives the normalised colour everywhere.
func TestLinearTrainViewConstantImage(t *testing.T) {
	it := writePNG(t, 40, 30, func(int, int) color.RGBA { return color.RGBA{10, 200, 90, 255} })
	v := LinearTrainView{Size: 16, Mean: [3]float32{0.5, 0.4, 0.3}, Std: [3]float32{0.2, 0.25, 0.3}, Seed: 1}
	dst := make([]float32, 3*16*16)
	for epoch := 0; epoch < 5; epoch++ {
		if stage, err := v.ApplyItem(context.Background(), it, epoch, dst, &EvalScratch{}); err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		for c, px := range []float32{10, 200, 90} {
			want := (px/255 - v.Mean[c]) / v.Std[c]
			for i, g := range dst[c*256 : (c+1)*256] {
				if math.Abs(float64(g-want)) > 1e-5 {
					t.Fatalf("epoch %d channel %d value %d = %v, want %v", epoch, c, i, g, want)
				}
			}
		}
	}
}

// TestLinearTrainViewDraws: the view is a pure function of (seed, key,
// epoch); across epochs the crops change and both flip states occur (a
// left-to-right ramp decreases along a row only when flipped).
func TestLinearTrainViewDraws(t *testing.T) {
	it := writePNG(t, 64, 48, func(x, y int) color.RGBA { v := uint8(4 * x); return color.RGBA{v, v, v, 255} })
	v := LinearTrainView{Size: 12, Mean: [3]float32{0, 0, 0}, Std: [3]float32{1, 1, 1}, Seed: 3}
	view := func(epoch int) []float32 {
		dst := make([]float32, 3*12*12)
		if stage, err := v.ApplyItem(context.Background(), it, epoch, dst, &EvalScratch{}); err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		return dst
	}
	if !slices.Equal(view(4), view(4)) {
		t.Fatal("the same epoch gave two views")
	}
	flipped, straight := 0, 0
	seen := map[float32]bool{}
	for epoch := 0; epoch < 20; epoch++ {
		d := view(epoch)
		seen[d[0]] = true
		if d[0] > d[11] {
			flipped++
		} else if d[0] < d[11] {
			straight++
		}
	}
	if flipped == 0 || straight == 0 {
		t.Errorf("20 epochs: %d flipped and %d straight views; want both", flipped, straight)
	}
	if len(seen) < 10 {
		t.Errorf("20 epochs gave only %d distinct first pixels: the crops do not change", len(seen))
	}
	bad := LinearTrainView{Size: 0}
	if _, err := bad.ApplyItem(context.Background(), it, 0, nil, &EvalScratch{}); err == nil {
		t.Error("size 0: no error")
	}
	missing := source.Item{URI: filepath.Join(t.TempDir(), "gone.png"), Key: "gone", Index: -1}
	if stage, err := v.ApplyItem(context.Background(), missing, 0, make([]float32, 3*12*12), &EvalScratch{}); err == nil || stage != StageRead {
		t.Errorf("missing file: stage %q, err %v", stage, err)
	}
}
