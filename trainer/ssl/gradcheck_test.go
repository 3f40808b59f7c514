package ssl

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func randMatrix(rng *rand.Rand, lo, hi float32, rows, cols int) *tensor.Dense {
	d := make([]float32, rows*cols)
	for i := range d {
		d[i] = lo + (hi-lo)*rng.Float32()
	}
	return tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(d))
}

// fdCheck compares the analytic gradient got of a loss over x with central
// finite differences of lossAt, which evaluates the loss (in float64) at x
// with one element changed. The step actually taken is measured after
// rounding x±h to float32, so only the loss's float64 rounding and the
// O(h²) term remain.
func fdCheck(t *testing.T, name string, x []float32, got []float32, h float64, lossAt func() float64) {
	t.Helper()
	var maxG float64
	for _, g := range got {
		maxG = math.Max(maxG, math.Abs(float64(g)))
	}
	if maxG == 0 {
		t.Fatalf("%s: analytic gradient is all zero", name)
	}
	bad := 0
	for i := range x {
		orig := x[i]
		plus, minus := float32(float64(orig)+h), float32(float64(orig)-h)
		x[i] = plus
		lp := lossAt()
		x[i] = minus
		lm := lossAt()
		x[i] = orig
		num := (lp - lm) / (float64(plus) - float64(minus))
		if math.Abs(num-float64(got[i])) > 2e-3*maxG+1e-2*math.Abs(num) {
			if bad < 5 {
				t.Errorf("%s: d/dx[%d]: analytic %v, finite difference %v", name, i, got[i], num)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d gradient entries off (max |grad| %v)", name, bad, len(x), maxG)
	}
}

func TestDINOGradientFiniteDifference(t *testing.T) {
	for _, tc := range []struct {
		name       string
		g, l       int
		globalOnly bool
	}{
		{"2x3", 2, 3, false},
		{"3x2", 3, 2, false},
		{"2x4 global only", 2, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			const b, d = 3, 7
			loss, err := NewDINOLoss(DINOConfig{GlobalCrops: tc.g, LocalCrops: tc.l, Lambdas: [2]float64{0.4, 0.6},
				GlobalOnly: tc.globalOnly, StudentTemp: 0.1, TeacherTemps: []float64{0.05}, CenterMomentum: 0.9, OutDim: d})
			if err != nil {
				t.Fatal(err)
			}
			center := randMatrix(rng, -0.2, 0.2, 1, d).Float32s()
			if err := loss.LoadState(DINOState{Center: center}); err != nil {
				t.Fatal(err)
			}
			s := randMatrix(rng, -0.5, 0.5, (tc.g+tc.l)*b, d)
			te := randMatrix(rng, -0.5, 0.5, tc.g*b, d)
			_, grads := graphRun(t, []*tensor.Dense{s, te}, []bool{true, false},
				func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1]) })
			scratch := make([]float32, s.Shape().TotalSize())
			x := s.Float32s()
			fdCheck(t, "dino", x, grads[0], 1e-3, func() float64 {
				if err := loss.LoadState(DINOState{Center: center}); err != nil {
					t.Fatal(err)
				}
				return loss.compute(x, te.Float32s(), scratch, b, d)
			})
			if tc.globalOnly {
				for i, v := range grads[0][tc.g*b*d:] {
					if v != 0 {
						t.Fatalf("GLOBAL_ONLY: local row gradient %d is %v, want 0", i, v)
					}
				}
			}
		})
	}
}

func TestSwAVGradientFiniteDifference(t *testing.T) {
	// The codes carry no gradient (as the reference's no_grad Sinkhorn), so
	// the finite differences hold the codes of the analysed step fixed and
	// vary only the predictions.
	rng := rand.New(rand.NewPCG(3, 4))
	const b, k, e = 3, 5, 4
	loss, err := NewSwAVLoss(SwAVConfig{GlobalCrops: 2, LocalCrops: 3, Lambdas: [2]float64{0.4, 0.6},
		CropsForAssign: []int{0, 1}, Temperature: 0.1, Epsilon: 0.05, SinkhornIterations: 3})
	if err != nil {
		t.Fatal(err)
	}
	out := randMatrix(rng, -1, 1, 5*b, k)
	emb := randMatrix(rng, -1, 1, 5*b, e)
	w := randMatrix(rng, -1, 1, k, e)
	_, grads := graphRun(t, []*tensor.Dense{out, emb, w}, []bool{true, false, false},
		func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1], in[2]) })
	scratch := make([]float32, out.Shape().TotalSize())
	fdCheck(t, "swav", out.Float32s(), grads[0], 1e-3, func() float64 {
		return loss.predict(out.Float32s(), scratch, b, k)
	})
}

func TestMoCoGradientFiniteDifference(t *testing.T) {
	for _, tc := range []struct {
		name       string
		local      int
		globalOnly bool
	}{
		{"2x3", 3, false},
		{"global only", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			const b, c, kq = 2, 6, 8
			loss, err := NewMoCoLoss(MoCoConfig{GlobalCrops: 2, LocalCrops: tc.local, Lambdas: [2]float64{0.4, 0.6},
				GlobalOnly: tc.globalOnly, Dim: c, QueueLength: kq, Temperature: 0.2, Seed: 9})
			if err != nil {
				t.Fatal(err)
			}
			st := loss.State()
			q := randMatrix(rng, -1, 1, loss.QueryViews()*b, c)
			k := randMatrix(rng, -1, 1, b, c)
			_, grads := graphRun(t, []*tensor.Dense{q, k}, []bool{true, false},
				func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1]) })
			scratch := make([]float32, q.Shape().TotalSize())
			fdCheck(t, "moco", q.Float32s(), grads[0], 1e-3, func() float64 {
				if err := loss.LoadState(st); err != nil {
					t.Fatal(err)
				}
				return loss.compute(q.Float32s(), k.Float32s(), scratch, b)
			})
		})
	}
}

func TestSinkhornRowsAndColumns(t *testing.T) {
	// After the final column step every sample's assignment sums to 1; run
	// long enough, Sinkhorn-Knopp also spreads the mass evenly over the
	// prototypes (n/k each), which 3 iterations only approach.
	rng := rand.New(rand.NewPCG(7, 8))
	const n, k = 12, 5
	scores := randMatrix(rng, -1, 1, n, k).Float32s()
	q := make([]float32, n*k)
	if err := Sinkhorn(q, scores, n, k, 0.05, 3); err != nil {
		t.Fatal(err)
	}
	long := make([]float32, n*k)
	if err := Sinkhorn(long, scores, n, k, 0.05, 500); err != nil {
		t.Fatal(err)
	}
	for r := 0; r < n; r++ {
		var s float64
		for _, v := range q[r*k : (r+1)*k] {
			if v < 0 {
				t.Fatalf("negative assignment %v", v)
			}
			s += float64(v)
		}
		if math.Abs(s-1) > 1e-6 {
			t.Errorf("row %d sums to %v", r, s)
		}
	}
	for j := 0; j < k; j++ {
		var s float64
		for r := 0; r < n; r++ {
			s += float64(long[r*k+j])
		}
		if math.Abs(s-float64(n)/k) > 1e-3 {
			t.Errorf("prototype %d mass %v, want about %v", j, s, float64(n)/k)
		}
	}
}

func TestSinkhornBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scores []float32
		n, k   int
		eps    float64
	}{
		{"size", make([]float32, 5), 2, 3, 0.05},
		{"empty", nil, 0, 3, 0.05},
		{"eps", make([]float32, 6), 2, 3, 0},
		{"overflow", []float32{100, 0, 0, 0, 0, 0}, 2, 3, 0.05},
		{"nan", []float32{float32(math.NaN()), 0, 0, 0, 0, 0}, 2, 3, 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Sinkhorn(make([]float32, len(tc.scores)), tc.scores, tc.n, tc.k, tc.eps, 3); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
