package detect

import (
	"fmt"
	"hash"
	"hash/fnv"
	"sync"

	"github.com/chewxy/hm"
	"github.com/sslight-go/sslight/trainer/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// kernel is one float32 computation with a hand-written backward, in the
// style of trainer/nn's kernels (whose adapter is unexported there, hence
// this small copy of the plumbing): the gorgonia side (types, shapes,
// symbolic differentiation) lives in fwdOp and gradOp, a kernel only states
// its math.
type kernel interface {
	// name identifies the computation; gorgonia hashes it to merge equal
	// nodes, so kernels bound to per-step state put its address in it.
	name() string
	outShape(in []tensor.Shape) (tensor.Shape, error)
	forward(out []float32, in [][]float32, shapes []tensor.Shape)
	diffWRT() []bool
	// backward adds d(loss)/d(in[wrt]) to dIn (zeroed by the caller) given
	// the output's gradient grad and the forward output out.
	backward(wrt int, dIn, grad, out []float32, in [][]float32, shapes []tensor.Shape)
}

// apply adds a node computing k on the children.
func apply(k kernel, children ...*gorgonia.Node) (*gorgonia.Node, error) {
	shapes := make([]tensor.Shape, len(children))
	for i, c := range children {
		if c.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("%s: input %d (%s) is %v, need float32", k.name(), i, c.Name(), c.Dtype())
		}
		shapes[i] = c.Shape().Clone()
	}
	out, err := k.outShape(shapes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.name(), err)
	}
	n, err := gorgonia.ApplyOp(&fwdOp{k: k, in: shapes, out: out}, children...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.name(), err)
	}
	return n, nil
}

func fnType(in []tensor.Shape, out tensor.Shape) hm.Type {
	ts := make([]hm.Type, 0, len(in)+1)
	for _, s := range append(append([]tensor.Shape{}, in...), out) {
		ts = append(ts, gorgonia.TensorType{Dims: s.Dims(), Of: tensor.Float32})
	}
	return hm.NewFnType(ts...)
}

func hashOf(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// buffer keeps an op's output across runs, so a step does not allocate it.
type buffer struct {
	mu  sync.Mutex
	out *tensor.Dense
}

func (b *buffer) get(s tensor.Shape) *tensor.Dense {
	if b.out == nil {
		b.out = tensor.New(tensor.WithShape(s.Clone()...), tensor.Of(tensor.Float32))
	}
	return b.out
}

// fwdOp adapts a kernel to gorgonia.Op and gorgonia.SDOp.
type fwdOp struct {
	k   kernel
	in  []tensor.Shape
	out tensor.Shape
	buf buffer
}

func (op *fwdOp) Arity() int                { return len(op.in) }
func (op *fwdOp) Type() hm.Type             { return fnType(op.in, op.out) }
func (op *fwdOp) ReturnsPtr() bool          { return false }
func (op *fwdOp) CallsExtern() bool         { return false }
func (op *fwdOp) OverwritesInput() int      { return -1 }
func (op *fwdOp) String() string            { return op.k.name() }
func (op *fwdOp) WriteHash(h hash.Hash)     { fmt.Fprintf(h, "%s%v", op.k.name(), op.in) }
func (op *fwdOp) Hashcode() uint32          { return hashOf(fmt.Sprintf("%s%v", op.k.name(), op.in)) }
func (op *fwdOp) DiffWRT(inputs int) []bool { return op.k.diffWRT() }
func (op *fwdOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.out.Clone(), nil
}

func (op *fwdOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	in, err := nn.InputData(op.k.name(), vals, op.in)
	if err != nil {
		return nil, err
	}
	op.buf.mu.Lock()
	defer op.buf.mu.Unlock()
	out := op.buf.get(op.out)
	op.k.forward(out.Float32s(), in, op.in)
	return out, nil
}

func (op *fwdOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	ret := make(gorgonia.Nodes, len(inputs))
	children := append(append(gorgonia.Nodes{}, inputs...), output, grad)
	for i, d := range op.k.diffWRT() {
		if !d {
			continue
		}
		n, err := gorgonia.ApplyOp(&gradOp{k: op.k, wrt: i, in: op.in, out: op.out}, children...)
		if err != nil {
			return nil, fmt.Errorf("%s: gradient wrt input %d: %w", op.k.name(), i, err)
		}
		ret[i] = n
	}
	return ret, nil
}

// gradOp computes one input's gradient of a kernel; its inputs are the
// kernel's inputs, the forward output and the output's gradient.
type gradOp struct {
	k   kernel
	wrt int
	in  []tensor.Shape
	out tensor.Shape
	buf buffer
}

func (op *gradOp) all() []tensor.Shape {
	return append(append([]tensor.Shape{}, op.in...), op.out, op.out)
}
func (op *gradOp) Arity() int           { return len(op.in) + 2 }
func (op *gradOp) Type() hm.Type        { return fnType(op.all(), op.in[op.wrt]) }
func (op *gradOp) ReturnsPtr() bool     { return false }
func (op *gradOp) CallsExtern() bool    { return false }
func (op *gradOp) OverwritesInput() int { return -1 }
func (op *gradOp) String() string       { return fmt.Sprintf("d%s/din%d", op.k.name(), op.wrt) }
func (op *gradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "%s%v", op.String(), op.in)
}
func (op *gradOp) Hashcode() uint32 { return hashOf(fmt.Sprintf("%s%v", op.String(), op.in)) }
func (op *gradOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.in[op.wrt].Clone(), nil
}

func (op *gradOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	all, err := nn.InputData(op.String(), vals, op.all())
	if err != nil {
		return nil, err
	}
	n := len(op.in)
	op.buf.mu.Lock()
	defer op.buf.mu.Unlock()
	out := op.buf.get(op.in[op.wrt])
	d := out.Float32s()
	clear(d)
	op.k.backward(op.wrt, d, all[n+1], all[n], all[:n], op.in)
	return out, nil
}
