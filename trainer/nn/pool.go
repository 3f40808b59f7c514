package nn

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MaxPool2dOp is torch.nn.MaxPool2d(kernel, stride, padding) on x [N, C, H, W]
// (padding counts as -inf). The backward recomputes the arg-max, taking the
// first maximum in row-major window order as torch does.
func MaxPool2dOp(x *gorgonia.Node, kernel, stride, padding int) (*gorgonia.Node, error) {
	if kernel < 1 || stride < 1 || padding < 0 || 2*padding > kernel {
		return nil, fmt.Errorf("MaxPool2d: bad kernel %d, stride %d, padding %d", kernel, stride, padding)
	}
	return apply(&maxPoolKernel{k: kernel, s: stride, p: padding}, x)
}

type maxPoolKernel struct{ k, s, p int }

func (k *maxPoolKernel) name() string    { return fmt.Sprintf("MaxPool2d{k%d s%d p%d}", k.k, k.s, k.p) }
func (k *maxPoolKernel) diffWRT() []bool { return []bool{true} }

func (k *maxPoolKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x := in[0]
	if x.Dims() != 4 {
		return nil, fmt.Errorf("x %v is not [N,C,H,W]", x)
	}
	oh := (x[2]+2*k.p-k.k)/k.s + 1
	ow := (x[3]+2*k.p-k.k)/k.s + 1
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("x %v too small", x)
	}
	return tensor.Shape{x[0], x[1], oh, ow}, nil
}

// argmax returns the index (into the channel plane) of the window maximum
// for output (oy, ox).
func (k *maxPoolKernel) argmax(xc []float32, h, w, oy, ox int) int {
	best, bi := float32(0), -1
	for i := 0; i < k.k; i++ {
		y := oy*k.s - k.p + i
		if y < 0 || y >= h {
			continue
		}
		for j := 0; j < k.k; j++ {
			xx := ox*k.s - k.p + j
			if xx < 0 || xx >= w {
				continue
			}
			v := xc[y*w+xx]
			// v != v catches NaN, which torch propagates.
			if bi < 0 || v > best || v != v {
				best, bi = v, y*w+xx
				if v != v {
					return bi
				}
			}
		}
	}
	return bi
}

func (k *maxPoolKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	x := in[0]
	n, c, h, w := s[0][0], s[0][1], s[0][2], s[0][3]
	oh, ow := (h+2*k.p-k.k)/k.s+1, (w+2*k.p-k.k)/k.s+1
	parallelFor(n*c, func(_, lo, hi int) {
		maxPoolForward(k, out[lo*oh*ow:hi*oh*ow], x[lo*h*w:hi*h*w], h, w, oh, ow)
	})
}

func (k *maxPoolKernel) backward(_ int, dIn, grad, _ []float32, in [][]float32, s []tensor.Shape) {
	x := in[0]
	n, c, h, w := s[0][0], s[0][1], s[0][2], s[0][3]
	oh, ow := (h+2*k.p-k.k)/k.s+1, (w+2*k.p-k.k)/k.s+1
	parallelFor(n*c, func(_, lo, hi int) {
		maxPoolBackward(k, dIn[lo*h*w:hi*h*w], grad[lo*oh*ow:hi*oh*ow], x[lo*h*w:hi*h*w], h, w, oh, ow)
	})
}

// maxPoolForwardGo pools the planes of x [planes, h, w] into out
// [planes, oh, ow].
func maxPoolForwardGo(k *maxPoolKernel, out, x []float32, h, w, oh, ow int) {
	for c := range len(x) / (h * w) {
		xc := x[c*h*w : (c+1)*h*w]
		o := out[c*oh*ow : (c+1)*oh*ow]
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				o[oy*ow+ox] = xc[k.argmax(xc, h, w, oy, ox)]
			}
		}
	}
}

// maxPoolBackwardGo adds each output gradient of dy [planes, oh, ow] to
// its window's arg-max in dx [planes, h, w].
func maxPoolBackwardGo(k *maxPoolKernel, dx, dy, x []float32, h, w, oh, ow int) {
	for c := range len(x) / (h * w) {
		xc := x[c*h*w : (c+1)*h*w]
		d := dx[c*h*w : (c+1)*h*w]
		g := dy[c*oh*ow : (c+1)*oh*ow]
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				d[k.argmax(xc, h, w, oy, ox)] += g[oy*ow+ox]
			}
		}
	}
}

// GlobalAvgPoolOp averages x [N, C, ...] over everything after the channel
// axis and returns [N, C] (torch's adaptive_avg_pool2d(x, 1).flatten(1)).
func GlobalAvgPoolOp(x *gorgonia.Node) (*gorgonia.Node, error) {
	return apply(gapKernel{}, x)
}

type gapKernel struct{}

func (gapKernel) name() string    { return "GlobalAvgPool" }
func (gapKernel) diffWRT() []bool { return []bool{true} }
func (gapKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() < 3 {
		return nil, fmt.Errorf("x %v has no spatial axes", in[0])
	}
	return tensor.Shape{in[0][0], in[0][1]}, nil
}
func (gapKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	n, c, sp := bnDims(s[0])
	x := in[0]
	for i := 0; i < n*c; i++ {
		var sum float64
		for _, v := range x[i*sp : (i+1)*sp] {
			sum += float64(v)
		}
		out[i] = float32(sum / float64(sp))
	}
}
func (gapKernel) backward(_ int, dIn, grad, _ []float32, _ [][]float32, s []tensor.Shape) {
	n, c, sp := bnDims(s[0])
	inv := 1 / float32(sp)
	for i := 0; i < n*c; i++ {
		g := grad[i] * inv
		d := dIn[i*sp : (i+1)*sp]
		for j := range d {
			d[j] = g
		}
	}
}
