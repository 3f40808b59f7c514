package optim

import (
	"math"
	"testing"
)

// near reports whether got is within abs of want (float32 results checked
// against hand-computed decimal values).
func near(got float32, want, abs float64) bool {
	return math.Abs(float64(got)-want) <= abs
}

func checkNear(t *testing.T, what string, got []float32, want []float64, abs float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !near(got[i], want[i], abs) {
			t.Errorf("%s[%d] = %.9g, want %.9g (±%g)", what, i, got[i], want[i], abs)
		}
	}
}

func checkNear64(t *testing.T, what string, got, want []float64, abs float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > abs {
			t.Errorf("%s[%d] = %.17g, want %.17g (±%g)", what, i, got[i], want[i], abs)
		}
	}
}

// param builds a named parameter with a copy of data (shape = [len]) unless
// a shape is given.
func param(name string, data []float32, shape ...int) *Param {
	if shape == nil {
		shape = []int{len(data)}
	}
	return &Param{Name: name, Shape: shape, Data: append([]float32(nil), data...)}
}

func cloneParams(ps []*Param) []*Param {
	out := make([]*Param, len(ps))
	for i, p := range ps {
		q := *p
		q.Shape = append([]int(nil), p.Shape...)
		q.Data = append([]float32(nil), p.Data...)
		if p.Grad != nil {
			q.Grad = append([]float32(nil), p.Grad...)
		}
		out[i] = &q
	}
	return out
}

func mathNaN() float64 { return math.NaN() }
func mathInf() float64 { return math.Inf(1) }
