package ssl

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	"github.com/sslight-go/sslight/trainer/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// lossKernel is one scalar loss with an analytic gradient. The gorgonia
// plumbing (types, shapes, symbolic differentiation) is shared by all losses
// through lossOp and lossGradOp, so a kernel states only its math.
type lossKernel interface {
	// name identifies the loss; lossOp adds the kernel's address to the
	// hash because kernels carry state and two instances must not be
	// deduplicated into one node.
	name() string
	// diffWRT says which inputs receive a gradient.
	diffWRT() []bool
	// forward computes the loss of in (shapes as given to apply), writes
	// d loss / d in[i] into grads[i] for every input with diffWRT true
	// (grads[i] is nil for the others) and advances the kernel's state.
	forward(in [][]float32, shapes []tensor.Shape, grads [][]float32) (float32, error)
}

// applyLoss builds the scalar node computing k on the children.
func applyLoss(k lossKernel, children ...*gorgonia.Node) (*gorgonia.Node, error) {
	shapes := make([]tensor.Shape, len(children))
	for i, c := range children {
		if c == nil {
			return nil, fmt.Errorf("%s: input %d is nil", k.name(), i)
		}
		if c.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("%s: input %d (%s) is %v, need float32", k.name(), i, c.Name(), c.Dtype())
		}
		if c.Shape().Dims() != 2 {
			return nil, fmt.Errorf("%s: input %d (%s) has shape %v, need a matrix: %w", k.name(), i, c.Name(), c.Shape(), ErrShape)
		}
		shapes[i] = c.Shape().Clone()
	}
	op := &lossOp{k: k, inShapes: shapes}
	n, err := gorgonia.ApplyOp(op, children...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.name(), err)
	}
	return n, nil
}

// lossOp adapts a lossKernel to gorgonia.Op and gorgonia.SDOp. It owns the
// gradient buffers the forward fills; they are allocated once and reused by
// every step.
type lossOp struct {
	k        lossKernel
	inShapes []tensor.Shape
	grads    [][]float32
	ran      bool // the forward has filled grads at least once
}

func (op *lossOp) Arity() int { return len(op.inShapes) }
func (op *lossOp) Type() hm.Type {
	ts := make([]hm.Type, 0, len(op.inShapes)+1)
	for _, s := range op.inShapes {
		ts = append(ts, gorgonia.TensorType{Dims: s.Dims(), Of: tensor.Float32})
	}
	ts = append(ts, tensor.Float32)
	return hm.NewFnType(ts...)
}
func (op *lossOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (op *lossOp) ReturnsPtr() bool     { return false }
func (op *lossOp) CallsExtern() bool    { return false }
func (op *lossOp) OverwritesInput() int { return -1 }
func (op *lossOp) String() string       { return op.k.name() }
func (op *lossOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "%s@%p%v", op.k.name(), op.k, op.inShapes)
}
func (op *lossOp) Hashcode() uint32 { return hashOf(op) }

func (op *lossOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	in, err := nn.InputData(op.k.name(), vals, op.inShapes)
	if err != nil {
		return nil, err
	}
	if op.grads == nil {
		op.grads = make([][]float32, len(op.inShapes))
		for i, d := range op.k.diffWRT() {
			if d {
				op.grads[i] = make([]float32, op.inShapes[i].TotalSize())
			}
		}
	}
	loss, err := op.k.forward(in, op.inShapes, op.grads)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op.k.name(), err)
	}
	op.ran = true
	return gorgonia.NewF32(loss), nil
}

func (op *lossOp) DiffWRT(int) []bool { return op.k.diffWRT() }

func (op *lossOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	ret := make(gorgonia.Nodes, len(inputs))
	for i, d := range op.k.diffWRT() {
		if !d {
			continue
		}
		g := &lossGradOp{fwd: op, wrt: i}
		// output is a child only to order the gradient after the forward
		// that fills the cached gradient.
		n, err := gorgonia.ApplyOp(g, output, grad)
		if err != nil {
			return nil, fmt.Errorf("%s: gradient wrt input %d: %w", op.k.name(), i, err)
		}
		ret[i] = n
	}
	return ret, nil
}

// lossGradOp returns the forward's cached gradient for one input, scaled by
// the gradient flowing into the loss (1 when the loss is the cost).
type lossGradOp struct {
	fwd *lossOp
	wrt int
	out *tensor.Dense
}

func (op *lossGradOp) Arity() int { return 2 }
func (op *lossGradOp) Type() hm.Type {
	s := op.fwd.inShapes[op.wrt]
	return hm.NewFnType(tensor.Float32, tensor.Float32, gorgonia.TensorType{Dims: s.Dims(), Of: tensor.Float32})
}
func (op *lossGradOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.fwd.inShapes[op.wrt].Clone(), nil
}
func (op *lossGradOp) ReturnsPtr() bool     { return false }
func (op *lossGradOp) CallsExtern() bool    { return false }
func (op *lossGradOp) OverwritesInput() int { return -1 }
func (op *lossGradOp) String() string       { return fmt.Sprintf("d%s/din%d", op.fwd.k.name(), op.wrt) }
func (op *lossGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "d%s@%p/din%d", op.fwd.k.name(), op.fwd.k, op.wrt)
}
func (op *lossGradOp) Hashcode() uint32 { return hashOf(op) }

func (op *lossGradOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("%s: %d inputs, want 2", op, len(vals))
	}
	scale, err := scalar32(vals[1])
	if err != nil {
		return nil, fmt.Errorf("%s: incoming gradient: %w", op, err)
	}
	if !op.fwd.ran {
		// The output dependency orders the forward first; a machine that
		// skips it gets an error rather than a stale gradient.
		return nil, fmt.Errorf("%s: gradient requested before the forward ran", op)
	}
	if op.out == nil {
		op.out = tensor.New(tensor.WithShape(op.fwd.inShapes[op.wrt].Clone()...), tensor.Of(tensor.Float32))
	}
	dst, src := op.out.Float32s(), op.fwd.grads[op.wrt]
	if scale == 1 {
		copy(dst, src)
	} else {
		for i, g := range src {
			dst[i] = g * scale
		}
	}
	return op.out, nil
}

func scalar32(v gorgonia.Value) (float32, error) {
	switch x := v.(type) {
	case *gorgonia.F32:
		return float32(*x), nil
	case tensor.Tensor:
		if x.Dtype() == tensor.Float32 && x.Shape().TotalSize() == 1 {
			return x.Data().([]float32)[0], nil
		}
	}
	return 0, fmt.Errorf("got %T, want a float32 scalar", v)
}

type hasher interface{ WriteHash(hash.Hash) }

func hashOf(op hasher) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
