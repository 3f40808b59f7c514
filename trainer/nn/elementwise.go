package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Activation selects an element-wise function.
type Activation int

// The activations the backbones use.
const (
	ReLU  Activation = iota // max(x, 0)
	ReLU6                   // min(max(x, 0), 6)
	GELU                    // x·Φ(x) with the exact erf (torch's default)
)

func (a Activation) String() string {
	switch a {
	case ReLU:
		return "ReLU"
	case ReLU6:
		return "ReLU6"
	case GELU:
		return "GELU"
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// ActivationOp applies a to every element of x.
func ActivationOp(x *gorgonia.Node, a Activation) (*gorgonia.Node, error) {
	if a < ReLU || a > GELU {
		return nil, fmt.Errorf("unknown activation %v", a)
	}
	return apply(&actKernel{a: a}, x)
}

type actKernel struct{ a Activation }

func (k *actKernel) name() string    { return k.a.String() }
func (k *actKernel) diffWRT() []bool { return []bool{true} }
func (k *actKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[0].Clone(), nil
}

// actChunk is the number of elements one parallel task of an
// element-wise kernel covers.
const actChunk = 4096

func (k *actKernel) forward(out []float32, in [][]float32, _ []tensor.Shape) {
	x := in[0]
	parallelFor(len(x)/actChunk+1, func(_, lo, hi int) {
		lo, hi = lo*actChunk, min(hi*actChunk, len(x))
		xs, o := x[lo:hi], out[lo:hi]
		if k.a != GELU {
			actForward(k.a.code(), o, xs)
			return
		}
		for i, v := range xs {
			f := float64(v)
			o[i] = float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
		}
	})
}

func (k *actKernel) overwrites(int) bool { return true }

func (k *actKernel) backward(_ int, dIn, grad, _ []float32, in [][]float32, _ []tensor.Shape) {
	x := in[0]
	parallelFor(len(x)/actChunk+1, func(_, lo, hi int) {
		lo, hi = lo*actChunk, min(hi*actChunk, len(x))
		xs, g, d := x[lo:hi], grad[lo:hi], dIn[lo:hi]
		if k.a != GELU {
			actBackward(k.a.code(), d, g, xs)
			return
		}
		const invSqrt2Pi = 0.3989422804014327
		for i, v := range xs {
			f := float64(v)
			cdf := 0.5 * (1 + math.Erf(f/math.Sqrt2))
			pdf := invSqrt2Pi * math.Exp(-0.5*f*f)
			d[i] = float32(float64(g[i]) * (cdf + f*pdf))
		}
	})
}

// actCode names the piecewise-linear activations the kernels apply or fuse
// (the C kernels' NN_ACT_* codes).
type actCode int32

const (
	actNone  actCode = iota // identity
	actReLU                 // max(x, 0)
	actReLU6                // min(max(x, 0), 6)
)

// code returns a's kernel code; only ReLU and ReLU6 have one.
func (a Activation) code() actCode {
	switch a {
	case ReLU:
		return actReLU
	case ReLU6:
		return actReLU6
	}
	panic(fmt.Sprintf("nn: %v has no kernel code", a))
}

func (a actCode) String() string {
	switch a {
	case actReLU:
		return "ReLU"
	case actReLU6:
		return "ReLU6"
	}
	return ""
}

// apply returns a(v); NaN stays NaN as with Go's max and min.
func (a actCode) apply(v float32) float32 {
	switch a {
	case actReLU:
		return max(v, 0)
	case actReLU6:
		return min(max(v, 0), 6)
	}
	return v
}

// passes reports whether a passes the gradient at v (its input or,
// equivalently, its output): strictly inside (0, ∞) for ReLU and (0, 6)
// for ReLU6, as torch's threshold and hardtanh backward; false for NaN.
func (a actCode) passes(v float32) bool {
	switch a {
	case actReLU:
		return v > 0
	case actReLU6:
		return v > 0 && v < 6
	}
	return true
}

// actForwardGo writes a(x) into out.
func actForwardGo(a actCode, out, x []float32) {
	out = out[:len(x)]
	switch a {
	case actReLU:
		for i, v := range x {
			out[i] = max(v, 0)
		}
	case actReLU6:
		for i, v := range x {
			out[i] = min(max(v, 0), 6)
		}
	default:
		copy(out, x)
	}
}

// actBackwardGo writes dy where a passes the gradient at x, 0 elsewhere.
func actBackwardGo(a actCode, dx, dy, x []float32) {
	dx, dy = dx[:len(x)], dy[:len(x)]
	switch a {
	case actReLU:
		for i, v := range x {
			if v > 0 {
				dx[i] = dy[i]
			} else {
				dx[i] = 0
			}
		}
	case actReLU6:
		// torch's hardtanh backward: gradient only strictly inside (0, 6).
		for i, v := range x {
			if v > 0 && v < 6 {
				dx[i] = dy[i]
			} else {
				dx[i] = 0
			}
		}
	default:
		copy(dx, dy)
	}
}

// addGo writes a + b into out.
func addGo(out, a, b []float32) {
	a, b = a[:len(out)], b[:len(out)]
	for i := range out {
		out[i] = a[i] + b[i]
	}
}

// AddOp returns a + b for tensors of the same shape (residual connections).
func AddOp(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	return apply(addKernel{}, a, b)
}

type addKernel struct{}

func (addKernel) name() string    { return "Add" }
func (addKernel) diffWRT() []bool { return []bool{true, true} }
func (addKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if !in[0].Eq(in[1]) {
		return nil, fmt.Errorf("shapes %v and %v differ", in[0], in[1])
	}
	return in[0].Clone(), nil
}
func (addKernel) forward(out []float32, in [][]float32, _ []tensor.Shape) {
	a, b := in[0], in[1]
	parallelFor(len(out)/actChunk+1, func(_, lo, hi int) {
		lo, hi = lo*actChunk, min(hi*actChunk, len(out))
		addVec(out[lo:hi], a[lo:hi], b[lo:hi])
	})
}
func (addKernel) overwrites(int) bool { return true }

func (addKernel) backward(_ int, dIn, grad, _ []float32, _ [][]float32, _ []tensor.Shape) {
	parallelFor(len(grad)/actChunk+1, func(_, lo, hi int) {
		lo, hi = lo*actChunk, min(hi*actChunk, len(grad))
		copy(dIn[lo:hi], grad[lo:hi])
	})
}

// ChannelBiasOp adds b [C] to every position of channel c of x [N, C, ...].
func ChannelBiasOp(x, b *gorgonia.Node) (*gorgonia.Node, error) {
	return apply(channelBiasKernel{}, x, b)
}

type channelBiasKernel struct{}

func (channelBiasKernel) name() string    { return "ChannelBias" }
func (channelBiasKernel) diffWRT() []bool { return []bool{true, true} }
func (channelBiasKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() < 2 || in[1].Dims() != 1 || in[1][0] != in[0][1] {
		return nil, fmt.Errorf("x %v and bias %v do not match", in[0], in[1])
	}
	return in[0].Clone(), nil
}
func (channelBiasKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	x, b := in[0], in[1]
	n, c, sp := bnDims(s[0])
	for i := 0; i < n*c; i++ {
		bv := b[i%c]
		o, xs := out[i*sp:(i+1)*sp], x[i*sp:(i+1)*sp]
		for j, v := range xs {
			o[j] = v + bv
		}
	}
}
func (channelBiasKernel) backward(wrt int, dIn, grad, _ []float32, _ [][]float32, s []tensor.Shape) {
	if wrt == 0 {
		copy(dIn, grad)
		return
	}
	n, c, sp := bnDims(s[0])
	for i := 0; i < n*c; i++ {
		var sum float32
		for _, v := range grad[i*sp : (i+1)*sp] {
			sum += v
		}
		dIn[i%c] += sum
	}
}
