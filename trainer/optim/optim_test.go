package optim

import (
	"errors"
	"fmt"
	"testing"
)

// Hand-computed updates. Tolerances are a few float32 ulps of the values.

func TestLARSAdaptiveStep(t *testing.T) {
	// p = [3, 4] (‖p‖ = 5), g = [0.6, 0.8] (‖g‖ = 1), wd 0, lr 1:
	// q = 0.001·5/1 = 0.005, mu = [0.003, 0.004], p = [2.997, 3.996] = 0.999·p.
	// Step 2, same g: ‖p‖ = 4.995, q = 0.004995, dp = [0.002997, 0.003996],
	// mu = 0.9·[0.003, 0.004] + dp = [0.005697, 0.007596],
	// p = [2.991303, 3.988404].
	p := param("w", []float32{3, 4}, 1, 2)
	opt, err := NewLARS([]Group{{Params: []*Param{p}, WDFactor: 1}}, LARSConfig{Momentum: 0.9, Eta: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	p.Grad = []float32{0.6, 0.8}
	if err := opt.Step(1, 0); err != nil {
		t.Fatal(err)
	}
	checkNear(t, "p after 1", p.Data, []float64{2.997, 3.996}, 1e-6)
	checkNear(t, "mu after 1", opt.State().Buffers["w/mu"], []float64{0.003, 0.004}, 1e-9)
	if err := opt.Step(1, 0); err != nil {
		t.Fatal(err)
	}
	checkNear(t, "p after 2", p.Data, []float64{2.991303, 3.988404}, 1e-6)
	checkNear(t, "mu after 2", opt.State().Buffers["w/mu"], []float64{0.005697, 0.007596}, 1e-9)
}

func TestLARSExcludedGroupAndWeightDecayFactor(t *testing.T) {
	// Group 1 with WDFactor 0.5 and wd 0.2: weight decay 0.1, no trust
	// ratio. p = [1, −2], g = [0.5, 0.5], lr 0.1:
	// dp = [0.6, 0.3] = mu, p = [0.94, −2.03];
	// dp = [0.594, 0.297], mu = [1.134, 0.567], p = [0.8266, −2.0867].
	anchor := param("anchor", []float32{1, 1}, 1, 2) // group 0, no gradient
	p := param("b", []float32{1, -2})
	opt, err := NewLARS([]Group{{Params: []*Param{anchor}, WDFactor: 1}, {Params: []*Param{p}, WDFactor: 0.5, LARSExclude: true}},
		LARSConfig{Momentum: 0.9, Eta: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	p.Grad = []float32{0.5, 0.5}
	for range 2 {
		if err := opt.Step(0.1, 0.2); err != nil {
			t.Fatal(err)
		}
	}
	checkNear(t, "p", p.Data, []float64{0.8266, -2.0867}, 1e-6)
	checkNear(t, "mu", opt.State().Buffers["b/mu"], []float64{1.134, 0.567}, 1e-6)
	// The parameter without a gradient is untouched and has no state.
	checkNear(t, "anchor", anchor.Data, []float64{1, 1}, 0)
	if _, has := opt.State().Buffers["anchor/mu"]; has {
		t.Error("parameter without gradient has state")
	}
}

func TestLARSZeroNorms(t *testing.T) {
	// ‖p‖ = 0: q = 1, so mu = g and p = −lr·g. A zero gradient with wd 0
	// gives ‖dp‖ = 0: q = 1, mu stays 0 but is created.
	zero := param("zero", []float32{0, 0}, 1, 2)
	still := param("still", []float32{2, 3}, 1, 2)
	opt, err := NewLARS([]Group{{Params: []*Param{zero, still}, WDFactor: 1}}, LARSConfig{Momentum: 0.9, Eta: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	zero.Grad = []float32{1, -2}
	still.Grad = []float32{0, 0}
	if err := opt.Step(0.5, 0); err != nil {
		t.Fatal(err)
	}
	checkNear(t, "zero", zero.Data, []float64{-0.5, 1}, 0)
	checkNear(t, "still", still.Data, []float64{2, 3}, 0)
	checkNear(t, "still mu", opt.State().Buffers["still/mu"], []float64{0, 0}, 0)
}

func TestSGDMomentum(t *testing.T) {
	// torch SGD, momentum 0.9, wd 0.5, lr 0.1, p = [1, 2], g = [0.1, 0.2]:
	// step 1: dp = [0.6, 1.2], buf = dp (cloned), p = [0.94, 1.88];
	// step 2: dp = [0.57, 1.14], buf = [1.11, 2.22], p = [0.829, 1.658].
	p := param("w", []float32{1, 2}, 2, 1)
	opt, err := NewSGD([]Group{{Params: []*Param{p}, WDFactor: 1}}, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	p.Grad = []float32{0.1, 0.2}
	if err := opt.Step(0.1, 0.5); err != nil {
		t.Fatal(err)
	}
	checkNear(t, "p after 1", p.Data, []float64{0.94, 1.88}, 1e-6)
	checkNear(t, "buf after 1", opt.State().Buffers["w/momentum_buffer"], []float64{0.6, 1.2}, 1e-6)
	if err := opt.Step(0.1, 0.5); err != nil {
		t.Fatal(err)
	}
	checkNear(t, "p after 2", p.Data, []float64{0.829, 1.658}, 1e-6)
	checkNear(t, "buf after 2", opt.State().Buffers["w/momentum_buffer"], []float64{1.11, 2.22}, 1e-6)
}

func TestSGDWithoutMomentumKeepsNoState(t *testing.T) {
	// momentum 0: p −= lr·g exactly (wd 0 adds nothing), no buffer.
	p := param("w", []float32{1, 2}, 1, 2)
	opt, err := NewSGD([]Group{{Params: []*Param{p}, WDFactor: 1}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.Grad = []float32{0.5, -0.25}
	if err := opt.Step(2, 0); err != nil {
		t.Fatal(err)
	}
	checkNear(t, "p", p.Data, []float64{0, 2.5}, 0)
	if n := len(opt.State().Buffers); n != 0 {
		t.Errorf("%d buffers, want none", n)
	}
}

func TestAdamWStep(t *testing.T) {
	// With a constant gradient the bias-corrected moments are m̂ = g and
	// v̂ = g², so each step is p·(1−lr·wd) − lr·g/(|g|+eps) ≈ p·0.999 ∓ 0.01
	// for lr 0.01, wd 0.1. A zero gradient only decays.
	// Step 1: [0.989, −0.989, 0.4995]; step 2: [0.978011, −0.978011, 0.4990005].
	// Moments after 2 steps: m = 0.19·g, v = 0.001999·g².
	p := param("w", []float32{1, -1, 0.5}, 3, 1)
	opt, err := NewAdamW([]Group{{Params: []*Param{p}, WDFactor: 1}}, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.Grad = []float32{0.1, -0.2, 0}
	if err := opt.Step(0.01, 0.1); err != nil {
		t.Fatal(err)
	}
	checkNear(t, "p after 1", p.Data, []float64{0.989, -0.989, 0.4995}, 2e-7)
	if err := opt.Step(0.01, 0.1); err != nil {
		t.Fatal(err)
	}
	checkNear(t, "p after 2", p.Data, []float64{0.978011, -0.978011, 0.4990005}, 2e-7)
	st := opt.State()
	checkNear(t, "exp_avg", st.Buffers["w/exp_avg"], []float64{0.019, -0.038, 0}, 1e-8)
	checkNear(t, "exp_avg_sq", st.Buffers["w/exp_avg_sq"], []float64{1.999e-5, 7.996e-5, 0}, 1e-11)
	if st.Steps["w"] != 2 {
		t.Errorf("step = %d, want 2", st.Steps["w"])
	}
}

func TestAdamWStepCountsArePerParameter(t *testing.T) {
	// A parameter that misses a step (no gradient) keeps its own, smaller
	// count, so its bias correction restarts as torch's does.
	a := param("a", []float32{1}, 1, 1)
	b := param("b", []float32{1}, 1, 1)
	opt, err := NewAdamW([]Group{{Params: []*Param{a, b}, WDFactor: 1}}, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	a.Grad = []float32{1}
	if err := opt.Step(0.1, 0); err != nil {
		t.Fatal(err)
	}
	b.Grad = []float32{1}
	if err := opt.Step(0.1, 0); err != nil {
		t.Fatal(err)
	}
	st := opt.State()
	if st.Steps["a"] != 2 || st.Steps["b"] != 1 {
		t.Fatalf("steps = %v, want a:2 b:1", st.Steps)
	}
	// Constant gradient 1: each step moves by lr·1/(1+eps) whatever t is.
	checkNear(t, "a", a.Data, []float64{0.8}, 1e-6)
	checkNear(t, "b", b.Data, []float64{0.9}, 1e-6)
}

func TestStepRejectsBadGradientAndChangesNothing(t *testing.T) {
	for _, method := range []string{MethodLARS, MethodSGD, MethodAdamW} {
		t.Run(method, func(t *testing.T) {
			good := param("good", []float32{1, 2}, 1, 2)
			bad := param("bad", []float32{1, 2, 3})
			opt, err := New(method, GroupParams([]*Param{good, bad}, GroupConfig{}), 0.9)
			if err != nil {
				t.Fatal(err)
			}
			good.Grad = []float32{1, 1}
			bad.Grad = []float32{1, 1}
			err = opt.Step(0.1, 0.1)
			if !errors.Is(err, ErrShape) {
				t.Fatalf("error %v, want ErrShape", err)
			}
			checkNear(t, "good", good.Data, []float64{1, 2}, 0)
			if n := len(opt.State().Buffers); n != 0 {
				t.Errorf("failed step created %d buffers", n)
			}
			// Data re-bound to a different length is caught too.
			bad.Grad = nil
			good.Data = good.Data[:1]
			if err := opt.Step(0.1, 0.1); !errors.Is(err, ErrShape) {
				t.Fatalf("shrunk data: error %v, want ErrShape", err)
			}
		})
	}
}

func TestNewUnknownOptimizer(t *testing.T) {
	if _, err := New("Adam", nil, 0.9); !errors.Is(err, ErrUnknownOptimizer) {
		t.Fatalf("error %v, want ErrUnknownOptimizer", err)
	}
	for method, want := range map[string]string{MethodLARS: "*optim.LARS", MethodSGD: "*optim.SGD", MethodAdamW: "*optim.AdamW"} {
		opt, err := New(method, nil, 0.9)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%T", opt); got != want {
			t.Errorf("New(%q) = %s, want %s", method, got, want)
		}
	}
}

func TestBadHyperParameters(t *testing.T) {
	if _, err := NewAdamW(nil, AdamWConfig{Beta1: 1, Beta2: 0.999, Eps: 1e-8}); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("beta1 = 1: error %v", err)
	}
	if _, err := NewLARS(nil, LARSConfig{Momentum: 0.9, Eta: mathNaN()}); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("NaN eta: error %v", err)
	}
	if _, err := NewSGD(nil, mathInf()); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("infinite momentum: error %v", err)
	}
}
