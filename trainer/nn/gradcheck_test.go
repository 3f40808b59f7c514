package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// randTensor returns a float32 tensor with values uniform in [lo, hi).
func randTensor(rng *rand.Rand, lo, hi float32, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	for i, d := 0, t.Float32s(); i < len(d); i++ {
		d[i] = lo + (hi-lo)*rng.Float32()
	}
	return t
}

// gradCheck compares the gradients gorgonia derives through an op's SymDiff
// (Grad + TapeMachine) with central finite differences of the loss
// sum(op(inputs) * r) for a fixed random r. It checks every element of every
// input whose diff flag is set.
func gradCheck(t *testing.T, name string, inputs []*tensor.Dense, diff []bool,
	build func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	g := gorgonia.NewGraph()
	nodes := make([]*gorgonia.Node, len(inputs))
	var wrt gorgonia.Nodes
	for i, v := range inputs {
		nodes[i] = gorgonia.NewTensor(g, tensor.Float32, v.Dims(), gorgonia.WithShape(v.Shape()...),
			gorgonia.WithName(fmt.Sprintf("in%d", i)), gorgonia.WithValue(v))
		if diff[i] {
			wrt = append(wrt, nodes[i])
		}
	}
	out, err := build(g, nodes)
	if err != nil {
		t.Fatalf("%s: build: %v", name, err)
	}
	r := randTensor(rng, -1, 1, out.Shape()...)
	rn := gorgonia.NewTensor(g, tensor.Float32, out.Dims(), gorgonia.WithShape(out.Shape()...), gorgonia.WithName("r"), gorgonia.WithValue(r))
	loss := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(out, rn))))
	if _, err := gorgonia.Grad(loss, wrt...); err != nil {
		t.Fatalf("%s: Grad: %v", name, err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	run := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatalf("%s: run: %v", name, err)
		}
		return float64(loss.Value().Data().(float32))
	}
	run()
	analytic := make([][]float32, len(inputs))
	for i, n := range nodes {
		if !diff[i] {
			continue
		}
		gv, err := n.Grad()
		if err != nil {
			t.Fatalf("%s: grad of input %d: %v", name, i, err)
		}
		analytic[i] = append([]float32(nil), gv.Data().([]float32)...)
	}
	const eps = 1e-2
	for i, v := range inputs {
		if !diff[i] {
			continue
		}
		data := v.Float32s()
		bad := 0
		for j := range data {
			orig := data[j]
			data[j] = orig + eps
			up := run()
			data[j] = orig - eps
			down := run()
			data[j] = orig
			num := (up - down) / (2 * eps)
			ana := float64(analytic[i][j])
			if math.Abs(num-ana) > 3e-3+2e-2*math.Abs(num) {
				if bad < 5 {
					t.Errorf("%s: d loss/d in%d[%d]: analytic %.6g, finite difference %.6g", name, i, j, ana, num)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: input %d: %d of %d gradient elements differ", name, i, bad, len(data))
		}
	}
}

func TestConv2dGradients(t *testing.T) {
	tests := []struct {
		name   string
		x, w   []int
		params ConvParams
	}{
		{"3x3 stride1 pad1", []int{2, 3, 5, 5}, []int{4, 3, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"3x3 stride2 pad1", []int{2, 2, 6, 5}, []int{3, 2, 3, 3}, ConvParams{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}},
		{"7x7 stride2 pad3", []int{1, 2, 9, 9}, []int{2, 2, 7, 7}, ConvParams{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}}},
		{"1x1 pointwise", []int{2, 4, 3, 3}, []int{5, 4, 1, 1}, ConvParams{}},
		{"1x1 stride2", []int{2, 3, 5, 5}, []int{2, 3, 1, 1}, ConvParams{Stride: [2]int{2, 2}}},
		{"dilated", []int{1, 2, 7, 7}, []int{2, 2, 3, 3}, ConvParams{Padding: [2]int{2, 2}, Dilation: [2]int{2, 2}}},
		{"grouped", []int{2, 4, 5, 5}, []int{6, 2, 3, 3}, ConvParams{Padding: [2]int{1, 1}, Groups: 2}},
		{"depthwise stride1", []int{2, 3, 5, 5}, []int{3, 1, 3, 3}, ConvParams{Padding: [2]int{1, 1}, Groups: 3}},
		{"depthwise stride2", []int{2, 3, 6, 7}, []int{3, 1, 3, 3}, ConvParams{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, Groups: 3}},
		{"patch embed 4x4/4", []int{2, 3, 8, 8}, []int{5, 3, 4, 4}, ConvParams{Stride: [2]int{4, 4}}},
		{"batched 3x3", []int{5, 2, 3, 3}, []int{3, 2, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"batched pointwise grouped", []int{5, 4, 2, 2}, []int{4, 2, 1, 1}, ConvParams{Groups: 2}},
	}
	// Two workers make the batched cases split into uneven chunks.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, tc := range tests {
		rng := rand.New(rand.NewPCG(1, 2))
		x := randTensor(rng, -1, 1, tc.x...)
		w := randTensor(rng, -1, 1, tc.w...)
		gradCheck(t, tc.name, []*tensor.Dense{x, w}, []bool{true, true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
			return Conv2dOp(in[0], in[1], tc.params)
		})
	}
}

func TestBatchNormGradients(t *testing.T) {
	for _, training := range []bool{true, false} {
		for _, shape := range [][]int{{3, 2, 2, 3}, {5, 3}} {
			rng := rand.New(rand.NewPCG(3, 4))
			c := shape[1]
			x := randTensor(rng, -2, 2, shape...)
			gamma := randTensor(rng, 0.5, 1.5, c)
			beta := randTensor(rng, -1, 1, c)
			stats := NewBNStats(c)
			for i := range c {
				stats.Mean[i] = 0.3 * float32(i)
				stats.Var[i] = 0.5 + float32(i)
			}
			gradCheck(t, fmt.Sprintf("BatchNorm train=%v %v", training, shape), []*tensor.Dense{x, gamma, beta}, []bool{true, true, true},
				func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
					return BatchNormOp(in[0], in[1], in[2], stats, training)
				})
		}
	}
}

func TestLayerNormGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := randTensor(rng, -2, 2, 2, 3, 6)
	w := randTensor(rng, 0.5, 1.5, 6)
	b := randTensor(rng, -1, 1, 6)
	gradCheck(t, "LayerNorm", []*tensor.Dense{x, w, b}, []bool{true, true, true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return LayerNormOp(in[0], in[1], in[2], 1e-6)
	})
}

// awayFromKinks moves values out of (k-0.05, k+0.05) for every kink k so
// the finite differences do not straddle a non-differentiable point.
func awayFromKinks(t *tensor.Dense, kinks ...float32) {
	d := t.Float32s()
	for i, v := range d {
		for _, k := range kinks {
			if v > k-0.05 && v < k+0.05 {
				d[i] = k + 0.1
			}
		}
	}
}

func TestActivationGradients(t *testing.T) {
	for _, a := range []Activation{ReLU, ReLU6, GELU} {
		rng := rand.New(rand.NewPCG(8, 9))
		x := randTensor(rng, -8, 8, 3, 17)
		awayFromKinks(x, 0, 6)
		gradCheck(t, a.String(), []*tensor.Dense{x}, []bool{true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
			return ActivationOp(in[0], a)
		})
	}
}

func TestPoolGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	// Distinct values spaced well above the finite-difference step, so the
	// arg-max of every window is stable under the perturbation.
	x := tensor.New(tensor.WithShape(2, 2, 7, 6), tensor.Of(tensor.Float32))
	d := x.Float32s()
	for i, p := range rng.Perm(len(d)) {
		d[i] = float32(p) * 0.1
	}
	gradCheck(t, "MaxPool2d 3/2/1", []*tensor.Dense{x}, []bool{true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return MaxPool2dOp(in[0], 3, 2, 1)
	})
	y := randTensor(rng, -1, 1, 2, 3, 4, 5)
	gradCheck(t, "GlobalAvgPool", []*tensor.Dense{y}, []bool{true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return GlobalAvgPoolOp(in[0])
	})
}

func TestLinearAddBiasGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	x := randTensor(rng, -1, 1, 2, 3, 4)
	w := randTensor(rng, -1, 1, 5, 4)
	b := randTensor(rng, -1, 1, 5)
	gradCheck(t, "Linear", []*tensor.Dense{x, w, b}, []bool{true, true, true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return LinearOp(in[0], in[1], in[2])
	})
	gradCheck(t, "Linear no bias", []*tensor.Dense{x, w}, []bool{true, true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return LinearOp(in[0], in[1], nil)
	})
	a := randTensor(rng, -1, 1, 2, 3, 2, 2)
	c := randTensor(rng, -1, 1, 2, 3, 2, 2)
	cb := randTensor(rng, -1, 1, 3)
	gradCheck(t, "Add", []*tensor.Dense{a, c}, []bool{true, true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return AddOp(in[0], in[1])
	})
	gradCheck(t, "ChannelBias", []*tensor.Dense{a, cb}, []bool{true, true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return ChannelBiasOp(in[0], in[1])
	})
}

func TestViTOpGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 15))
	qkv := randTensor(rng, -1, 1, 2, 5, 12) // B=2, T=5, D=4, 2 heads
	gradCheck(t, "Attention", []*tensor.Dense{qkv}, []bool{true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return AttentionOp(in[0], 2, 0.7)
	})
	patches := randTensor(rng, -1, 1, 2, 3, 2, 2)
	cls := randTensor(rng, -1, 1, 1, 1, 3)
	pos := randTensor(rng, -1, 1, 1, 5, 3)
	gradCheck(t, "Tokens", []*tensor.Dense{patches, cls, pos}, []bool{true, true, true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return TokensOp(in[0], in[1], in[2])
	})
	x := randTensor(rng, -1, 1, 2, 4, 3)
	gradCheck(t, "ClassToken", []*tensor.Dense{x}, []bool{true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return ClassTokenOp(in[0])
	})
	grid := randTensor(rng, -1, 1, 1, 1+16, 2) // 4x4 grid
	gradCheck(t, "InterpolatePosEmbed", []*tensor.Dense{grid}, []bool{true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return InterpolatePosEmbedOp(in[0], 48, 48, 16) // 4x4 -> 3x3
	})
}

func TestDropPathGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 17))
	x := randTensor(rng, -1, 1, 8, 3)
	// A fixed seed per run makes every forward draw the same mask, so the
	// finite differences see the function whose gradient the op reports.
	gradCheck(t, "DropPath", []*tensor.Dense{x}, []bool{true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return DropPathOp(in[0], 0.5, rand.New(&resetSource{seed: 3}))
	})
}

// resetSource replays the same stream after every 8 draws (one mask).
type resetSource struct {
	seed, n uint64
}

func (s *resetSource) Uint64() uint64 {
	s.n++
	if s.n > 8 {
		s.n = 1
	}
	return (s.seed*0x9E3779B97F4A7C15 + s.n*0xBF58476D1CE4E5B9) ^ (s.n << 60)
}

func TestRowOpGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	x := randTensor(rng, -1, 1, 3, 5)
	gradCheck(t, "L2Normalize", []*tensor.Dense{x}, []bool{true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return L2NormalizeOp(in[0])
	})
	s := randTensor(rng, 0.5, 2, 3, 1)
	gradCheck(t, "ScaleRows", []*tensor.Dense{x, s}, []bool{true, true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return ScaleRowsOp(in[0], in[1])
	})
	a := randTensor(rng, -1, 1, 2, 3, 2)
	b := randTensor(rng, -1, 1, 4, 3, 2)
	gradCheck(t, "Concat", []*tensor.Dense{a, b, a.Clone().(*tensor.Dense)}, []bool{true, true, true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return ConcatOp(in[0], in[1], in[2])
	})
}

// TestReusedGradientBuffers runs a graph of the ops that skip zeroing their
// gradient buffers twice, with different inputs, and expects the second
// run's gradients to equal those of a fresh graph on the second input: no
// element may keep a value from the first run.
func TestReusedGradientBuffers(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	w := randTensor(rng, -1, 1, 4, 4, 3, 3)
	dw := randTensor(rng, -1, 1, 4, 1, 3, 3)
	build := func(x *tensor.Dense) (*gorgonia.ExprGraph, *gorgonia.Node, *gorgonia.Node, gorgonia.VM) {
		g := gorgonia.NewGraph()
		xn := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(x.Shape()...), gorgonia.WithName("x"), gorgonia.WithValue(x))
		wn := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(w.Shape()...), gorgonia.WithName("w"), gorgonia.WithValue(w))
		dwn := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(dw.Shape()...), gorgonia.WithName("dw"), gorgonia.WithValue(dw))
		y := gorgonia.Must(Conv2dOp(xn, wn, ConvParams{Padding: [2]int{1, 1}}))
		y = gorgonia.Must(BatchNormOp(y, gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithShape(4), gorgonia.WithName("gm"), gorgonia.WithInit(gorgonia.Ones())),
			gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithShape(4), gorgonia.WithName("bt"), gorgonia.WithInit(gorgonia.Zeroes())), NewBNStats(4), true))
		y = gorgonia.Must(ActivationOp(y, ReLU))
		z := gorgonia.Must(Conv2dOp(y, dwn, ConvParams{Padding: [2]int{1, 1}, Groups: 4}))
		z = gorgonia.Must(ActivationOp(z, ReLU6))
		z = gorgonia.Must(AddOp(z, y))
		r := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(z.Shape()...), gorgonia.WithName("r"), gorgonia.WithValue(randTensor(rand.New(rand.NewPCG(5, 5)), -1, 1, z.Shape()...)))
		loss := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(z, r))))
		if _, err := gorgonia.Grad(loss, xn); err != nil {
			t.Fatal(err)
		}
		return g, xn, loss, gorgonia.NewTapeMachine(g)
	}
	x1 := randTensor(rng, -2, 2, 2, 4, 5, 5)
	x2 := randTensor(rng, -2, 2, 2, 4, 5, 5)
	_, xn, _, vm := build(x1)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	copy(x1.Float32s(), x2.Float32s()) // the node's value is x1's storage
	vm.Reset()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	g1, _ := xn.Grad()
	_, xf, _, vf := build(x2)
	defer vf.Close()
	if err := vf.RunAll(); err != nil {
		t.Fatal(err)
	}
	g2, _ := xf.Grad()
	a, b := g1.Data().([]float32), g2.Data().([]float32)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("reused graph's d/dx[%d] = %v, fresh graph's %v", i, a[i], b[i])
		}
	}
}

func TestCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	x := randTensor(rng, -2, 2, 4, 5)
	labels := &Labels{Y: []int{0, 3, 4, 1}}
	gradCheck(t, "CrossEntropy", []*tensor.Dense{x}, []bool{true}, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return apply(&ceKernel{labels: labels}, in[0]) // the op before its scalar Sum
	})
	// Hand-computed: logits [0, ln 3] with target 1 → −ln(3/4); target 0 → −ln(1/4).
	g := gorgonia.NewGraph()
	l := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(2, 2), gorgonia.WithName("l"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{0, float32(math.Log(3)), 0, float32(math.Log(3))}))))
	loss, err := CrossEntropyOp(l, &Labels{Y: []int{1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	want := (-math.Log(0.75) - math.Log(0.25)) / 2
	if got := float64(loss.Value().Data().(float32)); math.Abs(got-want) > 1e-6 {
		t.Errorf("cross entropy %v, want %v", got, want)
	}
}
