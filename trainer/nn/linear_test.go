package nn

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestLinearLargeMatchesDefinition covers the linear ops big enough to be
// split over the workers (odd row counts, so the pieces are uneven):
// output and the three gradients of sum(linear(x)·r) against their float64
// definitions, y = x·wᵀ + b, dx = r·w, dw = rᵀ·x, db = Σ_rows r.
func TestLinearLargeMatchesDefinition(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	for _, sz := range [][3]int{{67, 130, 161}, {5, 1024, 300}} {
		m, k, o := sz[0], sz[1], sz[2]
		if m*k*o < linearSplit {
			t.Fatalf("%v: below linearSplit, not a split case", sz)
		}
		rng := rand.New(rand.NewPCG(61, 62))
		x, w, b := randTensor(rng, -1, 1, m, k), randTensor(rng, -1, 1, o, k), randTensor(rng, -1, 1, o)
		r := randTensor(rng, -1, 1, m, o)
		g := gorgonia.NewGraph()
		var in [3]*gorgonia.Node
		for i, v := range []*tensor.Dense{x, w, b} {
			in[i] = gorgonia.NewTensor(g, tensor.Float32, v.Dims(), gorgonia.WithShape(v.Shape()...), gorgonia.WithName(fmt.Sprint("in", i)), gorgonia.WithValue(v))
		}
		y := gorgonia.Must(LinearOp(in[0], in[1], in[2]))
		rn := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(m, o), gorgonia.WithName("r"), gorgonia.WithValue(r))
		loss := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(y, rn))))
		if _, err := gorgonia.Grad(loss, in[:]...); err != nil {
			t.Fatal(err)
		}
		vm := gorgonia.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		xs, ws, bs, rs := x.Float32s(), w.Float32s(), b.Float32s(), r.Float32s()
		wantY := make([]float64, m*o)
		wantDx := make([]float64, m*k)
		wantDw := make([]float64, o*k)
		wantDb := make([]float64, o)
		for i := 0; i < m; i++ {
			for j := 0; j < o; j++ {
				s := float64(bs[j])
				rv := float64(rs[i*o+j])
				for l := 0; l < k; l++ {
					s += float64(xs[i*k+l]) * float64(ws[j*k+l])
					wantDx[i*k+l] += rv * float64(ws[j*k+l])
					wantDw[j*k+l] += rv * float64(xs[i*k+l])
				}
				wantY[i*o+j] = s
				wantDb[j] += rv
			}
		}
		name := fmt.Sprint("Linear ", sz)
		assertClose(t, name+" y", y.Value().Data().([]float32), wantY, 1e-5)
		for i, want := range [][]float64{wantDx, wantDw, wantDb} {
			gv, err := in[i].Grad()
			if err != nil {
				t.Fatal(err)
			}
			assertClose(t, fmt.Sprintf("%s d/din%d", name, i), gv.Data().([]float32), want, 1e-4)
		}
		vm.Close()
	}
}
