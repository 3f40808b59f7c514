package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// L2NormalizeOp is torch.nn.functional.normalize(x, p=2, dim=-1): every row
// of the last dimension divided by max(‖row‖, eps), eps = 1e-12.
func L2NormalizeOp(x *gorgonia.Node) (*gorgonia.Node, error) {
	return apply(l2NormKernel{}, x)
}

type l2NormKernel struct{}

const l2NormEps = 1e-12

func (l2NormKernel) name() string    { return "L2Normalize" }
func (l2NormKernel) diffWRT() []bool { return []bool{true} }
func (l2NormKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() < 1 || in[0][in[0].Dims()-1] == 0 {
		return nil, fmt.Errorf("x %v needs a non-empty last dimension", in[0])
	}
	return in[0].Clone(), nil
}

// rowNorm is max(‖r‖, eps) accumulated in float64.
func rowNorm(r []float32) float64 {
	var s float64
	for _, v := range r {
		s += float64(v) * float64(v)
	}
	return max(math.Sqrt(s), l2NormEps)
}

func (l2NormKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	d := s[0][s[0].Dims()-1]
	x := in[0]
	parallelFor(len(x)/d, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x[r*d : (r+1)*d]
			inv := 1 / rowNorm(row)
			for j, v := range row {
				out[r*d+j] = float32(float64(v) * inv)
			}
		}
	})
}

// backward: y = x/n gives dx = (g − y·(y·g))/n when ‖x‖ > eps, and g/eps
// when the norm is clamped (n does not depend on x there).
func (l2NormKernel) backward(_ int, dIn, grad, out []float32, in [][]float32, s []tensor.Shape) {
	d := s[0][s[0].Dims()-1]
	x := in[0]
	parallelFor(len(x)/d, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			row, y, g := x[r*d:(r+1)*d], out[r*d:(r+1)*d], grad[r*d:(r+1)*d]
			n := rowNorm(row)
			var yg float64
			if n > l2NormEps {
				for j := range y {
					yg += float64(y[j]) * float64(g[j])
				}
			}
			for j := range y {
				dIn[r*d+j] += float32((float64(g[j]) - float64(y[j])*yg) / n)
			}
		}
	})
}

// ScaleRowsOp multiplies row r of x [R, C] by s[r] (s has R elements in
// any shape, e.g. weight_norm's g [R, 1]).
func ScaleRowsOp(x, s *gorgonia.Node) (*gorgonia.Node, error) {
	return apply(scaleRowsKernel{}, x, s)
}

type scaleRowsKernel struct{}

func (scaleRowsKernel) name() string    { return "ScaleRows" }
func (scaleRowsKernel) diffWRT() []bool { return []bool{true, true} }
func (scaleRowsKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 2 || in[1].TotalSize() != in[0][0] {
		return nil, fmt.Errorf("x %v must be [R, C] and s %v hold R values", in[0], in[1])
	}
	return in[0].Clone(), nil
}

func (scaleRowsKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	c := s[0][1]
	for r, f := range in[1] {
		for j, v := range in[0][r*c : (r+1)*c] {
			out[r*c+j] = v * f
		}
	}
}

func (scaleRowsKernel) backward(wrt int, dIn, grad, _ []float32, in [][]float32, s []tensor.Shape) {
	c := s[0][1]
	for r, f := range in[1] {
		g := grad[r*c : (r+1)*c]
		if wrt == 0 {
			for j, v := range g {
				dIn[r*c+j] += v * f
			}
			continue
		}
		var acc float64
		for j, v := range g {
			acc += float64(v) * float64(in[0][r*c+j])
		}
		dIn[r] += float32(acc)
	}
}

// ConcatOp stacks its inputs along the first dimension (torch.cat(xs, 0));
// the other dimensions must agree.
func ConcatOp(xs ...*gorgonia.Node) (*gorgonia.Node, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("concat: no inputs")
	}
	if len(xs) == 1 {
		return xs[0], nil
	}
	return apply(concatKernel{n: len(xs)}, xs...)
}

type concatKernel struct{ n int }

func (k concatKernel) name() string { return fmt.Sprintf("Concat{%d}", k.n) }
func (k concatKernel) diffWRT() []bool {
	d := make([]bool, k.n)
	for i := range d {
		d[i] = true
	}
	return d
}

func (concatKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	out := in[0].Clone()
	if out.Dims() < 1 {
		return nil, fmt.Errorf("input 0 %v is a scalar", in[0])
	}
	for i, s := range in[1:] {
		if s.Dims() != out.Dims() || !s[1:].Eq(out[1:]) {
			return nil, fmt.Errorf("input %d %v does not match input 0 %v beyond the first dimension", i+1, s, in[0])
		}
		out[0] += s[0]
	}
	return out, nil
}

func (concatKernel) forward(out []float32, in [][]float32, _ []tensor.Shape) {
	off := 0
	for _, x := range in {
		off += copy(out[off:], x)
	}
}

func (concatKernel) backward(wrt int, dIn, grad, _ []float32, in [][]float32, _ []tensor.Shape) {
	off := 0
	for _, x := range in[:wrt] {
		off += len(x)
	}
	for j, g := range grad[off : off+len(dIn)] {
		dIn[j] += g
	}
}
