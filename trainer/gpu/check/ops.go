// Package check holds the parity checks and measurements of the executor:
// each op of a Backend against trainer/nn's kernels on random shapes
// (OpCases), whole backbones against the gorgonia ones (Backbones),
// throughput and memory (Bench), and the report of a device check
// (ParseResults, Table). The tests run them on the CPU backend and the
// host emulation; bench/gpucheck runs them on a GPU.
package check

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/trainer/cuda"
	"github.com/sslight-go/sslight/trainer/gpu"
	"github.com/sslight-go/sslight/trainer/nn"
)

// input describes one input of an op case.
type input struct {
	shape []int
	// param inputs get accumulated gradients: the test starts them from
	// random values and expects those plus the reference.
	param bool
	// noGrad inputs have no gradient (constants).
	noGrad bool
	// gen fills the input (nil: N(0, 1)).
	gen func(rng *rand.Rand, n int) []float32
}

// OpCase is one op on one shape, run forward and backward.
type OpCase struct {
	Name string
	in   []input
	out  []int
	// ref builds the op on gorgonia nodes (trainer/nn's kernels).
	ref func(in []*gorgonia.Node) (*gorgonia.Node, error)
	// fwd and bwd run it on a backend; dIn[i] is nil for noGrad inputs.
	fwd func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error
	bwd func(be gpu.Backend, dOut *gpu.Tensor, dIn, in []*gpu.Tensor, out *gpu.Tensor) error
	// extra compares state beyond the output and gradients (BatchNorm's
	// running statistics): it returns name → (ours, reference).
	extra func(be gpu.Backend) (map[string][2][]float32, error)
	// reset prepares per-run state (BatchNorm's statistics) before each
	// side runs.
	reset func()
}

// OpResult is one case's worst relative error (max |ours − ref| over the
// reference's max |ref|, per tensor) and where it was.
type OpResult struct {
	Case  string  `json:"case"`
	Worst float64 `json:"worst"`
	Where string  `json:"where"`
	Err   string  `json:"error,omitempty"`
}

// RelErr is max|got − want| over max|want| (the absolute difference when
// want is all zeros). NaNs must sit at the same places: elsewhere a NaN
// makes the error infinite.
func RelErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var diff, scale float64
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsNaN(w) {
			if math.IsNaN(g) != math.IsNaN(w) {
				return math.Inf(1)
			}
			continue
		}
		diff = max(diff, math.Abs(g-w))
		scale = max(scale, math.Abs(w))
	}
	if scale == 0 {
		return diff
	}
	return diff / scale
}

func randn(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// refRun runs c's reference: the output and the gradients of Σ out ⊙ r.
func (c *OpCase) refRun(vals [][]float32, r []float32) (out []float32, grads [][]float32, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reference: %v", p)
		}
	}()
	g := gorgonia.NewGraph()
	nodes := make([]*gorgonia.Node, len(c.in))
	for i, in := range c.in {
		t := tensor.New(tensor.WithShape(in.shape...), tensor.WithBacking(append([]float32(nil), vals[i]...)))
		nodes[i] = gorgonia.NewTensor(g, tensor.Float32, len(in.shape), gorgonia.WithShape(in.shape...), gorgonia.WithName(fmt.Sprintf("in%d", i)), gorgonia.WithValue(t))
	}
	o, err := c.ref(nodes)
	if err != nil {
		return nil, nil, err
	}
	rt := tensor.New(tensor.WithShape(o.Shape()...), tensor.WithBacking(append([]float32(nil), r...)))
	rn := gorgonia.NewTensor(g, tensor.Float32, o.Shape().Dims(), gorgonia.WithShape(o.Shape()...), gorgonia.WithName("r"), gorgonia.WithValue(rt))
	loss, err := gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(o, rn)))
	if err != nil {
		return nil, nil, err
	}
	var wrt gorgonia.Nodes
	for i, in := range c.in {
		if !in.noGrad {
			wrt = append(wrt, nodes[i])
		}
	}
	if _, err := gorgonia.Grad(loss, wrt...); err != nil {
		return nil, nil, err
	}
	vm := gorgonia.NewTapeMachine(g)
	defer nn.CloseMachine(vm)
	if err := vm.RunAll(); err != nil {
		return nil, nil, err
	}
	out = append([]float32(nil), o.Value().Data().([]float32)...)
	grads = make([][]float32, len(c.in))
	for i, in := range c.in {
		if in.noGrad {
			continue
		}
		gv, err := nodes[i].Grad()
		if err != nil {
			return nil, nil, err
		}
		grads[i] = append([]float32(nil), gv.Data().([]float32)...)
	}
	return out, grads, nil
}

// Check runs the case on be and on trainer/nn with the same random inputs
// (drawn from seed) and returns the worst relative error over the output,
// every gradient and any extra state.
func (c *OpCase) Check(be gpu.Backend, seed uint64) OpResult {
	res := OpResult{Case: c.Name}
	fail := func(err error) OpResult {
		res.Err, res.Worst = err.Error(), math.Inf(1)
		return res
	}
	rng := rand.New(rand.NewPCG(seed, 0xc4ec))
	vals := make([][]float32, len(c.in))
	for i, in := range c.in {
		if in.gen != nil {
			vals[i] = in.gen(rng, numel(in.shape))
		} else {
			vals[i] = randn(rng, numel(in.shape))
		}
	}
	r := randn(rng, numel(c.out))
	if c.reset != nil {
		c.reset()
	}
	wantOut, wantGrads, err := c.refRun(vals, r)
	if err != nil {
		return fail(err)
	}
	var extraRef map[string][2][]float32
	if c.extra != nil {
		if extraRef, err = c.extra(nil); err != nil {
			return fail(err)
		}
		c.reset()
	}
	var held []*gpu.Tensor
	defer func() {
		for _, t := range held {
			be.Release(t)
		}
	}()
	up := func(v []float32, shape []int) (*gpu.Tensor, error) {
		t, err := be.NewTensor(shape...)
		if err != nil {
			return nil, err
		}
		held = append(held, t)
		return t, be.Upload(t, v)
	}
	ins := make([]*gpu.Tensor, len(c.in))
	dIns := make([]*gpu.Tensor, len(c.in))
	start := make([][]float32, len(c.in))
	for i, in := range c.in {
		if ins[i], err = up(vals[i], in.shape); err != nil {
			return fail(err)
		}
		switch {
		case in.noGrad:
		case in.param:
			start[i] = randn(rng, numel(in.shape))
			if dIns[i], err = up(start[i], in.shape); err != nil {
				return fail(err)
			}
		default:
			// Stale contents: the op must overwrite every element.
			if dIns[i], err = up(nanFill(numel(in.shape)), in.shape); err != nil {
				return fail(err)
			}
		}
	}
	out, err := up(nanFill(numel(c.out)), c.out)
	if err != nil {
		return fail(err)
	}
	if err := c.fwd(be, out, ins); err != nil {
		return fail(fmt.Errorf("forward: %w", err))
	}
	var extraOurs map[string][2][]float32
	if c.extra != nil {
		if extraOurs, err = c.extra(be); err != nil {
			return fail(err)
		}
	}
	dOut, err := up(r, c.out)
	if err != nil {
		return fail(err)
	}
	if err := c.bwd(be, dOut, dIns, ins, out); err != nil {
		return fail(fmt.Errorf("backward: %w", err))
	}
	note := func(where string, got, want []float32) {
		if e := RelErr(got, want); e > res.Worst || res.Where == "" {
			res.Worst, res.Where = e, where
		}
	}
	got := make([]float32, out.Len())
	if err := be.Download(got, out); err != nil {
		return fail(err)
	}
	note("output", got, wantOut)
	for i, in := range c.in {
		if in.noGrad {
			continue
		}
		g := make([]float32, dIns[i].Len())
		if err := be.Download(g, dIns[i]); err != nil {
			return fail(err)
		}
		want := wantGrads[i]
		if in.param {
			// Parameter gradients accumulate: the start plus the reference.
			want = make([]float32, len(g))
			for j := range want {
				want[j] = start[i][j] + wantGrads[i][j]
			}
		}
		note(fmt.Sprintf("gradient %d", i), g, want)
	}
	for name, pair := range extraOurs {
		note(name, pair[0], extraRef[name][1])
	}
	return res
}

func nanFill(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

// OpCases returns the op cases: every op of the backbones on odd sizes,
// strides 1 and 2, padding, groups, depthwise and dense, small and large
// channel counts.
func OpCases() []*OpCase {
	var cs []*OpCase
	for _, c := range []cuda.ConvSpec{
		{N: 2, C: 3, H: 11, W: 9, O: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 3, C: 6, H: 8, W: 9, O: 4, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 2},
		{N: 2, C: 8, H: 7, W: 7, O: 8, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, Groups: 8},
		{N: 2, C: 12, H: 9, W: 10, O: 12, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 12},
		{N: 2, C: 4, H: 10, W: 10, O: 6, KH: 1, KW: 1, StrideH: 1, StrideW: 1},
		{N: 2, C: 6, H: 7, W: 7, O: 5, KH: 1, KW: 1, StrideH: 2, StrideW: 2},
		{N: 1, C: 3, H: 32, W: 48, O: 5, KH: 16, KW: 16, StrideH: 16, StrideW: 16},
		{N: 2, C: 3, H: 15, W: 13, O: 5, KH: 7, KW: 7, StrideH: 2, StrideW: 2, PadH: 3, PadW: 3},
		{N: 2, C: 160, H: 3, W: 3, O: 96, KH: 1, KW: 1, StrideH: 1, StrideW: 1},
		{N: 2, C: 64, H: 5, W: 5, O: 72, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 2, C: 96, H: 5, W: 6, O: 96, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 96},
		{N: 1, C: 2, H: 9, W: 9, O: 3, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 2, PadW: 2, DilH: 2, DilW: 2},
	} {
		cs = append(cs, convCase(c, false))
	}
	cs = append(cs, convCase(cuda.ConvSpec{N: 2, C: 3, H: 32, W: 32, O: 6, KH: 16, KW: 16, StrideH: 16, StrideW: 16}, true))
	for _, s := range [][]int{{3, 5, 4, 4}, {4, 3, 5, 7}, {8, 6}, {2, 40, 6, 6}} {
		for _, train := range []bool{true, false} {
			for _, act := range []gpu.Act{gpu.ActNone, gpu.ActReLU, gpu.ActReLU6} {
				cs = append(cs, bnCase(s, train, act))
			}
		}
	}
	for _, a := range []gpu.Act{gpu.ActReLU, gpu.ActReLU6, gpu.ActGELU} {
		cs = append(cs, actCase([]int{3, 4, 5, 7}, a))
	}
	cs = append(cs,
		addCase([]int{2, 3, 5, 5}),
		biasCase([]int{3, 4, 3, 5}),
		poolCase([]int{2, 3, 9, 9}, gpu.PoolGeom{K: 3, S: 2, P: 1}, false),
		poolCase([]int{2, 3, 9, 9}, gpu.PoolGeom{K: 3, S: 2, P: 1}, true),
		poolCase([]int{1, 2, 8, 7}, gpu.PoolGeom{K: 2, S: 2}, true),
		poolCase([]int{1, 2, 7, 8}, gpu.PoolGeom{K: 3, S: 1, P: 1}, true),
		gapCase([]int{3, 5, 7, 7}),
		gapCase([]int{2, 4, 1, 1}),
		linearCase([]int{5, 7}, 3, true),
		linearCase([]int{2, 4, 6}, 9, true),
		linearCase([]int{3, 8}, 5, false),
		layerNormCase([]int{2, 5, 24}, 1e-6),
		layerNormCase([]int{3, 7}, 1e-5),
		attnCase(2, 5, 12, 3),
		attnCase(1, 17, 8, 2),
		tokensCase(2, 6, 2, 3),
		classTokenCase(3, 5, 4),
		posInterpCase(14, 48, 48, 16, 8),
		posInterpCase(14, 32, 64, 16, 4),
		posInterpCase(7, 96, 96, 32, 6),
		dropPathCase([]int{5, 3, 4}, 0.4),
	)
	return cs
}

func convParams(c cuda.ConvSpec) nn.ConvParams {
	return nn.ConvParams{Stride: [2]int{c.StrideH, c.StrideW}, Padding: [2]int{c.PadH, c.PadW}, Dilation: [2]int{c.DilH, c.DilW}, Groups: c.Groups}
}

func convCase(c cuda.ConvSpec, bias bool) *OpCase {
	if c.Groups == 0 {
		c.Groups = 1
	}
	if c.DilH == 0 {
		c.DilH, c.DilW = 1, 1
	}
	oh, ow := c.Out()
	in := []input{{shape: []int{c.N, c.C, c.H, c.W}}, {shape: []int{c.O, c.C / c.Groups, c.KH, c.KW}, param: true}}
	if bias {
		in = append(in, input{shape: []int{c.O}, param: true})
	}
	name := fmt.Sprintf("conv %dx%dx%dx%d o%d k%dx%d s%d p%d d%d g%d", c.N, c.C, c.H, c.W, c.O, c.KH, c.KW, c.StrideH, c.PadH, c.DilH, c.Groups)
	if bias {
		name += " +bias"
	}
	return &OpCase{
		Name: name, in: in, out: []int{c.N, c.O, oh, ow},
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) {
			y, err := nn.Conv2dOp(n[0], n[1], convParams(c))
			if err != nil || !bias {
				return y, err
			}
			return nn.ChannelBiasOp(y, n[2])
		},
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error {
			if err := be.Conv2d(out, in[0], in[1], c); err != nil || !bias {
				return err
			}
			return be.ChannelBias(out, in[2])
		},
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, in []*gpu.Tensor, _ *gpu.Tensor) error {
			if err := be.Conv2dBackwardData(dIn[0], dOut, in[1], c); err != nil {
				return err
			}
			if err := be.Conv2dBackwardFilter(dIn[1], in[0], dOut, c); err != nil || !bias {
				return err
			}
			return be.ChannelBiasBackward(dIn[2], dOut)
		},
	}
}

func nnAct(a gpu.Act) nn.Activation {
	switch a {
	case gpu.ActReLU6:
		return nn.ReLU6
	case gpu.ActGELU:
		return nn.GELU
	}
	return nn.ReLU
}

func bnCase(shape []int, train bool, act gpu.Act) *OpCase {
	ch := shape[1]
	stats := nn.NewBNStats(ch)
	var mean, variance *gpu.Tensor
	var startMean, startVar []float32
	rng := rand.New(rand.NewPCG(uint64(numel(shape)), 3))
	startMean = randn(rng, ch)
	startVar = make([]float32, ch)
	for i := range startVar {
		startVar[i] = float32(0.5 + rng.Float64())
	}
	reset := func() {
		copy(stats.Mean, startMean)
		copy(stats.Var, startVar)
		stats.NumBatchesTracked = 0
	}
	args := func(in []*gpu.Tensor) gpu.BNArgs {
		return gpu.BNArgs{Gamma: in[1], Beta: in[2], Mean: mean, Var: variance, Train: train, Momentum: stats.Momentum, Eps: stats.Eps, Act: act}
	}
	stateTensors := func(be gpu.Backend) error {
		if mean != nil {
			be.Release(mean)
			be.Release(variance)
		}
		var err error
		if mean, err = be.NewTensor(ch); err != nil {
			return err
		}
		if variance, err = be.NewTensor(ch); err != nil {
			return err
		}
		if err := be.Upload(mean, startMean); err != nil {
			return err
		}
		return be.Upload(variance, startVar)
	}
	gammaGen := func(rng *rand.Rand, n int) []float32 {
		s := randn(rng, n)
		for i := range s {
			s[i] = 1 + 0.3*s[i]
		}
		return s
	}
	return &OpCase{
		Name:  fmt.Sprintf("batchnorm %v train=%v act=%v", shape, train, act),
		in:    []input{{shape: shape}, {shape: []int{ch}, param: true, gen: gammaGen}, {shape: []int{ch}, param: true}},
		out:   append([]int(nil), shape...),
		reset: reset,
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) {
			if act == gpu.ActNone {
				return nn.BatchNormOp(n[0], n[1], n[2], stats, train)
			}
			return nn.BatchNormActOp(n[0], n[1], n[2], stats, train, nnAct(act))
		},
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error {
			if err := stateTensors(be); err != nil {
				return err
			}
			return be.BatchNorm(out, in[0], args(in))
		},
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, in []*gpu.Tensor, out *gpu.Tensor) error {
			defer func() {
				be.Release(mean)
				be.Release(variance)
				mean, variance = nil, nil
			}()
			return be.BatchNormBackward(dIn[0], dIn[1], dIn[2], dOut, in[0], out, args(in))
		},
		extra: func(be gpu.Backend) (map[string][2][]float32, error) {
			if be == nil { // the reference's statistics after its run
				return map[string][2][]float32{"running_mean": {nil, append([]float32(nil), stats.Mean...)},
					"running_var": {nil, append([]float32(nil), stats.Var...)}}, nil
			}
			m, v := make([]float32, ch), make([]float32, ch)
			if err := be.Download(m, mean); err != nil {
				return nil, err
			}
			if err := be.Download(v, variance); err != nil {
				return nil, err
			}
			return map[string][2][]float32{"running_mean": {m, nil}, "running_var": {v, nil}}, nil
		},
	}
}

// nearKinks draws values around ReLU6's and ReLU's kinks, exactly on them
// included, where the gradient conventions differ.
func nearKinks(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		switch i % 5 {
		case 0:
			s[i] = 0
		case 1:
			s[i] = 6
		default:
			s[i] = float32(4 * rng.NormFloat64())
		}
	}
	return s
}

func actCase(shape []int, a gpu.Act) *OpCase {
	return &OpCase{
		Name: fmt.Sprintf("activation %v %v", a, shape),
		in:   []input{{shape: shape, gen: nearKinks}}, out: shape,
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) { return nn.ActivationOp(n[0], nnAct(a)) },
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error { return be.Activation(out, in[0], a) },
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, in []*gpu.Tensor, _ *gpu.Tensor) error {
			return be.ActivationBackward(dIn[0], dOut, in[0], a)
		},
	}
}

func addCase(shape []int) *OpCase {
	return &OpCase{
		Name: fmt.Sprintf("add %v", shape),
		in:   []input{{shape: shape}, {shape: shape}}, out: shape,
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) { return nn.AddOp(n[0], n[1]) },
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error { return be.Add(out, in[0], in[1]) },
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, _ []*gpu.Tensor, _ *gpu.Tensor) error {
			for _, d := range dIn {
				if err := be.Zero(d); err != nil {
					return err
				}
				if err := be.AddTo(d, dOut); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func biasCase(shape []int) *OpCase {
	return &OpCase{
		Name: fmt.Sprintf("channel bias %v", shape),
		in:   []input{{shape: shape}, {shape: []int{shape[1]}, param: true}}, out: shape,
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) { return nn.ChannelBiasOp(n[0], n[1]) },
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error {
			if err := be.Zero(out); err != nil {
				return err
			}
			if err := be.AddTo(out, in[0]); err != nil {
				return err
			}
			return be.ChannelBias(out, in[1])
		},
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, _ []*gpu.Tensor, _ *gpu.Tensor) error {
			if err := be.Zero(dIn[0]); err != nil {
				return err
			}
			if err := be.AddTo(dIn[0], dOut); err != nil {
				return err
			}
			return be.ChannelBiasBackward(dIn[1], dOut)
		},
	}
}

// ties draws small integers (equal maxima in a window) with a NaN now and
// then: the first-maximum rule and NaN propagation.
func ties(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.IntN(4))
		if rng.IntN(23) == 0 {
			s[i] = float32(math.NaN())
		}
	}
	return s
}

func poolCase(shape []int, p gpu.PoolGeom, tied bool) *OpCase {
	oh, ow := (shape[2]+2*p.P-p.K)/p.S+1, (shape[3]+2*p.P-p.K)/p.S+1
	in := input{shape: shape}
	name := fmt.Sprintf("maxpool %v k%d s%d p%d", shape, p.K, p.S, p.P)
	if tied {
		in.gen = ties
		name += " ties+NaN"
	}
	return &OpCase{
		Name: name, in: []input{in}, out: []int{shape[0], shape[1], oh, ow},
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) { return nn.MaxPool2dOp(n[0], p.K, p.S, p.P) },
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error { return be.MaxPool(out, in[0], p) },
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, in []*gpu.Tensor, _ *gpu.Tensor) error {
			return be.MaxPoolBackward(dIn[0], dOut, in[0], p)
		},
	}
}

func gapCase(shape []int) *OpCase {
	return &OpCase{
		Name: fmt.Sprintf("avgpool %v", shape),
		in:   []input{{shape: shape}}, out: shape[:2],
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) { return nn.GlobalAvgPoolOp(n[0]) },
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error { return be.GlobalAvgPool(out, in[0]) },
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, _ []*gpu.Tensor, _ *gpu.Tensor) error {
			return be.GlobalAvgPoolBackward(dIn[0], dOut)
		},
	}
}

func linearCase(x []int, o int, bias bool) *OpCase {
	k := x[len(x)-1]
	in := []input{{shape: x}, {shape: []int{o, k}, param: true}}
	if bias {
		in = append(in, input{shape: []int{o}, param: true})
	}
	out := append(append([]int(nil), x[:len(x)-1]...), o)
	return &OpCase{
		Name: fmt.Sprintf("linear %v→%d bias=%v", x, o, bias), in: in, out: out,
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) {
			if bias {
				return nn.LinearOp(n[0], n[1], n[2])
			}
			return nn.LinearOp(n[0], n[1], nil)
		},
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error {
			var b *gpu.Tensor
			if bias {
				b = in[2]
			}
			return be.Linear(out, in[0], in[1], b)
		},
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, in []*gpu.Tensor, _ *gpu.Tensor) error {
			var db *gpu.Tensor
			if bias {
				db = dIn[2]
			}
			return be.LinearBackward(dIn[0], dIn[1], db, dOut, in[0], in[1])
		},
	}
}

func layerNormCase(shape []int, eps float64) *OpCase {
	d := shape[len(shape)-1]
	return &OpCase{
		Name: fmt.Sprintf("layernorm %v eps %g", shape, eps),
		in:   []input{{shape: shape}, {shape: []int{d}, param: true}, {shape: []int{d}, param: true}}, out: shape,
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) { return nn.LayerNormOp(n[0], n[1], n[2], eps) },
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error {
			return be.LayerNorm(out, in[0], in[1], in[2], eps)
		},
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, in []*gpu.Tensor, _ *gpu.Tensor) error {
			return be.LayerNormBackward(dIn[0], dIn[1], dIn[2], dOut, in[0], in[1], eps)
		},
	}
}

func attnCase(b, t, d, heads int) *OpCase {
	scale := float32(1 / math.Sqrt(float64(d/heads)))
	var probs *gpu.Tensor
	return &OpCase{
		Name: fmt.Sprintf("attention b%d t%d d%d heads %d", b, t, d, heads),
		in:   []input{{shape: []int{b, t, 3 * d}}}, out: []int{b, t, d},
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) {
			return nn.AttentionOp(n[0], heads, 1/math.Sqrt(float64(d/heads)))
		},
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error {
			var err error
			if probs, err = be.NewTensor(b, heads, t, t); err != nil {
				return err
			}
			return be.Attention(out, probs, in[0], heads, scale)
		},
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, in []*gpu.Tensor, _ *gpu.Tensor) error {
			defer be.Release(probs)
			return be.AttentionBackward(dIn[0], dOut, in[0], probs, heads, scale)
		},
	}
}

func tokensCase(b, d, gh, gw int) *OpCase {
	n := gh * gw
	return &OpCase{
		Name: fmt.Sprintf("tokens b%d d%d grid %dx%d", b, d, gh, gw),
		in: []input{{shape: []int{b, d, gh, gw}}, {shape: []int{1, 1, d}, param: true},
			{shape: []int{1, 1 + n, d}, param: true}},
		out: []int{b, 1 + n, d},
		ref: func(nd []*gorgonia.Node) (*gorgonia.Node, error) { return nn.TokensOp(nd[0], nd[1], nd[2]) },
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error {
			return be.Tokens(out, in[0], in[1], in[2])
		},
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, _ []*gpu.Tensor, _ *gpu.Tensor) error {
			return be.TokensBackward(dIn[0], dIn[1], dIn[2], dOut)
		},
	}
}

func classTokenCase(b, t, d int) *OpCase {
	return &OpCase{
		Name: fmt.Sprintf("class token b%d t%d d%d", b, t, d),
		in:   []input{{shape: []int{b, t, d}}}, out: []int{b, d},
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) { return nn.ClassTokenOp(n[0]) },
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error { return be.ClassToken(out, in[0]) },
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, _ []*gpu.Tensor, _ *gpu.Tensor) error {
			return be.ClassTokenBackward(dIn[0], dOut)
		},
	}
}

// PosMatrix is the [rows·cols, n·n] matrix of trainer/nn's bicubic
// position-embedding interpolation for an h×w input (the executor's
// constant).
func PosMatrix(n, h, w, patch int) ([]float32, int, error) {
	rows, cols, wr, wc, err := nn.PosEmbedWeights(n, h, w, patch)
	if err != nil {
		return nil, 0, err
	}
	m := make([]float32, rows*cols*n*n)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					m[(r*cols+c)*n*n+i*n+j] = float32(wr[r*n+i] * wc[c*n+j])
				}
			}
		}
	}
	return m, rows * cols, nil
}

func posInterpCase(n, h, w, patch, d int) *OpCase {
	m, r, err := PosMatrix(n, h, w, patch)
	if err != nil {
		panic(err) // fixed cases
	}
	return &OpCase{
		Name: fmt.Sprintf("pos_embed %dx%d → %dx%d/%d d%d", n, n, h, w, patch, d),
		in: []input{{shape: []int{1, 1 + n*n, d}, param: true},
			{shape: []int{r, n * n}, noGrad: true, gen: func(*rand.Rand, int) []float32 { return m }}},
		out: []int{1, 1 + r, d},
		ref: func(nd []*gorgonia.Node) (*gorgonia.Node, error) { return nn.InterpolatePosEmbedOp(nd[0], h, w, patch) },
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error {
			return be.PosEmbedInterp(out, in[0], in[1])
		},
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, in []*gpu.Tensor, _ *gpu.Tensor) error {
			return be.PosEmbedInterpBackward(dIn[0], dOut, in[1])
		},
	}
}

func dropPathCase(shape []int, p float64) *OpCase {
	const seed = 0xd9
	var mask *gpu.Tensor
	return &OpCase{
		Name: fmt.Sprintf("drop-path %v p=%g", shape, p),
		in:   []input{{shape: shape}}, out: shape,
		ref: func(n []*gorgonia.Node) (*gorgonia.Node, error) {
			return nn.DropPathOp(n[0], p, rand.New(rand.NewPCG(seed, seed)))
		},
		fwd: func(be gpu.Backend, out *gpu.Tensor, in []*gpu.Tensor) error {
			// The executor's draw: the op's generator, one Float64 per sample.
			rng := rand.New(rand.NewPCG(seed, seed))
			m := make([]float32, shape[0])
			for i := range m {
				if rng.Float64() < 1-p {
					m[i] = float32(1 / (1 - p))
				}
			}
			var err error
			if mask, err = be.NewTensor(shape[0]); err != nil {
				return err
			}
			if err := be.Upload(mask, m); err != nil {
				return err
			}
			return be.DropPath(out, in[0], mask)
		},
		bwd: func(be gpu.Backend, dOut *gpu.Tensor, dIn, _ []*gpu.Tensor, _ *gpu.Tensor) error {
			defer be.Release(mask)
			return be.DropPathBackward(dIn[0], dOut, mask)
		},
	}
}
