package gpu

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/nn"
)

// Param is one learnable tensor on the backend: its value and its gradient
// (nil until the first backward or ZeroGrad), which every backward adds to.
type Param struct {
	Name  string
	Shape []int
	Value *Tensor
	Grad  *Tensor
	host  *nn.Param
}

// BNState is one BatchNorm's running statistics on the backend; Count is
// num_batches_tracked, kept on the host.
type BNState struct {
	Name      string
	Mean, Var *Tensor
	Count     int64
	Momentum  float64
	Eps       float64
	host      *nn.BatchNorm
}

// Net is a backbone on a Backend: its parameters and BatchNorm statistics
// live there (uploaded from the host backbone by NewNet and Upload), and
// Forward runs a program built from the backbone's structure. Gradients
// accumulate in each Param's Grad. A Net is not safe for concurrent use.
type Net struct {
	be     Backend
	bb     backbone.Backbone
	params []*Param
	byHost map[*nn.Param]*Param
	bns    []*BNState
	progs  map[progKey]*program
	closed bool
}

type progKey struct {
	n, h, w int
	train   bool
}

// maxPrograms bounds the programs a Net keeps (one per input shape and
// mode): view sizes that change every call would otherwise grow it.
const maxPrograms = 32

// NewNet uploads b's parameters and BatchNorm statistics to be. The host
// backbone stays the Net's model: Upload copies it again, SyncToHost
// copies the device's values back into it.
func NewNet(be Backend, b backbone.Backbone) (*Net, error) {
	switch b.(type) {
	case *backbone.ResNet, *backbone.MobileNetV2, *backbone.ViT:
	default:
		return nil, fmt.Errorf("gpu: backbone %T is not one the executor knows", b)
	}
	n := &Net{be: be, bb: b, byHost: map[*nn.Param]*Param{}, progs: map[progKey]*program{}}
	for _, p := range b.Params() {
		t, err := be.NewTensor(p.Value.Shape()...)
		if err != nil {
			n.Close()
			return nil, err
		}
		dp := &Param{Name: p.Name, Shape: append([]int(nil), p.Value.Shape()...), Value: t, host: p}
		n.params = append(n.params, dp)
		n.byHost[p] = dp
	}
	for _, bn := range batchNorms(b) {
		c := len(bn.Stats.Mean)
		mean, err := be.NewTensor(c)
		if err != nil {
			n.Close()
			return nil, err
		}
		variance, err := be.NewTensor(c)
		if err != nil {
			be.Release(mean)
			n.Close()
			return nil, err
		}
		name := bn.Entries()[0].Name
		n.bns = append(n.bns, &BNState{Name: name[:len(name)-len(".weight")], Mean: mean, Var: variance,
			Momentum: bn.Stats.Momentum, Eps: bn.Stats.Eps, host: bn})
	}
	if err := n.Upload(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// batchNorms lists a backbone's BatchNorm modules in state-dict order.
func batchNorms(b backbone.Backbone) []*nn.BatchNorm {
	var out []*nn.BatchNorm
	add := func(c backbone.ConvBNLayout) { out = append(out, c.BN) }
	switch m := b.(type) {
	case *backbone.ResNet:
		l := m.Layout()
		add(l.Stem)
		for _, layer := range l.Blocks {
			for _, blk := range layer {
				for _, c := range blk.Convs {
					add(c)
				}
				if blk.Downsample != nil {
					add(*blk.Downsample)
				}
			}
		}
	case *backbone.MobileNetV2:
		l := m.Layout()
		add(l.Stem)
		for _, blk := range l.Blocks {
			for _, c := range blk.Layers {
				add(c)
			}
		}
		add(l.Head)
	}
	return out
}

// Backend returns the backend the Net runs on.
func (n *Net) Backend() Backend { return n.be }

// Backbone returns the host model.
func (n *Net) Backbone() backbone.Backbone { return n.bb }

// Params lists the parameters in the backbone's Params order.
func (n *Net) Params() []*Param { return n.params }

// BatchNorms lists the BatchNorm statistics in state-dict order.
func (n *Net) BatchNorms() []*BNState { return n.bns }

// Upload copies the host backbone's parameters and BatchNorm statistics to
// the backend.
func (n *Net) Upload() error {
	for _, p := range n.params {
		if err := n.be.Upload(p.Value, p.host.Data()); err != nil {
			return fmt.Errorf("gpu: upload %s: %w", p.Name, err)
		}
	}
	for _, s := range n.bns {
		st := s.host.Stats
		if err := n.be.Upload(s.Mean, st.Mean); err != nil {
			return fmt.Errorf("gpu: upload %s.running_mean: %w", s.Name, err)
		}
		if err := n.be.Upload(s.Var, st.Var); err != nil {
			return fmt.Errorf("gpu: upload %s.running_var: %w", s.Name, err)
		}
		s.Count = st.NumBatchesTracked
	}
	return nil
}

// SyncToHost copies the backend's parameters and BatchNorm statistics into
// the host backbone (for checkpoints, or to compare with the CPU trainer).
func (n *Net) SyncToHost() error {
	for _, p := range n.params {
		if err := n.be.Download(p.host.Data(), p.Value); err != nil {
			return fmt.Errorf("gpu: download %s: %w", p.Name, err)
		}
	}
	for _, s := range n.bns {
		st := s.host.Stats
		if err := n.be.Download(st.Mean, s.Mean); err != nil {
			return err
		}
		if err := n.be.Download(st.Var, s.Var); err != nil {
			return err
		}
		st.NumBatchesTracked = s.Count
	}
	return nil
}

// LoadStateDict loads f strictly into the host backbone (as
// backbone.LoadStateDict) and uploads it.
func (n *Net) LoadStateDict(f *safetensors.File) error {
	if err := backbone.LoadStateDict(n.bb, f); err != nil {
		return err
	}
	return n.Upload()
}

// StateDict returns the device's weights and statistics as the backbone's
// state dict (PyTorch's names and order).
func (n *Net) StateDict() (*safetensors.File, error) {
	if err := n.SyncToHost(); err != nil {
		return nil, err
	}
	return backbone.StateDict(n.bb), nil
}

// ZeroGrad sets every parameter's gradient to zero, allocating it first.
func (n *Net) ZeroGrad() error {
	for _, p := range n.params {
		if p.Grad == nil {
			t, err := n.be.NewTensor(p.Shape...)
			if err != nil {
				return err
			}
			p.Grad = t
		}
		if err := n.be.Zero(p.Grad); err != nil {
			return err
		}
	}
	return nil
}

// Grads downloads every parameter's gradient, by name (zeros for those no
// backward has touched).
func (n *Net) Grads() (map[string][]float32, error) {
	out := map[string][]float32{}
	for _, p := range n.params {
		g := make([]float32, numel(p.Shape))
		if p.Grad != nil {
			if err := n.be.Download(g, p.Grad); err != nil {
				return nil, err
			}
		}
		out[p.Name] = g
	}
	return out, nil
}

// Close releases every tensor the Net holds.
func (n *Net) Close() {
	if n.closed {
		return
	}
	n.closed = true
	for _, p := range n.params {
		n.be.Release(p.Value)
		if p.Grad != nil {
			n.be.Release(p.Grad)
		}
	}
	for _, s := range n.bns {
		n.be.Release(s.Mean)
		n.be.Release(s.Var)
	}
	for _, p := range n.progs {
		p.release(n.be)
	}
	n.params, n.bns, n.progs = nil, nil, nil
}

// Mode selects how Forward runs.
type Mode struct {
	// Train uses batch statistics in BatchNorm (updating the running ones)
	// and stochastic depth, as Backbone.Forward's train.
	Train bool
	// Grad keeps what Backward needs; without it every activation is freed
	// as soon as the forward pass is done with it.
	Grad bool
}

// Forward runs the backbone on x [N, 3, H, W] (a tensor of the Net's
// backend, kept by the caller) and returns the pass, which holds the
// embedding until it is released.
func (n *Net) Forward(x *Tensor, m Mode) (*Pass, error) {
	if n.closed {
		return nil, errors.New("gpu: Forward on a closed Net")
	}
	if len(x.Shape) != 4 || x.Shape[1] != 3 {
		return nil, fmt.Errorf("gpu: %s input %v is not [N, 3, H, W]", n.bb.Arch(), x.Shape)
	}
	p, err := n.program(x.Shape, m.Train)
	if err != nil {
		return nil, err
	}
	r := &pass{net: n, prog: p, be: n.be, grad: m.Grad, vals: make([]*Tensor, len(p.vals)),
		state: make([]any, len(p.steps)), owned: make([]bool, len(p.vals))}
	p.live++
	if err := r.forward(x); err != nil {
		r.release()
		return nil, err
	}
	return &Pass{r: r}, nil
}

func (n *Net) program(shape []int, train bool) (*program, error) {
	k := progKey{shape[0], shape[2], shape[3], train}
	if p, ok := n.progs[k]; ok {
		return p, nil
	}
	if len(n.progs) >= maxPrograms {
		// View sizes keep changing: start over rather than grow. Work
		// queued with the old programs' constants is ordered before any
		// reuse of their memory (one stream).
		for key, p := range n.progs {
			if p.live == 0 {
				p.release(n.be)
				delete(n.progs, key)
			}
		}
	}
	b := &builder{p: &program{train: train}, net: n}
	x := b.value(valInfo{shape: append([]int(nil), shape...), kind: valInput})
	b.p.input = x
	var emb int
	switch m := n.bb.(type) {
	case *backbone.ResNet:
		emb = b.resnet(x, m.Layout(), train)
	case *backbone.MobileNetV2:
		emb = b.mobilenet(x, m.Layout(), train)
	case *backbone.ViT:
		emb = b.vit(x, m.Layout(), train)
	}
	b.p.output = emb
	p, err := b.finish()
	if err != nil {
		b.p.release(n.be)
		return nil, fmt.Errorf("%s on %v: %w", n.bb.Arch(), shape, err)
	}
	n.progs[k] = p
	return p, nil
}

// --- builders ---

func (b *builder) param(p *nn.Param) int {
	dp, ok := b.net.byHost[p]
	if !ok {
		if b.err == nil {
			b.err = fmt.Errorf("gpu: parameter %s is not among the backbone's Params", p.Name)
		}
		return -1
	}
	return b.value(valInfo{shape: dp.Shape, kind: valParam, param: dp})
}

func (b *builder) bnState(bn *nn.BatchNorm) *BNState {
	for _, s := range b.net.bns {
		if s.host == bn {
			return s
		}
	}
	if b.err == nil {
		b.err = fmt.Errorf("gpu: a BatchNorm of the layout has no device statistics")
	}
	return &BNState{Mean: &Tensor{}}
}

func actOf(a *nn.Activation) Act {
	if a == nil {
		return ActNone
	}
	switch *a {
	case nn.ReLU:
		return ActReLU
	case nn.ReLU6:
		return ActReLU6
	case nn.GELU:
		return ActGELU
	}
	return ActNone
}

func (b *builder) conv(x int, c *nn.Conv2d) int {
	spec := convSpecOf(c.P)
	if c.Bias != nil {
		return b.add(&convOp{spec: spec, bias: true}, x, b.param(c.Weight), b.param(c.Bias))
	}
	return b.add(&convOp{spec: spec}, x, b.param(c.Weight))
}

// convBN is trainer/backbone's convBN: the activation fused into the
// BatchNorm when it is ReLU or ReLU6.
func (b *builder) convBN(x int, l backbone.ConvBNLayout, train bool) int {
	y := b.conv(x, l.Conv)
	a := actOf(l.Act)
	fused := a
	if a == ActGELU {
		fused = ActNone
	}
	y = b.add(&bnOp{state: b.bnState(l.BN), act: fused, train: train}, y, b.param(l.BN.Weight), b.param(l.BN.Bias))
	if a == ActGELU {
		y = b.add(&actOp{act: a}, y)
	}
	return y
}

func (b *builder) resnet(x int, l backbone.ResNetLayout, train bool) int {
	y := b.convBN(x, l.Stem, train)
	if l.MaxPool {
		y = b.add(&maxPoolOp{g: PoolGeom{K: 3, S: 2, P: 1}}, y)
	}
	for _, layer := range l.Blocks {
		for _, blk := range layer {
			in := y
			for _, c := range blk.Convs {
				y = b.convBN(y, c, train)
			}
			identity := in
			if blk.Downsample != nil {
				identity = b.convBN(in, *blk.Downsample, train)
			}
			y = b.add(&actOp{act: ActReLU}, b.add(addOp{}, y, identity))
		}
	}
	return b.add(gapOp{}, y)
}

func (b *builder) mobilenet(x int, l backbone.MobileNetV2Layout, train bool) int {
	y := b.convBN(x, l.Stem, train)
	for _, blk := range l.Blocks {
		in := y
		for _, c := range blk.Layers {
			y = b.convBN(y, c, train)
		}
		if blk.Residual {
			y = b.add(addOp{}, y, in)
		}
	}
	y = b.convBN(y, l.Head, train)
	return b.add(gapOp{}, y)
}

func (b *builder) vit(x int, l backbone.ViTLayout, train bool) int {
	shape := b.p.vals[x].shape
	h, w := shape[2], shape[3]
	patches := b.conv(x, l.PatchEmbed)
	pos := b.param(l.PosEmbed)
	grid := 224 / l.Config.Patch
	rows, cols := nn.PosEmbedGrid(h, w, l.Config.Patch)
	if !(rows*cols == grid*grid && h == w) {
		// ViT.PosEmbedFor's rule: interpolate unless on the training grid.
		pos = b.add(posInterpOp{}, pos, b.posMatrix(grid, h, w, l.Config.Patch))
	}
	y := b.add(tokensOp{}, patches, b.param(l.ClsToken), pos)
	d := l.Config.EmbedDim
	for _, blk := range l.Blocks {
		residual := func(x, branch int) int {
			if train && blk.DropPath > 0 {
				// ViT's vitBlock.forward: a generator per op, drawn from
				// the model's when the op is built.
				own := rand.New(rand.NewPCG(l.RNG.Uint64(), l.RNG.Uint64()))
				branch = b.add(&dropPathOp{p: blk.DropPath, rng: own}, branch)
			}
			return b.add(addOp{}, x, branch)
		}
		hh := b.layerNorm(y, blk.Norm1)
		hh = b.linear(hh, blk.Attn.QKV)
		heads := blk.Attn.Heads
		hh = b.add(&attnOp{heads: heads, scale: float32(1 / math.Sqrt(float64(d/heads)))}, hh)
		hh = b.linear(hh, blk.Attn.Proj)
		y = residual(y, hh)
		hh = b.layerNorm(y, blk.Norm2)
		hh = b.linear(hh, blk.MLP.FC1)
		hh = b.add(&actOp{act: ActGELU}, hh)
		hh = b.linear(hh, blk.MLP.FC2)
		y = residual(y, hh)
	}
	y = b.layerNorm(y, l.Norm)
	return b.add(classTokenOp{}, y)
}

func (b *builder) layerNorm(x int, l *nn.LayerNorm) int {
	return b.add(&layerNormOp{eps: l.Eps}, x, b.param(l.Weight), b.param(l.Bias))
}

func (b *builder) linear(x int, l *nn.Linear) int {
	if l.Bias != nil {
		return b.add(&linearOp{bias: true}, x, b.param(l.Weight), b.param(l.Bias))
	}
	return b.add(&linearOp{}, x, b.param(l.Weight))
}

// posMatrix uploads the [rows·cols, n·n] bicubic interpolation matrix of
// trainer/nn's InterpolatePosEmbedOp as a program constant.
func (b *builder) posMatrix(n, h, w, patch int) int {
	if b.err != nil {
		return -1
	}
	rows, cols, wr, wc, err := nn.PosEmbedWeights(n, h, w, patch)
	if err != nil {
		b.err = err
		return -1
	}
	m := make([]float32, rows*cols*n*n)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			row := m[(r*cols+c)*n*n:]
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					row[i*n+j] = float32(wr[r*n+i] * wc[c*n+j])
				}
			}
		}
	}
	t, err := b.net.be.NewTensor(rows*cols, n*n)
	if err == nil {
		err = b.net.be.Upload(t, m)
	}
	if err != nil {
		b.err = err
		return -1
	}
	b.p.consts = append(b.p.consts, t)
	return b.value(valInfo{shape: t.Shape, kind: valConst, konst: t})
}
