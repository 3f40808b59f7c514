package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bnActRun builds loss = sum(f(x, gamma, beta) * r) and returns the output,
// the gradients of x, gamma and beta, and the running statistics after one
// run.
func bnActRun(t *testing.T, x, gamma, beta, r *tensor.Dense, stats *BNStats,
	f func(x, g, b *gorgonia.Node) (*gorgonia.Node, error)) (out []float32, grads [3][]float32) {
	t.Helper()
	g := gorgonia.NewGraph()
	var in [3]*gorgonia.Node
	for i, v := range []*tensor.Dense{x, gamma, beta} {
		in[i] = gorgonia.NewTensor(g, tensor.Float32, v.Dims(), gorgonia.WithShape(v.Shape()...), gorgonia.WithName(fmt.Sprint("in", i)), gorgonia.WithValue(v.Clone()))
	}
	y, err := f(in[0], in[1], in[2])
	if err != nil {
		t.Fatal(err)
	}
	rn := gorgonia.NewTensor(g, tensor.Float32, r.Dims(), gorgonia.WithShape(r.Shape()...), gorgonia.WithName("r"), gorgonia.WithValue(r))
	loss := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(y, rn))))
	if _, err := gorgonia.Grad(loss, in[:]...); err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	out = append(out, y.Value().Data().([]float32)...)
	for i, n := range in {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		grads[i] = append([]float32(nil), gv.Data().([]float32)...)
	}
	return out, grads
}

// TestBatchNormActMatchesComposition: the fused op must give exactly what
// BatchNormOp followed by ActivationOp gives (both gradient-checked on
// their own), forward, backward and running statistics, including values
// that sit exactly on the activation's kinks.
func TestBatchNormActMatchesComposition(t *testing.T) {
	shapes := [][]int{{3, 2, 2, 3}, {4, 3, 5, 5}, {2, 2, 1, 1}, {6, 4}, {2, 3, 4, 4}}
	for _, a := range []Activation{ReLU, ReLU6} {
		for _, training := range []bool{true, false} {
			for _, shape := range shapes {
				name := fmt.Sprintf("%v train=%v %v", a, training, shape)
				rng := rand.New(rand.NewPCG(51, 52))
				c := shape[1]
				x := randTensor(rng, -3, 3, shape...)
				gamma := randTensor(rng, 1, 5, c) // wide enough to pass 6
				beta := randTensor(rng, -1, 2, c)
				r := randTensor(rng, -1, 1, shape...)
				mk := func() *BNStats {
					s := NewBNStats(c)
					for i := range c {
						s.Mean[i], s.Var[i] = 0.2*float32(i)-0.1, 0.5+float32(i)
					}
					return s
				}
				s1, s2 := mk(), mk()
				if !training {
					// Land outputs exactly on the kinks: with running mean 0
					// an input 0 gives y = beta, here 0 (channel 0) and 6
					// (channel 1).
					sp := x.Size() / (shape[0] * c)
					for _, s := range []*BNStats{s1, s2} {
						s.Mean[0], s.Mean[1] = 0, 0
					}
					beta.Float32s()[0], beta.Float32s()[1] = 0, 6
					x.Float32s()[0], x.Float32s()[sp] = 0, 0
				}
				wantY, wantG := bnActRun(t, x, gamma, beta, r, s1, func(x, g, b *gorgonia.Node) (*gorgonia.Node, error) {
					y, err := BatchNormOp(x, g, b, s1, training)
					if err != nil {
						return nil, err
					}
					return ActivationOp(y, a)
				})
				gotY, gotG := bnActRun(t, x, gamma, beta, r, s2, func(x, g, b *gorgonia.Node) (*gorgonia.Node, error) {
					return BatchNormActOp(x, g, b, s2, training, a)
				})
				for i := range wantY {
					if gotY[i] != wantY[i] {
						t.Fatalf("%s: y[%d] = %v, composition %v", name, i, gotY[i], wantY[i])
					}
				}
				for k := range wantG {
					for i := range wantG[k] {
						if gotG[k][i] != wantG[k][i] {
							t.Fatalf("%s: d/din%d[%d] = %v, composition %v", name, k, i, gotG[k][i], wantG[k][i])
						}
					}
				}
				for i := range c {
					if s1.Mean[i] != s2.Mean[i] || s1.Var[i] != s2.Var[i] {
						t.Fatalf("%s: running statistics differ in channel %d", name, i)
					}
				}
				if s1.NumBatchesTracked != s2.NumBatchesTracked {
					t.Fatalf("%s: num_batches_tracked %d, composition %d", name, s2.NumBatchesTracked, s1.NumBatchesTracked)
				}
			}
		}
	}
}

// TestBatchNormActGradients checks the fused op against finite differences
// on inputs laid out so that the outputs pass both kinks but stay at least
// 0.25 from them, farther than the finite-difference step moves them.
func TestBatchNormActGradients(t *testing.T) {
	// Per channel the 18 inputs are 0.1·k (k = 0..17, shuffled): mean 0.85,
	// std 0.5188, xhat = (k − 8.5)/5.188. With gamma 5.188 and beta 4,
	// channel 0 gives y = (k − 8.5) + 4; with 2.594 and 3, channel 1 gives
	// y = 0.5·(k − 8.5) + 3: the kinks 0 and 6 fall between the values.
	rng := rand.New(rand.NewPCG(53, 54))
	x := tensor.New(tensor.WithShape(3, 2, 2, 3), tensor.Of(tensor.Float32))
	d := x.Float32s()
	for ch := range 2 {
		for j, k := range rng.Perm(18) {
			b, i := j/6, j%6
			d[(b*2+ch)*6+i] = 0.1 * float32(k)
		}
	}
	std := float32(0.5188127)
	gamma := tensor.New(tensor.WithBacking([]float32{10 * std, 5 * std}))
	beta := tensor.New(tensor.WithBacking([]float32{4, 3}))
	for _, a := range []Activation{ReLU, ReLU6} {
		for _, training := range []bool{true, false} {
			stats := NewBNStats(2)
			for ch := range 2 {
				stats.Mean[ch], stats.Var[ch] = 0.85, std*std
			}
			gradCheck(t, fmt.Sprintf("BatchNorm%v train=%v", a, training), []*tensor.Dense{x, gamma, beta}, []bool{true, true, true},
				func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
					return BatchNormActOp(in[0], in[1], in[2], stats, training, a)
				})
		}
	}
}

func TestBatchNormActRejectsGELU(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(4, 2), gorgonia.WithName("x"))
	gm := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithShape(2), gorgonia.WithName("g"))
	bt := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithShape(2), gorgonia.WithName("b"))
	if _, err := BatchNormActOp(x, gm, bt, NewBNStats(2), true, GELU); err == nil {
		t.Fatal("fusing GELU: no error")
	}
}

// TestBatchNormSumsNotStale: the gradient ops share sums computed once per
// backward pass; a second run on new inputs must not reuse the first run's.
func TestBatchNormSumsNotStale(t *testing.T) {
	rng := rand.New(rand.NewPCG(55, 56))
	x1, x2 := randTensor(rng, -2, 2, 3, 2, 4, 5), randTensor(rng, -2, 2, 3, 2, 4, 5)
	gamma, beta := randTensor(rng, 0.5, 1.5, 2), randTensor(rng, -1, 1, 2)
	r := randTensor(rng, -1, 1, 3, 2, 4, 5)
	for _, fused := range []bool{false, true} {
		build := func(x *tensor.Dense) ([3]*gorgonia.Node, gorgonia.VM) {
			g := gorgonia.NewGraph()
			var in [3]*gorgonia.Node
			for i, v := range []*tensor.Dense{x, gamma, beta} {
				in[i] = gorgonia.NewTensor(g, tensor.Float32, v.Dims(), gorgonia.WithShape(v.Shape()...), gorgonia.WithName(fmt.Sprint("in", i)), gorgonia.WithValue(v))
			}
			var y *gorgonia.Node
			if fused {
				y = gorgonia.Must(BatchNormActOp(in[0], in[1], in[2], NewBNStats(2), true, ReLU))
			} else {
				y = gorgonia.Must(BatchNormOp(in[0], in[1], in[2], NewBNStats(2), true))
			}
			// Through one of this package's ops, dy lives in the same
			// buffer in both runs.
			y = gorgonia.Must(ActivationOp(y, GELU))
			rn := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(r.Shape()...), gorgonia.WithName("r"), gorgonia.WithValue(r))
			loss := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(y, rn))))
			if _, err := gorgonia.Grad(loss, in[:]...); err != nil {
				t.Fatal(err)
			}
			return in, gorgonia.NewTapeMachine(g)
		}
		xs := x1.Clone().(*tensor.Dense)
		in, vm := build(xs)
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		copy(xs.Float32s(), x2.Float32s())
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		fin, fvm := build(x2)
		defer fvm.Close()
		if err := fvm.RunAll(); err != nil {
			t.Fatal(err)
		}
		for i := range in {
			a, _ := in[i].Grad()
			b, _ := fin[i].Grad()
			ad, bd := a.Data().([]float32), b.Data().([]float32)
			for j := range ad {
				if ad[j] != bd[j] {
					t.Fatalf("fused=%v: second run's d/din%d[%d] = %v, fresh graph's %v", fused, i, j, ad[j], bd[j])
				}
			}
		}
	}
}
