package nn

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LinearOp is torch.nn.functional.linear: x [..., K] times w [O, K]
// transposed, plus b [O] when b is not nil, giving [..., O].
func LinearOp(x, w, b *gorgonia.Node) (*gorgonia.Node, error) {
	if b == nil {
		return apply(linearKernel{}, x, w)
	}
	return apply(linearKernel{bias: true}, x, w, b)
}

type linearKernel struct{ bias bool }

func (k linearKernel) name() string { return fmt.Sprintf("Linear{bias=%v}", k.bias) }
func (k linearKernel) diffWRT() []bool {
	if k.bias {
		return []bool{true, true, true}
	}
	return []bool{true, true}
}

func (k linearKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x, w := in[0], in[1]
	if x.Dims() < 1 || w.Dims() != 2 || x[x.Dims()-1] != w[1] {
		return nil, fmt.Errorf("x %v and weight %v do not match", x, w)
	}
	if k.bias && (in[2].Dims() != 1 || in[2][0] != w[0]) {
		return nil, fmt.Errorf("bias %v must be [%d]", in[2], w[0])
	}
	out := x.Clone()
	out[len(out)-1] = w[0]
	return out, nil
}

// linearSplit is the least multiply-adds a linear op spreads over the
// workers: the DINO head's layers are large GEMMs that otherwise run on one
// core while the other idles (OpenBLAS runs single-threaded here).
const linearSplit = 1 << 20

// linearParallel runs f over [0, n) split over the workers when the op
// has at least linearSplit multiply-adds, in one piece otherwise. Each
// piece computes its own outputs whole, so the split changes no result.
func linearParallel(macs, n int, f func(lo, hi int)) {
	if macs < linearSplit {
		f(0, n)
		return
	}
	parallelFor(n, func(_, lo, hi int) { f(lo, hi) })
}

func (k linearKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	x, w := in[0], in[1]
	o, kk := s[1][0], s[1][1]
	m := len(x) / kk
	if m == 0 {
		return
	}
	bl := gorgonia.WhichBLAS()
	beta := float32(0)
	if k.bias {
		beta = 1
	}
	linearParallel(m*o*kk, m, func(lo, hi int) {
		if k.bias {
			for r := lo; r < hi; r++ {
				copy(out[r*o:(r+1)*o], in[2])
			}
		}
		bl.Sgemm(blas.NoTrans, blas.Trans, hi-lo, o, kk, 1, x[lo*kk:], kk, w, kk, beta, out[lo*o:], o)
	})
}

func (k linearKernel) backward(wrt int, dIn, grad, _ []float32, in [][]float32, s []tensor.Shape) {
	x, w := in[0], in[1]
	o, kk := s[1][0], s[1][1]
	m := len(x) / kk
	if m == 0 {
		return
	}
	bl := gorgonia.WhichBLAS()
	switch wrt {
	case 0: // dx [m, K] = grad [m, O] · w [O, K], split over rows of dx
		linearParallel(m*o*kk, m, func(lo, hi int) {
			bl.Sgemm(blas.NoTrans, blas.NoTrans, hi-lo, kk, o, 1, grad[lo*o:], o, w, kk, 0, dIn[lo*kk:], kk)
		})
	case 1: // dw [O, K] = gradᵀ · x, split over rows of dw
		linearParallel(m*o*kk, o, func(lo, hi int) {
			bl.Sgemm(blas.Trans, blas.NoTrans, hi-lo, kk, m, 1, grad[lo:], o, x, kk, 0, dIn[lo*kk:], kk)
		})
	case 2:
		for r := 0; r < m; r++ {
			for j, g := range grad[r*o : (r+1)*o] {
				dIn[j] += g
			}
		}
	}
}
