package optim

import (
	"errors"
	"math"
	"testing"
)

// FuzzCosineSchedule: any arguments give either an ErrInvalidSchedule or a
// schedule of epochs·itersPerEpoch finite values that stay within the range
// of its end points (up to rounding), equal to the iteration-counted
// variant, and never a panic.
func FuzzCosineSchedule(f *testing.F) {
	f.Add(0.24, 0.0048, 6, 5, 2, 0.0)
	f.Add(0.996, 1.0, 6, 5, 0, 0.0)
	f.Add(0.1, 0.001, 2, 3, 2, 0.0)
	f.Add(1.0, 0.0, 0, 3, 0, 0.0)
	f.Add(1.0, 0.0, 3, 3, 4, 0.0)
	f.Add(math.Inf(1), 0.0, 1, 1, 0, 0.0)
	f.Add(1e308, -1e308, 2, 2, 1, 0.0)
	f.Fuzz(func(t *testing.T, base, final float64, epochs, iters, warmup int, start float64) {
		if epochs > 0 && iters > 0 && epochs > 1<<16/iters {
			t.Skip("long schedules only cost memory")
		}
		got, err := CosineSchedule(base, final, epochs, iters, warmup, start)
		if err != nil {
			if !errors.Is(err, ErrInvalidSchedule) {
				t.Fatalf("error %v does not wrap ErrInvalidSchedule", err)
			}
			return
		}
		if len(got) != epochs*iters {
			t.Fatalf("%d values, want %d", len(got), epochs*iters)
		}
		lo := math.Min(math.Min(base, final), start)
		hi := math.Max(math.Max(base, final), start)
		slack := 4 * 0x1p-52 * math.Max(math.Abs(lo), math.Abs(hi))
		for i, v := range got {
			if math.IsInf(hi-lo, 0) {
				break // the range itself overflows: values may too
			}
			if v < lo-slack || v > hi+slack {
				t.Fatalf("[%d] = %v outside [%v, %v]", i, v, lo, hi)
			}
		}
		it, err := CosineScheduleIters(base, final, epochs*iters, warmup*iters, start)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if it[i] != got[i] && !(math.IsNaN(it[i]) && math.IsNaN(got[i])) {
				t.Fatalf("[%d]: iteration variant %v, epoch variant %v", i, it[i], got[i])
			}
		}
	})
}

// FuzzMultiStepSchedule: milestones come from the fuzzer's bytes; the
// result is an error or a non-increasing (gamma ≤ 1, base ≥ 0) schedule of
// the right length whose value changes only at milestone epochs.
func FuzzMultiStepSchedule(f *testing.F) {
	f.Add([]byte{3, 5}, 6, 2, 0)
	f.Add([]byte{0}, 1, 1, 0)
	f.Add([]byte{2, 2}, 4, 3, 0)
	f.Add([]byte{}, 4, 3, 0)
	f.Add([]byte{5, 3}, 6, 2, 0)
	f.Add([]byte{3}, 6, 2, 1)
	f.Fuzz(func(t *testing.T, ms []byte, epochs, iters, warmup int) {
		if epochs > 0 && iters > 0 && epochs > 1<<16/iters {
			t.Skip("long schedules only cost memory")
		}
		milestones := make([]int, len(ms))
		for i, m := range ms {
			milestones[i] = int(int8(m))
		}
		got, err := MultiStepSchedule(0.3, milestones, 0.1, epochs, iters, warmup)
		if err != nil {
			if !errors.Is(err, ErrInvalidSchedule) {
				t.Fatalf("error %v does not wrap ErrInvalidSchedule", err)
			}
			return
		}
		if len(got) != epochs*iters {
			t.Fatalf("%d values, want %d", len(got), epochs*iters)
		}
		for i := 1; i < len(got); i++ {
			if got[i] > got[i-1] {
				t.Fatalf("[%d] = %v rises from %v", i, got[i], got[i-1])
			}
			if got[i] != got[i-1] {
				epoch := i / iters
				if i%iters != 0 || !containsInt(milestones, epoch) {
					t.Fatalf("value changes at iteration %d, not at a milestone epoch %v", i, milestones)
				}
			}
		}
	})
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// FuzzLoadState: a checkpoint's optimiser state is outside input. Any key,
// length and step count is either rejected with ErrState, leaving the state
// as it was, or loaded so that State() gives back exactly what was loaded.
func FuzzLoadState(f *testing.F) {
	f.Add("fc.weight/exp_avg", "fc.weight/exp_avg_sq", 6, int64(3))
	f.Add("fc.weight/mu", "fc.bias/mu", 6, int64(0))
	f.Add("fc.bias/exp_avg", "fc.bias/exp_avg_sq", 3, int64(1))
	f.Add("nope", "/", 0, int64(-1))
	f.Add("fc.weight/", "/exp_avg", 6, int64(1))
	f.Fuzz(func(t *testing.T, key1, key2 string, n int, step int64) {
		if n < 0 || n > 64 {
			return
		}
		for _, method := range []string{MethodLARS, MethodSGD, MethodAdamW} {
			opt := newOpt(t, method, model())
			if err := opt.Step(0.1, 0.1); err != nil {
				t.Fatal(err)
			}
			st := State{Buffers: map[string][]float32{key1: make([]float32, n), key2: make([]float32, n)}}
			if method == MethodAdamW {
				if p, _, ok := SplitStateKey(key1); ok {
					st.Steps = map[string]int64{p: step}
				}
			}
			before := opt.State()
			if err := opt.LoadState(st); err != nil {
				if !errors.Is(err, ErrState) {
					t.Fatalf("%s: error %v does not wrap ErrState", method, err)
				}
				if after := opt.State(); len(after.Buffers) != len(before.Buffers) {
					t.Fatalf("%s: failed load changed the state", method)
				}
				continue
			}
			got := opt.State()
			if len(got.Buffers) != len(st.Buffers) {
				t.Fatalf("%s: loaded %d buffers, state has %d", method, len(st.Buffers), len(got.Buffers))
			}
			for k := range st.Buffers {
				if len(got.Buffers[k]) != n {
					t.Fatalf("%s: %s has %d values after loading %d", method, k, len(got.Buffers[k]), n)
				}
			}
			for p, s := range st.Steps {
				if got.Steps[p] != s {
					t.Fatalf("%s: step of %s = %d, loaded %d", method, p, got.Steps[p], s)
				}
			}
			// The loaded state must be usable.
			if err := opt.Step(0.1, 0.1); err != nil {
				t.Fatal(err)
			}
		}
	})
}
