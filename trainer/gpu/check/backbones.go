package check

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/gpu"
	"github.com/sslight-go/sslight/trainer/nn"
)

// BackboneCase is one backbone run forward and backward on one batch.
type BackboneCase struct {
	Arch  string
	Opts  backbone.Options
	Batch int
	Size  int
	Train bool
	// GradTol, when set, is the case's tolerance for gradients (see
	// BackboneCases); 0 means the caller's.
	GradTol float64
}

// Name describes the case.
func (c BackboneCase) Name() string {
	s := c.Arch
	if strings.HasPrefix(c.Arch, "vit") {
		s += fmt.Sprintf("/%d", max(c.Opts.PatchSize, 16))
	}
	if c.Opts.Width != 0 && c.Opts.Width != 1 {
		s += fmt.Sprintf(" w%g", c.Opts.Width)
	}
	if c.Opts.SmallImageStem {
		s += " small-stem"
	}
	mode := "eval"
	if c.Train {
		mode = "train"
	}
	return fmt.Sprintf("%s %dx%d b%d %s", s, c.Size, c.Size, c.Batch, mode)
}

// BackboneCases are the cases the tests run on the CPU. They keep
// training mode as well conditioned as a small test affords: BatchNorm
// over a handful of values per channel (a 1x1 map of two images)
// amplifies rounding by orders of magnitude, so that even gorgonia with
// OpenBLAS and gorgonia with gonum differ by 7% there. The narrow CNNs with
// the small-image stem keep 64 values per channel at their last stage; the
// full-width ResNet-18 runs in evaluation mode, whose BatchNorm is affine.
//
// MobileNetV2's training-mode gradients stay ill-conditioned at any size a
// unit test affords: between two training-mode BatchNorms its blocks apply
// only per-channel maps (ReLU6, the depthwise filter), which the second
// BatchNorm's normalisation nearly cancels, so many gradients are
// cancellation residues. Gorgonia with OpenBLAS and with gonum disagree by
// 2.4% (of the tensor's scale) on this very case, so its training-mode
// gradients are held to 5e-2; its forward pass, running statistics and
// evaluation-mode gradients to the caller's tolerance, and every op's
// training-mode gradient is checked on its own by OpCases.
func BackboneCases() []BackboneCase {
	var cs []BackboneCase
	for _, train := range []bool{true, false} {
		cs = append(cs,
			BackboneCase{Arch: "resnet18", Opts: backbone.Options{Seed: 3, Width: 0.25, SmallImageStem: true}, Batch: 4, Size: 32, Train: train},
			BackboneCase{Arch: "mobilenet_v2", Opts: backbone.Options{Seed: 4, Width: 0.5, SmallImageStem: true}, Batch: 4, Size: 64, Train: train},
			BackboneCase{Arch: "vit_tiny", Opts: backbone.Options{Seed: 5, PatchSize: 16, DropPath: 0.2}, Batch: 3, Size: 48, Train: train},
		)
	}
	cs[1].GradTol = 5e-2
	cs = append(cs, BackboneCase{Arch: "resnet18", Opts: backbone.Options{Seed: 3}, Batch: 2, Size: 32})
	return cs
}

// BackboneResult is one case's comparison: errors relative to each
// tensor's scale.
type BackboneResult struct {
	Case       string  `json:"case"`
	Backend    string  `json:"backend"`
	Output     float64 `json:"output"`
	InputGrad  float64 `json:"input_grad"`
	Grad       float64 `json:"grad"`       // the worst parameter gradient
	GradParam  string  `json:"grad_param"` // whose
	Stats      float64 `json:"stats"`      // the worst running statistic after the step
	CountOK    bool    `json:"count_ok"`   // num_batches_tracked agrees
	NoiseOK    bool    `json:"noise_ok"`   // gradients zero in exact arithmetic are as small in ours
	GradTol    float64 `json:"grad_tol,omitempty"`
	RefSeconds float64 `json:"ref_seconds"`
	Seconds    float64 `json:"seconds"`
	Err        string  `json:"error,omitempty"`
}

// Worst is the largest error of the result other than the gradients.
func (r BackboneResult) Worst() float64 { return max(r.Output, r.InputGrad, r.Stats) }

// Pass reports whether the result is within tol (the case's GradTol for
// gradients when it has one).
func (r BackboneResult) Pass(tol float64) bool {
	gt := tol
	if r.GradTol > 0 {
		gt = r.GradTol
	}
	return r.Err == "" && r.Output <= tol && r.Stats <= tol && r.InputGrad <= gt && r.Grad <= gt && r.CountOK && r.NoiseOK
}

// Perturb moves a backbone away from its initialisation wherever that is
// a constant (norm weights 1, biases 0, running mean 0, variance 1), so
// that every term of the forward and backward matters, and rescales each
// convolution to unit gain (std 1/√fan-in instead of torchvision's
// √(2/fan-out)): a depthwise filter's fan-out is 9·C, so at initialisation
// its outputs have variances near 1e-4, and a training-mode BatchNorm then
// amplifies rounding a hundredfold per block.
func Perturb(b backbone.Backbone, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 77))
	for _, e := range b.Entries() {
		switch {
		case e.F32 == nil:
			*e.Count = 5
		case len(e.Shape) == 4:
			fanIn, fanOut := e.Shape[1]*e.Shape[2]*e.Shape[3], e.Shape[0]*e.Shape[2]*e.Shape[3]
			g := float32(math.Sqrt(float64(fanOut) / float64(2*fanIn)))
			for i := range e.F32 {
				e.F32[i] *= g
			}
		case strings.HasSuffix(e.Name, "running_var"):
			for i := range e.F32 {
				e.F32[i] = float32(0.5 + rng.Float64())
			}
		case strings.HasSuffix(e.Name, "running_mean"), strings.HasSuffix(e.Name, ".bias"):
			for i := range e.F32 {
				e.F32[i] = float32(0.2 * rng.NormFloat64())
			}
		case len(e.Shape) == 1: // norm weights
			for i := range e.F32 {
				e.F32[i] = float32(1 + 0.2*rng.NormFloat64())
			}
		}
	}
}

// pass is one backbone run: the embedding, the gradients of
// Σ embedding ⊙ r by parameter name, the input's gradient.
type pass struct {
	emb   []float32
	grads map[string][]float32
	dx    []float32
}

// gorgoniaPass runs b on gorgonia, the CPU trainer's path.
func gorgoniaPass(b backbone.Backbone, x []float32, shape []int, r []float32, train bool) (p pass, err error) {
	defer func() {
		if e := recover(); e != nil {
			err = fmt.Errorf("gorgonia: %v", e)
		}
	}()
	g := gorgonia.NewGraph()
	xt := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), x...)))
	xn := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(shape...), gorgonia.WithName("x"), gorgonia.WithValue(xt))
	out, err := b.Forward(xn, train)
	if err != nil {
		return p, err
	}
	es := out.Embedding.Shape()
	rt := tensor.New(tensor.WithShape(es...), tensor.WithBacking(append([]float32(nil), r...)))
	rn := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(es...), gorgonia.WithName("r"), gorgonia.WithValue(rt))
	loss := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(out.Embedding, rn))))
	params := b.Params()
	wrt := gorgonia.Nodes{xn}
	for _, prm := range params {
		wrt = append(wrt, prm.Node(g))
	}
	if _, err := gorgonia.Grad(loss, wrt...); err != nil {
		return p, err
	}
	vm := gorgonia.NewTapeMachine(g)
	defer nn.CloseMachine(vm)
	if err := vm.RunAll(); err != nil {
		return p, err
	}
	p = pass{emb: append([]float32(nil), out.Embedding.Value().Data().([]float32)...), grads: map[string][]float32{}}
	grad := func(n *gorgonia.Node) ([]float32, error) {
		gv, err := n.Grad()
		if err != nil {
			return nil, err
		}
		return append([]float32(nil), gv.Data().([]float32)...), nil
	}
	if p.dx, err = grad(xn); err != nil {
		return p, err
	}
	for i, prm := range params {
		if p.grads[prm.Name], err = grad(wrt[i+1]); err != nil {
			return p, err
		}
	}
	return p, nil
}

// netPass runs the executor on be.
func netPass(be gpu.Backend, net *gpu.Net, x []float32, shape []int, r []float32, train bool) (pass, error) {
	var p pass
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
	xt, err := up(x, shape)
	if err != nil {
		return p, err
	}
	fp, err := net.Forward(xt, gpu.Mode{Train: train, Grad: true})
	if err != nil {
		return p, err
	}
	defer fp.Release()
	emb := fp.Embedding()
	p.emb = make([]float32, emb.Len())
	if err := be.Download(p.emb, emb); err != nil {
		return p, err
	}
	dEmb, err := up(r, emb.Shape)
	if err != nil {
		return p, err
	}
	if err := fp.Backward(dEmb); err != nil {
		return p, err
	}
	if p.grads, err = net.Grads(); err != nil {
		return p, err
	}
	p.dx = make([]float32, len(x))
	return p, be.Download(p.dx, fp.InputGrad())
}

func scaleOf(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

// CheckBackbone runs c through gorgonia and through the executor on be,
// from the same (perturbed) weights and batch, and compares the
// embeddings, every parameter's gradient, the input's gradient and the
// BatchNorm statistics after the step.
//
// A gradient that is zero in exact arithmetic (a BatchNorm bias whose every
// path ends in a training-mode BatchNorm, which subtracts the shift again)
// is rounding noise on both sides: one below 1e-6 of the largest gradient
// is not compared, only required to be as small in ours.
func CheckBackbone(be gpu.Backend, c BackboneCase) (res BackboneResult) {
	res = BackboneResult{Case: c.Name(), Backend: be.Name(), GradTol: c.GradTol, CountOK: true, NoiseOK: true}
	fail := func(err error) BackboneResult {
		res.Err = err.Error()
		res.Output, res.Grad, res.InputGrad, res.Stats = math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)
		return res
	}
	ref, err := backbone.New(c.Arch, c.Opts)
	if err != nil {
		return fail(err)
	}
	ours, _ := backbone.New(c.Arch, c.Opts) // the same seed: the same weights and drop-path generators
	Perturb(ref, 9)
	Perturb(ours, 9)
	rng := rand.New(rand.NewPCG(11, 12))
	shape := []int{c.Batch, 3, c.Size, c.Size}
	x := randn(rng, numel(shape))
	r := randn(rng, c.Batch*ref.EmbedDim())
	t0 := time.Now()
	want, err := gorgoniaPass(ref, x, shape, r, c.Train)
	if err != nil {
		return fail(err)
	}
	res.RefSeconds = time.Since(t0).Seconds()
	t0 = time.Now()
	net, err := gpu.NewNet(be, ours)
	if err != nil {
		return fail(err)
	}
	defer net.Close()
	got, err := netPass(be, net, x, shape, r, c.Train)
	if err != nil {
		return fail(err)
	}
	if err := net.SyncToHost(); err != nil {
		return fail(err)
	}
	res.Seconds = time.Since(t0).Seconds()
	res.Output = RelErr(got.emb, want.emb)
	res.InputGrad = RelErr(got.dx, want.dx)
	largest := 0.0
	for _, p := range ref.Params() {
		largest = max(largest, scaleOf(want.grads[p.Name]))
	}
	for _, p := range ref.Params() {
		if scaleOf(want.grads[p.Name]) < 1e-6*largest {
			if scaleOf(got.grads[p.Name]) > 1e-6*largest {
				res.NoiseOK = false
				res.GradParam = p.Name + " (noise)"
			}
			continue
		}
		if e := RelErr(got.grads[p.Name], want.grads[p.Name]); e > res.Grad {
			res.Grad, res.GradParam = e, p.Name
		}
	}
	refBN, ourBN := backbone.BNBuffers(ref), backbone.BNBuffers(ours)
	for i, e := range refBN {
		if e.Count != nil {
			res.CountOK = res.CountOK && *e.Count == *ourBN[i].Count
			continue
		}
		res.Stats = max(res.Stats, RelErr(ourBN[i].F32, e.F32))
	}
	return res
}
