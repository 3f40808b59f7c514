package gpu

import (
	"fmt"
	"math/rand/v2"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// A program is one backbone's pass for one input shape and mode, as a list
// of steps over numbered values: built once, run by any number of passes.
// Values are the input, parameters (the Net's device tensors), constants
// the program owns and intermediates a pass allocates.
type program struct {
	vals   []valInfo
	steps  []step
	input  int
	output int // the embedding
	train  bool

	// lastUse[v] is the last step reading v in the forward pass;
	// savedUntil[v] is the earliest step whose backward reads v (-1: none):
	// a pass with gradients keeps v until that step's backward has run.
	lastUse    []int
	savedUntil []int

	// consts are the tensors the program owns (released with it).
	consts []*Tensor
	// live counts the passes not yet released: a program is evicted only
	// when none reads its constants any more.
	live int
}

// release frees the program's constants.
func (p *program) release(be Backend) {
	for _, t := range p.consts {
		be.Release(t)
	}
	p.consts = nil
}

type valKind int8

const (
	valInter valKind = iota
	valInput
	valParam
	valConst
)

type valInfo struct {
	shape []int
	kind  valKind
	param *Param  // valParam
	konst *Tensor // valConst
}

type step struct {
	op  op
	in  []int
	out int
}

// gradMode says what an op's backward does with one input's gradient.
type gradMode int8

const (
	noGrad     gradMode = iota
	overwrite           // written whole (an activation's gradient)
	accumulate          // added to (a parameter's gradient)
)

// op is one step's computation. State set by forward (attention weights,
// drop-path masks) lives in the pass, in *st, so a program can be run by
// several passes at once; the op releases it in backward or release.
type op interface {
	name() string
	outShape(in [][]int) ([]int, error)
	forward(r *pass, out *Tensor, in []*Tensor, st *any) error
	// backward computes the gradients dIn[i] of the inputs whose mode is
	// not noGrad (nil when the input needs none).
	backward(r *pass, dOut *Tensor, dIn, in []*Tensor, out *Tensor, st *any) error
	modes() []gradMode
	// saves says which inputs and whether the output backward reads.
	saves() (in []bool, out bool)
}

// releaser is implemented by ops with per-pass state to free when a pass
// ends without a backward.
type releaser interface {
	release(r *pass, st *any)
}

// builder assembles a program.
type builder struct {
	p   *program
	net *Net
	err error
}

func (b *builder) value(v valInfo) int {
	b.p.vals = append(b.p.vals, v)
	return len(b.p.vals) - 1
}

// add appends a step and returns its output value (-1 after an error).
func (b *builder) add(o op, in ...int) int {
	if b.err != nil {
		return -1
	}
	shapes := make([][]int, len(in))
	for i, v := range in {
		if v < 0 {
			b.err = fmt.Errorf("gpu: %s: input %d is missing", o.name(), i)
			return -1
		}
		shapes[i] = b.p.vals[v].shape
	}
	out, err := o.outShape(shapes)
	if err != nil {
		b.err = fmt.Errorf("gpu: %s on %v: %w", o.name(), shapes, err)
		return -1
	}
	for i, m := range o.modes() {
		if m == overwrite && b.p.vals[in[i]].kind == valParam {
			// Parameter gradients accumulate; an op overwriting one would
			// erase another pass's contribution.
			b.err = fmt.Errorf("gpu: %s: parameter %s feeds an input whose gradient is overwritten", o.name(), b.p.vals[in[i]].param.Name)
			return -1
		}
	}
	v := b.value(valInfo{shape: out})
	b.p.steps = append(b.p.steps, step{op: o, in: in, out: v})
	return v
}

// finish computes the lifetimes.
func (b *builder) finish() (*program, error) {
	if b.err != nil {
		return nil, b.err
	}
	p := b.p
	p.lastUse = make([]int, len(p.vals))
	p.savedUntil = make([]int, len(p.vals))
	for i := range p.vals {
		p.lastUse[i], p.savedUntil[i] = -1, -1
	}
	for si, s := range p.steps {
		in, out := s.op.saves()
		for j, v := range s.in {
			p.lastUse[v] = si
			if in[j] && p.savedUntil[v] < 0 {
				p.savedUntil[v] = si
			}
		}
		if out && p.savedUntil[s.out] < 0 {
			p.savedUntil[s.out] = si
		}
	}
	return p, nil
}

// --- ops ---

type convOp struct {
	spec cuda.ConvSpec // N, H, W filled from the input
	bias bool
}

func (o *convOp) name() string { return "conv" }
func (o *convOp) modes() []gradMode {
	if o.bias {
		return []gradMode{overwrite, accumulate, accumulate}
	}
	return []gradMode{overwrite, accumulate}
}
func (o *convOp) saves() ([]bool, bool) { return []bool{true, true, false}[:len(o.modes())], false }
func (o *convOp) outShape(in [][]int) ([]int, error) {
	x, w := in[0], in[1]
	if len(x) != 4 || len(w) != 4 {
		return nil, fmt.Errorf("want x [N,C,H,W] and w [O,C/g,KH,KW]")
	}
	o.spec.N, o.spec.C, o.spec.H, o.spec.W = x[0], x[1], x[2], x[3]
	o.spec.O, o.spec.KH, o.spec.KW = w[0], w[2], w[3]
	if err := o.spec.Check(); err != nil {
		return nil, err
	}
	if w[1] != o.spec.C/o.spec.Groups {
		return nil, fmt.Errorf("weight %v for %d channels in %d groups", w, o.spec.C, o.spec.Groups)
	}
	oh, ow := o.spec.Out()
	return []int{o.spec.N, o.spec.O, oh, ow}, nil
}
func (o *convOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	if err := r.be.Conv2d(out, in[0], in[1], o.spec); err != nil {
		return err
	}
	if o.bias {
		return r.be.ChannelBias(out, in[2])
	}
	return nil
}
func (o *convOp) backward(r *pass, dOut *Tensor, dIn, in []*Tensor, _ *Tensor, _ *any) error {
	if dIn[0] != nil {
		if err := r.be.Conv2dBackwardData(dIn[0], dOut, in[1], o.spec); err != nil {
			return err
		}
	}
	if dIn[1] != nil {
		if err := r.be.Conv2dBackwardFilter(dIn[1], in[0], dOut, o.spec); err != nil {
			return err
		}
	}
	if o.bias && dIn[2] != nil {
		return r.be.ChannelBiasBackward(dIn[2], dOut)
	}
	return nil
}

type bnOp struct {
	state *BNState
	act   Act
	train bool
}

func (o *bnOp) name() string          { return "batchnorm " + o.state.Name }
func (o *bnOp) modes() []gradMode     { return []gradMode{overwrite, accumulate, accumulate} }
func (o *bnOp) saves() ([]bool, bool) { return []bool{true, true, false}, o.act != ActNone }
func (o *bnOp) outShape(in [][]int) ([]int, error) {
	x := in[0]
	if len(x) < 2 || x[1] != o.state.Mean.Len() || numel(in[1]) != x[1] || numel(in[2]) != x[1] {
		return nil, fmt.Errorf("%d-channel BatchNorm", o.state.Mean.Len())
	}
	if o.train && x[0]*numel(x[2:]) < 2 {
		return nil, fmt.Errorf("training needs more than one value per channel")
	}
	return append([]int(nil), x...), nil
}
func (o *bnOp) args(in []*Tensor) BNArgs {
	return BNArgs{Gamma: in[1], Beta: in[2], Mean: o.state.Mean, Var: o.state.Var, Train: o.train,
		Momentum: o.state.Momentum, Eps: o.state.Eps, Act: o.act}
}
func (o *bnOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	if err := r.be.BatchNorm(out, in[0], o.args(in)); err != nil {
		return err
	}
	if o.train {
		o.state.Count++
	}
	return nil
}
func (o *bnOp) backward(r *pass, dOut *Tensor, dIn, in []*Tensor, out *Tensor, _ *any) error {
	dx, dg, db := dIn[0], dIn[1], dIn[2]
	if dx == nil || dg == nil || db == nil {
		// The backend computes the three together; the program always
		// wants all three (a BatchNorm's input is never a constant).
		return fmt.Errorf("gpu: %s: partial gradients are not supported", o.name())
	}
	return r.be.BatchNormBackward(dx, dg, db, dOut, in[0], out, o.args(in))
}

type actOp struct{ act Act }

func (o *actOp) name() string                       { return o.act.String() }
func (o *actOp) modes() []gradMode                  { return []gradMode{overwrite} }
func (o *actOp) saves() ([]bool, bool)              { return []bool{true}, false }
func (o *actOp) outShape(in [][]int) ([]int, error) { return append([]int(nil), in[0]...), nil }
func (o *actOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	return r.be.Activation(out, in[0], o.act)
}
func (o *actOp) backward(r *pass, dOut *Tensor, dIn, in []*Tensor, _ *Tensor, _ *any) error {
	return r.be.ActivationBackward(dIn[0], dOut, in[0], o.act)
}

type addOp struct{}

func (addOp) name() string          { return "add" }
func (addOp) modes() []gradMode     { return []gradMode{overwrite, overwrite} }
func (addOp) saves() ([]bool, bool) { return []bool{false, false}, false }
func (addOp) outShape(in [][]int) ([]int, error) {
	if !sameShape(in[0], in[1]) {
		return nil, fmt.Errorf("shapes differ")
	}
	return append([]int(nil), in[0]...), nil
}
func (addOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	return r.be.Add(out, in[0], in[1])
}
func (addOp) backward(r *pass, dOut *Tensor, dIn, _ []*Tensor, _ *Tensor, _ *any) error {
	for _, d := range dIn {
		if d == nil {
			continue
		}
		if err := r.be.Zero(d); err != nil {
			return err
		}
		if err := r.be.AddTo(d, dOut); err != nil {
			return err
		}
	}
	return nil
}

type maxPoolOp struct{ g PoolGeom }

func (o *maxPoolOp) name() string          { return "maxpool" }
func (o *maxPoolOp) modes() []gradMode     { return []gradMode{overwrite} }
func (o *maxPoolOp) saves() ([]bool, bool) { return []bool{true}, false }
func (o *maxPoolOp) outShape(in [][]int) ([]int, error) {
	x := in[0]
	if len(x) != 4 {
		return nil, fmt.Errorf("want [N,C,H,W]")
	}
	oh, ow := (x[2]+2*o.g.P-o.g.K)/o.g.S+1, (x[3]+2*o.g.P-o.g.K)/o.g.S+1
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("input too small")
	}
	return []int{x[0], x[1], oh, ow}, nil
}
func (o *maxPoolOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	return r.be.MaxPool(out, in[0], o.g)
}
func (o *maxPoolOp) backward(r *pass, dOut *Tensor, dIn, in []*Tensor, _ *Tensor, _ *any) error {
	return r.be.MaxPoolBackward(dIn[0], dOut, in[0], o.g)
}

type gapOp struct{}

func (gapOp) name() string          { return "avgpool" }
func (gapOp) modes() []gradMode     { return []gradMode{overwrite} }
func (gapOp) saves() ([]bool, bool) { return []bool{false}, false }
func (gapOp) outShape(in [][]int) ([]int, error) {
	if len(in[0]) < 3 {
		return nil, fmt.Errorf("no spatial axes")
	}
	return []int{in[0][0], in[0][1]}, nil
}
func (gapOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	return r.be.GlobalAvgPool(out, in[0])
}
func (gapOp) backward(r *pass, dOut *Tensor, dIn, _ []*Tensor, _ *Tensor, _ *any) error {
	return r.be.GlobalAvgPoolBackward(dIn[0], dOut)
}

type linearOp struct{ bias bool }

func (o *linearOp) name() string { return "linear" }
func (o *linearOp) modes() []gradMode {
	if o.bias {
		return []gradMode{overwrite, accumulate, accumulate}
	}
	return []gradMode{overwrite, accumulate}
}
func (o *linearOp) saves() ([]bool, bool) { return []bool{true, true, false}[:len(o.modes())], false }
func (o *linearOp) outShape(in [][]int) ([]int, error) {
	x, w := in[0], in[1]
	if len(w) != 2 || len(x) < 1 || x[len(x)-1] != w[1] {
		return nil, fmt.Errorf("shapes do not match")
	}
	out := append([]int(nil), x...)
	out[len(out)-1] = w[0]
	return out, nil
}
func (o *linearOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	var b *Tensor
	if o.bias {
		b = in[2]
	}
	return r.be.Linear(out, in[0], in[1], b)
}
func (o *linearOp) backward(r *pass, dOut *Tensor, dIn, in []*Tensor, _ *Tensor, _ *any) error {
	var db *Tensor
	if o.bias {
		db = dIn[2]
	}
	return r.be.LinearBackward(dIn[0], dIn[1], db, dOut, in[0], in[1])
}

type layerNormOp struct{ eps float64 }

func (o *layerNormOp) name() string          { return "layernorm" }
func (o *layerNormOp) modes() []gradMode     { return []gradMode{overwrite, accumulate, accumulate} }
func (o *layerNormOp) saves() ([]bool, bool) { return []bool{true, true, false}, false }
func (o *layerNormOp) outShape(in [][]int) ([]int, error) {
	x := in[0]
	if len(x) < 1 || numel(in[1]) != x[len(x)-1] || numel(in[2]) != x[len(x)-1] {
		return nil, fmt.Errorf("weight and bias do not match")
	}
	return append([]int(nil), x...), nil
}
func (o *layerNormOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	return r.be.LayerNorm(out, in[0], in[1], in[2], o.eps)
}
func (o *layerNormOp) backward(r *pass, dOut *Tensor, dIn, in []*Tensor, _ *Tensor, _ *any) error {
	return r.be.LayerNormBackward(dIn[0], dIn[1], dIn[2], dOut, in[0], in[1], o.eps)
}

type attnOp struct {
	heads int
	scale float32
}

func (o *attnOp) name() string          { return "attention" }
func (o *attnOp) modes() []gradMode     { return []gradMode{overwrite} }
func (o *attnOp) saves() ([]bool, bool) { return []bool{true}, false }
func (o *attnOp) outShape(in [][]int) ([]int, error) {
	s := in[0]
	if len(s) != 3 || s[2]%3 != 0 || (s[2]/3)%o.heads != 0 {
		return nil, fmt.Errorf("qkv is not [B, T, 3·D] with D divisible by %d heads", o.heads)
	}
	return []int{s[0], s[1], s[2] / 3}, nil
}
func (o *attnOp) forward(r *pass, out *Tensor, in []*Tensor, st *any) error {
	s := in[0].Shape
	probs, err := r.be.NewTensor(s[0], o.heads, s[1], s[1])
	if err != nil {
		return err
	}
	if err := r.be.Attention(out, probs, in[0], o.heads, o.scale); err != nil {
		r.be.Release(probs)
		return err
	}
	if r.grad {
		*st = probs
	} else {
		r.be.Release(probs)
	}
	return nil
}
func (o *attnOp) backward(r *pass, dOut *Tensor, dIn, in []*Tensor, _ *Tensor, st *any) error {
	probs := (*st).(*Tensor)
	defer o.release(r, st)
	return r.be.AttentionBackward(dIn[0], dOut, in[0], probs, o.heads, o.scale)
}
func (o *attnOp) release(r *pass, st *any) {
	if t, ok := (*st).(*Tensor); ok {
		r.be.Release(t)
	}
	*st = nil
}

type tokensOp struct{}

func (tokensOp) name() string          { return "tokens" }
func (tokensOp) modes() []gradMode     { return []gradMode{overwrite, accumulate, accumulate} }
func (tokensOp) saves() ([]bool, bool) { return []bool{false, false, false}, false }
func (tokensOp) outShape(in [][]int) ([]int, error) {
	p := in[0]
	if len(p) != 4 {
		return nil, fmt.Errorf("patches are not [B, D, gh, gw]")
	}
	b, d, n := p[0], p[1], p[2]*p[3]
	if !sameShape(in[1], []int{1, 1, d}) || !sameShape(in[2], []int{1, 1 + n, d}) {
		return nil, fmt.Errorf("class token and positions do not fit the patches")
	}
	return []int{b, 1 + n, d}, nil
}
func (tokensOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	return r.be.Tokens(out, in[0], in[1], in[2])
}
func (tokensOp) backward(r *pass, dOut *Tensor, dIn, _ []*Tensor, _ *Tensor, _ *any) error {
	if dIn[0] == nil || dIn[1] == nil || dIn[2] == nil {
		return fmt.Errorf("gpu: tokens: partial gradients are not supported")
	}
	return r.be.TokensBackward(dIn[0], dIn[1], dIn[2], dOut)
}

type classTokenOp struct{}

func (classTokenOp) name() string          { return "class token" }
func (classTokenOp) modes() []gradMode     { return []gradMode{overwrite} }
func (classTokenOp) saves() ([]bool, bool) { return []bool{false}, false }
func (classTokenOp) outShape(in [][]int) ([]int, error) {
	if len(in[0]) != 3 {
		return nil, fmt.Errorf("want [B, T, D]")
	}
	return []int{in[0][0], in[0][2]}, nil
}
func (classTokenOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	return r.be.ClassToken(out, in[0])
}
func (classTokenOp) backward(r *pass, dOut *Tensor, dIn, _ []*Tensor, _ *Tensor, _ *any) error {
	return r.be.ClassTokenBackward(dIn[0], dOut)
}

type posInterpOp struct{}

func (posInterpOp) name() string          { return "pos_embed interpolation" }
func (posInterpOp) modes() []gradMode     { return []gradMode{accumulate, noGrad} }
func (posInterpOp) saves() ([]bool, bool) { return []bool{false, true}, false }
func (posInterpOp) outShape(in [][]int) ([]int, error) {
	pos, w := in[0], in[1]
	if len(pos) != 3 || len(w) != 2 || pos[1] != 1+w[1] {
		return nil, fmt.Errorf("matrix %v does not fit positions %v", w, pos)
	}
	return []int{1, 1 + w[0], pos[2]}, nil
}
func (posInterpOp) forward(r *pass, out *Tensor, in []*Tensor, _ *any) error {
	return r.be.PosEmbedInterp(out, in[0], in[1])
}
func (posInterpOp) backward(r *pass, dOut *Tensor, dIn, in []*Tensor, _ *Tensor, _ *any) error {
	return r.be.PosEmbedInterpBackward(dIn[0], dOut, in[1])
}

// dropPathOp draws each forward run's mask on the host from its own
// generator, exactly as trainer/nn's DropPathOp, and uploads it.
type dropPathOp struct {
	p   float64
	rng *rand.Rand
}

func (o *dropPathOp) name() string                       { return fmt.Sprintf("drop-path %g", o.p) }
func (o *dropPathOp) modes() []gradMode                  { return []gradMode{overwrite} }
func (o *dropPathOp) saves() ([]bool, bool)              { return []bool{false}, false }
func (o *dropPathOp) outShape(in [][]int) ([]int, error) { return append([]int(nil), in[0]...), nil }
func (o *dropPathOp) forward(r *pass, out *Tensor, in []*Tensor, st *any) error {
	b := in[0].Shape[0]
	keep := 1 - o.p
	mask := make([]float32, b)
	for i := range mask {
		if o.rng.Float64() < keep {
			mask[i] = float32(1 / keep)
		}
	}
	t, err := r.be.NewTensor(b)
	if err != nil {
		return err
	}
	if err := r.be.Upload(t, mask); err != nil {
		r.be.Release(t)
		return err
	}
	if err := r.be.DropPath(out, in[0], t); err != nil {
		r.be.Release(t)
		return err
	}
	if r.grad {
		*st = t
	} else {
		r.be.Release(t)
	}
	return nil
}
func (o *dropPathOp) backward(r *pass, dOut *Tensor, dIn, _ []*Tensor, _ *Tensor, st *any) error {
	defer o.release(r, st)
	return r.be.DropPathBackward(dIn[0], dOut, (*st).(*Tensor))
}
func (o *dropPathOp) release(r *pass, st *any) {
	if t, ok := (*st).(*Tensor); ok {
		r.be.Release(t)
	}
	*st = nil
}
