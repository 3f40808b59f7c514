package detect

import (
	"math"
	"testing"
)

// TestDecodeHandMade decodes a 2-class 4x5 map whose peaks, scores and
// boxes are worked out by hand (stride 4, so the input is 20x16 px).
func TestDecodeHandMade(t *testing.T) {
	const k, h, w = 2, 4, 5
	heat := make([]float32, k*h*w)
	for i := range heat {
		heat[i] = -5
	}
	reg := make([]float32, 4*h*w)
	set := func(c, x, y int, logit, bw, bh, ox, oy float32) {
		heat[(c*h+y)*w+x] = logit
		for j, v := range []float32{bw, bh, ox, oy} {
			reg[(j*h+y)*w+x] = v
		}
	}
	set(0, 1, 1, 2, 2, 3, 0.5, 0.25) // peak: centre (6, 5) px, 8x12 box, top clipped at 0
	set(0, 2, 1, 1, 9, 9, 0, 0)      // next to a higher value: not a peak
	set(1, 3, 2, 0, 1, 1, 0, 0)      // peak: centre (12, 8), 4x4
	set(0, 4, 3, -1, 4, 2, 0.9, 0.5) // peak: centre (19.6, 14), 16x8, right side clipped at 20
	set(1, 0, 0, -0.5, -2, 1, 0, 0)  // peak with a negative width: an empty box
	got := Decode(heat, reg, k, h, w, 4, 4)
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	want := []Detection{
		{Class: 0, Score: sig(2), Box: [4]float64{2, 0, 8, 11}},
		{Class: 1, Score: sig(0), Box: [4]float64{10, 6, 4, 4}},
		{Class: 1, Score: sig(-0.5), Box: [4]float64{4, 0, 0, 2}},
		{Class: 0, Score: sig(-1), Box: [4]float64{11.6, 10, 8.4, 6}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d detections, want %d: %+v", len(got), len(want), got)
	}
	for i, d := range got {
		ok := d.Class == want[i].Class && math.Abs(d.Score-want[i].Score) < 1e-9
		for j := range d.Box {
			ok = ok && math.Abs(d.Box[j]-want[i].Box[j]) < 1e-5
		}
		if !ok {
			t.Errorf("detection %d = %+v, want %+v", i, d, want[i])
		}
	}
	// Without a cap every local maximum comes back: the 4 peaks above plus
	// the flat −5 cells no higher value touches.
	all := Decode(heat, reg, k, h, w, 4, 100)
	plateau := 0
	for _, d := range all[4:] {
		if math.Abs(d.Score-sig(-5)) > 1e-9 {
			t.Errorf("after the peaks, a score %g, want σ(−5)", d.Score)
		}
		plateau++
	}
	// Class 0: the 3x3 neighbourhoods of (1,1), (2,1) and (4,3) cover 9 +
	// 3 + 3 = 15 of 20 cells; class 1: those of (3,2) and (0,0) cover 9 + 4
	// = 13 (hand counted).
	if plateau != (20-15)+(20-13) {
		t.Errorf("%d plateau peaks, want %d", plateau, (20-15)+(20-13))
	}
}
