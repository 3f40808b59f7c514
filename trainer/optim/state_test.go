package optim

import (
	"errors"
	"math"
	"testing"
)

// model returns a small parameter set with every group kind, with
// gradients for all but "frozen".
func model() []*Param {
	ps := []*Param{
		param("conv.weight", []float32{0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8}, 2, 1, 2, 2),
		param("fc.weight", []float32{1, -1, 0.5, 0.25, -0.125, 2}, 3, 2),
		param("fc.bias", []float32{0.1, 0, -0.1}),
		param("frozen", []float32{7, 8}, 1, 2),
	}
	for i, p := range ps[:3] {
		p.Grad = make([]float32, len(p.Data))
		for j := range p.Grad {
			p.Grad[j] = float32(math.Sin(float64(3*i+j+1))) * 0.1
		}
	}
	return ps
}

func newOpt(t *testing.T, method string, ps []*Param) Optimizer {
	t.Helper()
	opt, err := New(method, GroupParams(ps, GroupConfig{WDFactorForBias: 0, WDFactorForDW: 0.5, LARSExcludeBias: true}), 0.9)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

// TestStateRoundTripResumesExactly: three steps in one run equal two steps,
// a State/LoadState hand-over to a fresh optimiser, and a third step — bit
// for bit.
func TestStateRoundTripResumesExactly(t *testing.T) {
	lrs := []float64{0.3, 0.2, 0.1}
	wds := []float64{1e-2, 2e-2, 3e-2}
	for _, method := range []string{MethodLARS, MethodSGD, MethodAdamW} {
		t.Run(method, func(t *testing.T) {
			straight := model()
			opt := newOpt(t, method, straight)
			for s := range 3 {
				if err := opt.Step(lrs[s], wds[s]); err != nil {
					t.Fatal(err)
				}
			}

			resumed := model()
			first := newOpt(t, method, resumed)
			for s := range 2 {
				if err := first.Step(lrs[s], wds[s]); err != nil {
					t.Fatal(err)
				}
			}
			saved := first.State()
			restored := cloneParams(resumed) // what the checkpoint holds
			// The saved state must be a copy: later steps of the first
			// optimiser cannot change it.
			if err := first.Step(9, 9); err != nil {
				t.Fatal(err)
			}
			second := newOpt(t, method, restored)
			if err := second.LoadState(saved); err != nil {
				t.Fatal(err)
			}
			if err := second.Step(lrs[2], wds[2]); err != nil {
				t.Fatal(err)
			}
			for i := range straight {
				for j := range straight[i].Data {
					if straight[i].Data[j] != restored[i].Data[j] {
						t.Fatalf("%s[%d]: resumed %v, uninterrupted %v", straight[i].Name, j, restored[i].Data[j], straight[i].Data[j])
					}
				}
			}
			if _, has := saved.Buffers[StateKey("frozen", "mu")]; has {
				t.Error("parameter without gradient has saved state")
			}
		})
	}
}

func TestStateKeys(t *testing.T) {
	ps := model()
	for method, want := range map[string][]string{
		MethodLARS:  {"mu"},
		MethodSGD:   {"momentum_buffer"},
		MethodAdamW: {"exp_avg", "exp_avg_sq"},
	} {
		opt := newOpt(t, method, cloneParams(ps))
		if err := opt.Step(0.1, 0.1); err != nil {
			t.Fatal(err)
		}
		st := opt.State()
		if len(st.Buffers) != 3*len(want) {
			t.Errorf("%s: %d buffers, want %d", method, len(st.Buffers), 3*len(want))
		}
		for _, name := range []string{"conv.weight", "fc.weight", "fc.bias"} {
			for _, buf := range want {
				key := StateKey(name, buf)
				if len(st.Buffers[key]) != len(ps[0].Data) && name == "conv.weight" {
					t.Errorf("%s: %s has %d values", method, key, len(st.Buffers[key]))
				}
				p, b, ok := SplitStateKey(key)
				if !ok || p != name || b != buf {
					t.Errorf("SplitStateKey(%q) = %q %q %v", key, p, b, ok)
				}
			}
		}
		if method == MethodAdamW && (len(st.Steps) != 3 || st.Steps["fc.bias"] != 1) {
			t.Errorf("AdamW steps = %v, want 1 for each of 3 parameters", st.Steps)
		}
		if method != MethodAdamW && st.Steps != nil {
			t.Errorf("%s has step counts %v", method, st.Steps)
		}
	}
}

func TestLoadStateRejectsMismatches(t *testing.T) {
	two := []float32{0, 0}
	six := make([]float32, 6)
	tests := []struct {
		method string
		name   string
		state  State
	}{
		{MethodLARS, "unknown parameter", State{Buffers: map[string][]float32{"nope/mu": two}}},
		{MethodLARS, "unknown buffer", State{Buffers: map[string][]float32{"fc.bias/momentum_buffer": make([]float32, 3)}}},
		{MethodLARS, "wrong length", State{Buffers: map[string][]float32{"fc.weight/mu": two}}},
		{MethodLARS, "key without buffer", State{Buffers: map[string][]float32{"fc.weight": six}}},
		{MethodLARS, "step counts", State{Buffers: map[string][]float32{"fc.weight/mu": six}, Steps: map[string]int64{"fc.weight": 1}}},
		{MethodSGD, "LARS buffer", State{Buffers: map[string][]float32{"fc.weight/mu": six}}},
		{MethodAdamW, "one of two buffers", State{Buffers: map[string][]float32{"fc.weight/exp_avg": six}, Steps: map[string]int64{"fc.weight": 1}}},
		{MethodAdamW, "buffers without step", State{Buffers: map[string][]float32{"fc.weight/exp_avg": six, "fc.weight/exp_avg_sq": six}}},
		{MethodAdamW, "step without buffers", State{Steps: map[string]int64{"fc.weight": 1}}},
		{MethodAdamW, "zero step", State{Buffers: map[string][]float32{"fc.weight/exp_avg": six, "fc.weight/exp_avg_sq": six}, Steps: map[string]int64{"fc.weight": 0}}},
		{MethodAdamW, "step of unknown parameter", State{Steps: map[string]int64{"nope": 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.method+"/"+tc.name, func(t *testing.T) {
			opt := newOpt(t, tc.method, model())
			if err := opt.Step(0.1, 0.1); err != nil {
				t.Fatal(err)
			}
			before := opt.State()
			if err := opt.LoadState(tc.state); !errors.Is(err, ErrState) {
				t.Fatalf("error %v, want ErrState", err)
			}
			after := opt.State()
			if len(after.Buffers) != len(before.Buffers) {
				t.Fatalf("failed load changed the state: %d buffers, had %d", len(after.Buffers), len(before.Buffers))
			}
			for k, v := range before.Buffers {
				for i := range v {
					if after.Buffers[k][i] != v[i] {
						t.Fatalf("failed load changed %s", k)
					}
				}
			}
		})
	}
}

func TestLoadEmptyStateResets(t *testing.T) {
	opt := newOpt(t, MethodAdamW, model())
	if err := opt.Step(0.1, 0.1); err != nil {
		t.Fatal(err)
	}
	if err := opt.LoadState(State{}); err != nil {
		t.Fatal(err)
	}
	if st := opt.State(); len(st.Buffers) != 0 || len(st.Steps) != 0 {
		t.Fatalf("state after loading an empty one: %d buffers, steps %v", len(st.Buffers), st.Steps)
	}
}
