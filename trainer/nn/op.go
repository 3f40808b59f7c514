package nn

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"runtime"
	"sync"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// kernel is the package's own form of Kernel (kernel.go), with unexported
// methods of the same contracts: the gorgonia plumbing (types, shapes,
// symbolic differentiation) is shared by every kernel through fwdOp and
// gradOp, so a kernel only states its math.
type kernel interface {
	name() string
	outShape(in []tensor.Shape) (tensor.Shape, error)
	forward(out []float32, in [][]float32, shapes []tensor.Shape)
	diffWRT() []bool
	backward(wrt int, dIn, grad, out []float32, in [][]float32, shapes []tensor.Shape)
}

// gradOverwriter is implemented by kernels whose backward writes every
// element of dIn for input wrt, so the caller can skip zeroing it (a
// whole-activation memclr per op and step otherwise).
type gradOverwriter interface {
	overwrites(wrt int) bool
}

// apply builds a node computing k on the children.
func apply(k kernel, children ...*gorgonia.Node) (*gorgonia.Node, error) {
	shapes := make([]tensor.Shape, len(children))
	for i, c := range children {
		if c.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("%s: input %d (%s) is %v, need float32", k.name(), i, c.Name(), c.Dtype())
		}
		shapes[i] = c.Shape().Clone()
	}
	outShape, err := k.outShape(shapes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.name(), err)
	}
	op := &fwdOp{k: k, inShapes: shapes, outShape: outShape}
	n, err := gorgonia.ApplyOp(op, children...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.name(), err)
	}
	return n, nil
}

// fwdOp adapts a kernel to gorgonia.Op and gorgonia.SDOp. Its output buffer
// is kept across runs so that a training step does not allocate it again.
type fwdOp struct {
	k        kernel
	inShapes []tensor.Shape
	outShape tensor.Shape

	mu  sync.Mutex
	out *tensor.Dense
}

func tensorType(dims int) hm.Type {
	return gorgonia.TensorType{Dims: dims, Of: tensor.Float32}
}

func fnType(in []tensor.Shape, out tensor.Shape) hm.Type {
	ts := make([]hm.Type, 0, len(in)+1)
	for _, s := range in {
		ts = append(ts, tensorType(s.Dims()))
	}
	ts = append(ts, tensorType(out.Dims()))
	return hm.NewFnType(ts...)
}

func (op *fwdOp) Arity() int       { return len(op.inShapes) }
func (op *fwdOp) Type() hm.Type    { return fnType(op.inShapes, op.outShape) }
func (op *fwdOp) ReturnsPtr() bool { return false }
func (op *fwdOp) CallsExtern() bool {
	return false
}
func (op *fwdOp) OverwritesInput() int { return -1 }
func (op *fwdOp) String() string       { return op.k.name() }
func (op *fwdOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "%s%v", op.k.name(), op.inShapes)
}
func (op *fwdOp) Hashcode() uint32 { return hashOf(op) }

func (op *fwdOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.outShape.Clone(), nil
}

func (op *fwdOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	in, err := InputData(op.k.name(), vals, op.inShapes)
	if err != nil {
		return nil, err
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.out == nil {
		op.out = tensor.New(tensor.WithShape(op.outShape.Clone()...), tensor.Of(tensor.Float32))
	}
	op.k.forward(op.out.Float32s(), in, op.inShapes)
	return op.out, nil
}

func (op *fwdOp) DiffWRT(inputs int) []bool { return op.k.diffWRT() }

func (op *fwdOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	diff := op.k.diffWRT()
	ret := make(gorgonia.Nodes, len(inputs))
	children := make(gorgonia.Nodes, 0, len(inputs)+2)
	children = append(children, inputs...)
	children = append(children, output, grad)
	for i, d := range diff {
		if !d {
			continue
		}
		g := &gradOp{k: op.k, wrt: i, inShapes: op.inShapes, outShape: op.outShape}
		n, err := gorgonia.ApplyOp(g, children...)
		if err != nil {
			return nil, fmt.Errorf("%s: gradient wrt input %d: %w", op.k.name(), i, err)
		}
		ret[i] = n
	}
	return ret, nil
}

// gradOp computes one input's gradient of a kernel. Its inputs are the
// kernel's inputs, the forward output and the output's gradient.
type gradOp struct {
	k        kernel
	wrt      int
	inShapes []tensor.Shape
	outShape tensor.Shape

	mu  sync.Mutex
	out *tensor.Dense
}

func (op *gradOp) Arity() int { return len(op.inShapes) + 2 }
func (op *gradOp) Type() hm.Type {
	in := append(append([]tensor.Shape{}, op.inShapes...), op.outShape, op.outShape)
	return fnType(in, op.inShapes[op.wrt])
}
func (op *gradOp) ReturnsPtr() bool     { return false }
func (op *gradOp) CallsExtern() bool    { return false }
func (op *gradOp) OverwritesInput() int { return -1 }
func (op *gradOp) String() string       { return fmt.Sprintf("d%s/din%d", op.k.name(), op.wrt) }
func (op *gradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "d%s/din%d%v", op.k.name(), op.wrt, op.inShapes)
}
func (op *gradOp) Hashcode() uint32 { return hashOf(op) }
func (op *gradOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.inShapes[op.wrt].Clone(), nil
}

func (op *gradOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	shapes := append(append([]tensor.Shape{}, op.inShapes...), op.outShape, op.outShape)
	all, err := InputData(op.String(), vals, shapes)
	if err != nil {
		return nil, err
	}
	n := len(op.inShapes)
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.out == nil {
		op.out = tensor.New(tensor.WithShape(op.inShapes[op.wrt].Clone()...), tensor.Of(tensor.Float32))
	}
	d := op.out.Float32s()
	if ow, ok := op.k.(gradOverwriter); !ok || !ow.overwrites(op.wrt) {
		clear(d)
	}
	op.k.backward(op.wrt, d, all[n+1], all[n], all[:n], op.inShapes)
	return op.out, nil
}

type hasher interface{ WriteHash(hash.Hash) }

func hashOf(op hasher) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// ErrShape reports an op input whose shape differs from the one the
// op was built for.
var ErrShape = errors.New("shape mismatch")

// InputData checks that vals are contiguous float32 tensors of the given
// shapes and returns their data: the argument check of every coarse op's
// Do, here and in the packages that write their own ops (trainer/ssl's
// losses, trainer/detect's).
func InputData(name string, vals []gorgonia.Value, shapes []tensor.Shape) ([][]float32, error) {
	if len(vals) != len(shapes) {
		return nil, fmt.Errorf("%s: %d inputs, want %d", name, len(vals), len(shapes))
	}
	out := make([][]float32, len(vals))
	for i, v := range vals {
		t, ok := v.(tensor.Tensor)
		if !ok || t.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("%s: input %d is %T, want a float32 tensor", name, i, v)
		}
		if !t.Shape().Eq(shapes[i]) {
			return nil, fmt.Errorf("%s: input %d has shape %v, want %v: %w", name, i, t.Shape(), shapes[i], ErrShape)
		}
		if !t.IsNativelyAccessible() || t.RequiresIterator() {
			return nil, fmt.Errorf("%s: input %d is not a contiguous dense tensor", name, i)
		}
		out[i] = t.Data().([]float32)
	}
	return out, nil
}

// parallelFor runs f over [0, n) split into contiguous ranges, one per CPU;
// w is the chunk's index, below numWorkers(n), for per-worker scratch space.
func parallelFor(n int, f func(w, lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		if n > 0 {
			f(0, 0, n)
		}
		return
	}
	// Ranges differ by at most one item: ⌈n/workers⌉-sized ones left the
	// last worker short (7 images over 3 workers went 3/3/1).
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			f(w, lo, hi)
		}(w, w*n/workers, (w+1)*n/workers)
	}
	wg.Wait()
}

// numWorkers returns how many chunks parallelFor uses for n items, so
// callers can size per-worker scratch space.
func numWorkers(n int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n))
}

// shapeProduct returns the number of elements of s.
func shapeProduct(s tensor.Shape) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}
