package optim

import (
	"testing"
)

func TestClipGradients(t *testing.T) {
	// Each parameter is clipped on its own norm: [3, 4] (norm 5) to norm
	// ≈1 with clip 1; [0.3, 0.4] (norm 0.5) is below the clip and kept;
	// a zero gradient stays zero; nil gradients are skipped.
	big := &Param{Name: "big", Grad: []float32{3, 4}}
	small := &Param{Name: "small", Grad: []float32{0.3, 0.4}}
	zero := &Param{Name: "zero", Grad: []float32{0, 0}}
	none := &Param{Name: "none"}
	norms := ClipGradients([]*Param{big, none, small, zero}, 1, nil)
	checkNear64(t, "norms", norms, []float64{5, 0.5, 0}, 1e-7)
	// coef = 1/(5 + 1e-6): [0.6, 0.8]·(1 − 2e-7).
	checkNear(t, "big", big.Grad, []float64{0.6 / (1 + 2e-7), 0.8 / (1 + 2e-7)}, 1e-7)
	checkNear(t, "small", small.Grad, []float64{float64(float32(0.3)), float64(float32(0.4))}, 0)
	checkNear(t, "zero", zero.Grad, []float64{0, 0}, 0)
	if none.Grad != nil {
		t.Error("nil gradient was given values")
	}
}

func TestClipGradientsReusesNorms(t *testing.T) {
	ps := []*Param{{Name: "a", Grad: []float32{1, 2}}, {Name: "b", Grad: []float32{3}}}
	norms := make([]float64, 0, len(ps))
	allocs := testing.AllocsPerRun(10, func() {
		norms = ClipGradients(ps, 100, norms[:0])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call with a reused norms slice", allocs)
	}
}

func TestCancelGradients(t *testing.T) {
	ps := []*Param{
		{Name: "student.head.last_layer.weight_g", Grad: []float32{1}},
		{Name: "student.head.last_layer.weight_v", Grad: []float32{1}},
		{Name: "student.head.mlp.0.weight", Grad: []float32{1}},
		{Name: "prototypes.weight", Grad: []float32{1}},
	}
	if n := CancelGradients(ps, "prototypes"); n != 1 || ps[3].Grad != nil {
		t.Fatalf("prototypes: dropped %d, grad %v", n, ps[3].Grad)
	}
	CancelGradientsLastLayer(ps, 1, 10, FreezeWindow{Epochs: 1})
	if ps[0].Grad == nil {
		t.Fatal("epoch 1 with FREEZE_LAST_LAYER 1 is no longer frozen, but the gradient was dropped")
	}
	CancelGradientsLastLayer(ps, 0, 9, FreezeWindow{Epochs: 1})
	if ps[0].Grad != nil || ps[1].Grad != nil || ps[2].Grad == nil {
		t.Fatalf("after cancel: %v %v %v", ps[0].Grad, ps[1].Grad, ps[2].Grad)
	}
}

func TestCancelledGradientFreezesParameter(t *testing.T) {
	// A dropped gradient means no update at all, even with weight decay and
	// momentum from earlier steps (a zeroed one would still move it).
	p := param("head.last_layer.weight", []float32{1, 2}, 1, 2)
	opt, err := NewLARS([]Group{{Params: []*Param{p}, WDFactor: 1}}, LARSConfig{Momentum: 0.9, Eta: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	p.Grad = []float32{0.5, 0.5}
	if err := opt.Step(0.1, 0.1); err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), p.Data...)
	CancelGradients([]*Param{p}, "last_layer")
	if err := opt.Step(0.1, 0.1); err != nil {
		t.Fatal(err)
	}
	checkNear(t, "p", p.Data, []float64{float64(before[0]), float64(before[1])}, 0)
}

func TestFreezeWindow(t *testing.T) {
	const itersPerEpoch = 4
	tests := []struct {
		w    FreezeWindow
		want int // number of frozen steps out of 5 epochs
	}{
		{FreezeWindow{}, 0},
		{FreezeWindow{Epochs: 1}, 4},
		{FreezeWindow{Epochs: 3}, 12},
		{FreezeWindow{Iters: 6}, 6},
		{FreezeWindow{Iters: 12}, 12},
	}
	for _, tc := range tests {
		frozen := 0
		for step := range 5 * itersPerEpoch {
			if tc.w.Frozen(step/itersPerEpoch, step) {
				frozen++
				if step >= tc.want {
					t.Errorf("%+v: step %d frozen", tc.w, step)
				}
			}
		}
		if frozen != tc.want {
			t.Errorf("%+v: %d steps frozen, want %d", tc.w, frozen, tc.want)
		}
	}
	// Iterations = epochs·itersPerEpoch freezes exactly the same steps.
	e, it := FreezeWindow{Epochs: 3}, FreezeWindow{Iters: 3 * itersPerEpoch}
	for step := range 5 * itersPerEpoch {
		if e.Frozen(step/itersPerEpoch, step) != it.Frozen(step/itersPerEpoch, step) {
			t.Errorf("step %d: epochs and iterations windows differ", step)
		}
	}
}
