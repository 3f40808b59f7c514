package nn

import (
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Kernel is one float32 computation with a hand-written backward, for the
// packages that write coarse ops of their own (trainer/detect's losses and
// upsampling): Apply gives it the plumbing nn's own ops have (gorgonia types
// and shapes, symbolic differentiation, output buffers kept across runs),
// so a kernel only states its math.
type Kernel interface {
	// Name identifies the computation and its hyper-parameters; gorgonia
	// merges nodes whose ops hash alike, so kernels bound to per-step state
	// put its address in the name.
	Name() string
	// OutShape returns the output shape for the input shapes.
	OutShape(in []tensor.Shape) (tensor.Shape, error)
	// Forward computes out (shaped by OutShape) from in.
	Forward(out []float32, in [][]float32, shapes []tensor.Shape)
	// DiffWRT says which inputs have a gradient.
	DiffWRT() []bool
	// Backward writes d(loss)/d(in[wrt]) into dIn (zeroed by the caller)
	// from the output's gradient grad; out is the forward output.
	Backward(wrt int, dIn, grad, out []float32, in [][]float32, shapes []tensor.Shape)
}

// Apply adds a node computing k on the children.
func Apply(k Kernel, children ...*gorgonia.Node) (*gorgonia.Node, error) {
	return apply(exportedKernel{k}, children...)
}

// exportedKernel adapts a Kernel to the package's kernel interface.
type exportedKernel struct{ k Kernel }

func (e exportedKernel) name() string { return e.k.Name() }
func (e exportedKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return e.k.OutShape(in)
}
func (e exportedKernel) forward(out []float32, in [][]float32, shapes []tensor.Shape) {
	e.k.Forward(out, in, shapes)
}
func (e exportedKernel) diffWRT() []bool { return e.k.DiffWRT() }
func (e exportedKernel) backward(wrt int, dIn, grad, out []float32, in [][]float32, shapes []tensor.Shape) {
	e.k.Backward(wrt, dIn, grad, out, in, shapes)
}
