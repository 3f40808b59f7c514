package nn

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ConvParams are a 2-D convolution's hyper-parameters, as torch.nn.Conv2d's.
// Pairs are (height, width).
type ConvParams struct {
	Stride   [2]int
	Padding  [2]int
	Dilation [2]int
	Groups   int
}

// Conv2dOp convolves x [N, C, H, W] with w [O, C/groups, KH, KW] (no bias)
// and returns [N, O, OH, OW]. It is one coarse op: per image and group an
// im2col buffer and one SGEMM writing straight into the NCHW output; 1x1
// stride-1 convolutions skip im2col, depthwise convolutions (groups = C = O)
// use a direct loop, and 3x3 stride-1 "same" convolutions run as Winograd
// F(2x2, 3x3) in cgo builds (winograd.go). Images are spread over the CPUs.
func Conv2dOp(x, w *gorgonia.Node, p ConvParams) (*gorgonia.Node, error) {
	return apply(&convKernel{p: p.withDefaults()}, x, w)
}

func (p ConvParams) withDefaults() ConvParams {
	for i := range 2 {
		if p.Stride[i] == 0 {
			p.Stride[i] = 1
		}
		if p.Dilation[i] == 0 {
			p.Dilation[i] = 1
		}
	}
	if p.Groups == 0 {
		p.Groups = 1
	}
	return p
}

type convKernel struct {
	p ConvParams
}

// convGeom is the geometry of one convolution, derived from the shapes.
type convGeom struct {
	n, c, h, w     int
	o, kh, kw      int
	oh, ow         int
	g, cg, og      int
	k, p           int // im2col rows (cg*kh*kw) and columns (oh*ow)
	sh, sw, ph, pw int
	dh, dw         int
}

func (k *convKernel) name() string {
	return fmt.Sprintf("Conv2d{s%v p%v d%v g%d}", k.p.Stride, k.p.Padding, k.p.Dilation, k.p.Groups)
}

func (k *convKernel) diffWRT() []bool { return []bool{true, true} }

func (k *convKernel) geom(in []tensor.Shape) (convGeom, error) {
	if len(in) != 2 || in[0].Dims() != 4 || in[1].Dims() != 4 {
		return convGeom{}, fmt.Errorf("want x [N,C,H,W] and w [O,C/groups,KH,KW], have %v", in)
	}
	x, w := in[0], in[1]
	p := k.p
	g := convGeom{n: x[0], c: x[1], h: x[2], w: x[3], o: w[0], kh: w[2], kw: w[3], g: p.Groups,
		sh: p.Stride[0], sw: p.Stride[1], ph: p.Padding[0], pw: p.Padding[1], dh: p.Dilation[0], dw: p.Dilation[1]}
	if g.n < 1 {
		return g, fmt.Errorf("empty batch %v", x)
	}
	if g.g <= 0 || g.c%g.g != 0 || g.o%g.g != 0 {
		return g, fmt.Errorf("groups %d must divide in channels %d and out channels %d", g.g, g.c, g.o)
	}
	g.cg, g.og = g.c/g.g, g.o/g.g
	if w[1] != g.cg {
		return g, fmt.Errorf("weight %v has %d input channels per group, x has %d", w, w[1], g.cg)
	}
	if g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || g.ph < 0 || g.pw < 0 {
		return g, fmt.Errorf("bad stride/padding/dilation %+v", p)
	}
	g.oh = (g.h+2*g.ph-g.dh*(g.kh-1)-1)/g.sh + 1
	g.ow = (g.w+2*g.pw-g.dw*(g.kw-1)-1)/g.sw + 1
	if g.oh < 1 || g.ow < 1 {
		return g, fmt.Errorf("input %v too small for kernel %dx%d", x, g.kh, g.kw)
	}
	g.k, g.p = g.cg*g.kh*g.kw, g.oh*g.ow
	return g, nil
}

func (k *convKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	g, err := k.geom(in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{g.n, g.o, g.oh, g.ow}, nil
}

// pointwise reports a 1x1 stride-1 unpadded convolution, whose im2col
// matrix is the input itself.
func (g *convGeom) pointwise() bool {
	return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0
}

func (g *convGeom) depthwise() bool { return g.cg == 1 && g.og == 1 }

// gemmColumns is the number of output positions one SGEMM should cover
// at least: with few positions per image (the last stages of a CNN), images
// are batched into one GEMM so that it is not a matrix-vector product.
const gemmColumns = 512

// splitBatch returns how many chunks a batch of n images with p GEMM
// columns each splits into: the fewest whose images give each GEMM at least
// gemmColumns columns, rounded up to a multiple of the worker count so that
// every worker gets the same number of images, give or take one. (Cutting
// 64 images of a 6x6 map into chunks of 14 left one worker 42 images and
// the other 22: a quarter of resnet18's convolution time at 96 px ran on
// one core.)
func splitBatch(n, p int) int {
	per := max(1, gemmColumns/p)
	c := (n + per - 1) / per
	w := numWorkers(n)
	c = (c + w - 1) / w * w
	return min(c, n)
}

// batchRange returns the first image and the image count of chunk ch of
// chunks over n images: sizes differ by at most one.
func batchRange(n, ch, chunks int) (n0, cnt int) {
	n0 = ch * n / chunks
	return n0, (ch+1)*n/chunks - n0
}

// chunks is splitBatch for this convolution.
func (g *convGeom) chunks() int { return splitBatch(g.n, g.p) }

// chunkRange is batchRange for this convolution.
func (g *convGeom) chunkRange(ch, chunks int) (n0, cnt int) { return batchRange(g.n, ch, chunks) }

// chunkImages returns the most images one chunk holds (scratch size).
func (g *convGeom) chunkImages() int {
	c := g.chunks()
	return (g.n + c - 1) / c
}

// convScratch is one worker's buffers for a chunk of nb images.
type convScratch struct {
	col []float32 // [k, nb*p] im2col of the chunk (one group)
	tmp []float32 // [og, nb*p] GEMM output / gathered gradient
}

func (g *convGeom) scratch(nb int) *convScratch {
	return &convScratch{col: getScratch(g.k * nb * g.p), tmp: getScratch(g.og * nb * g.p)}
}

// release returns the workers' buffers to the pools.
func release(ss []*convScratch) {
	for _, s := range ss {
		if s != nil {
			putScratch(s.col)
			putScratch(s.tmp)
		}
	}
}

// direct reports whether a chunk's im2col matrix is the input itself: a
// pointwise convolution on one image.
func (g *convGeom) direct(nb int) bool { return nb == 1 && g.pointwise() }

func (k *convKernel) forward(out []float32, in [][]float32, shapes []tensor.Shape) {
	g, _ := k.geom(shapes)
	x, w := in[0], in[1]
	if g.depthwise() {
		parallelFor(g.n*g.c, func(_, lo, hi int) {
			for nc := lo; nc < hi; nc++ {
				c := nc % g.c
				depthwiseForward(&g, out[nc*g.p:(nc+1)*g.p], x[nc*g.h*g.w:(nc+1)*g.h*g.w], w[c*g.kh*g.kw:(c+1)*g.kh*g.kw])
			}
		})
		return
	}
	if g.winograd() {
		u := winogradWeights(w, g.o, g.c, false)
		winogradConv(out, x, u, g.n, g.c, g.o, g.h, g.w)
		putScratch(u)
		return
	}
	bl := gorgonia.WhichBLAS()
	imgO := g.o * g.p
	g.eachChunkGroup(func(_ int, sc *convScratch, n0, cnt, gi int) {
		cols := cnt * g.p
		wg := w[gi*g.og*g.k : (gi+1)*g.og*g.k]
		if g.direct(cnt) {
			xg := x[n0*g.c*g.h*g.w+gi*g.cg*g.h*g.w:]
			on := out[n0*imgO+gi*g.og*g.p:]
			bl.Sgemm(blas.NoTrans, blas.NoTrans, g.og, g.p, g.k, 1, wg, g.k, xg, g.p, 0, on, g.p)
			return
		}
		g.im2colChunk(sc, x, n0, cnt, gi)
		if cnt == 1 {
			// One image: the GEMM writes straight into NCHW.
			bl.Sgemm(blas.NoTrans, blas.NoTrans, g.og, g.p, g.k, 1, wg, g.k, sc.col, cols, 0, out[n0*imgO+gi*g.og*g.p:], g.p)
			return
		}
		bl.Sgemm(blas.NoTrans, blas.NoTrans, g.og, cols, g.k, 1, wg, g.k, sc.col, cols, 0, sc.tmp, cols)
		// Scatter [og, cnt·p] into the images' channel planes.
		copyBlocks(out[n0*imgO+gi*g.og*g.p:], g.p, imgO, sc.tmp, cols, g.p, g.og, cnt, g.p)
	})
}

// gatherGrad copies the output gradient of images n0..n0+cnt, group gi,
// into tmp [og, cnt·p].
func (g *convGeom) gatherGrad(tmp, grad []float32, n0, cnt, gi int) {
	cols := cnt * g.p
	copyBlocks(tmp, cols, g.p, grad[n0*g.o*g.p+gi*g.og*g.p:], g.p, g.o*g.p, g.og, cnt, g.p)
}

// copyBlocksGo copies outer·inner blocks of n floats: block (o, i) from
// src[o·sOuter + i·sInner:] to dst[o·dOuter + i·dInner:].
func copyBlocksGo(dst []float32, dOuter, dInner int, src []float32, sOuter, sInner, outer, inner, n int) {
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			copy(dst[o*dOuter+i*dInner:][:n], src[o*sOuter+i*sInner:][:n])
		}
	}
}

// overwrites: the data gradient is written whole (GEMM with β = 0,
// col2im and the depthwise loop clear their planes first); the filter
// gradient accumulates over chunks and needs the zeroed buffer.
func (k *convKernel) overwrites(wrt int) bool { return wrt == 0 }

func (k *convKernel) backward(wrt int, dIn, grad, _ []float32, in [][]float32, shapes []tensor.Shape) {
	g, _ := k.geom(shapes)
	x, w := in[0], in[1]
	if g.depthwise() {
		if wrt == 0 {
			parallelFor(g.n*g.c, func(_, lo, hi int) {
				for nc := lo; nc < hi; nc++ {
					c := nc % g.c
					clear(dIn[nc*g.h*g.w : (nc+1)*g.h*g.w])
					depthwiseBackwardData(&g, dIn[nc*g.h*g.w:(nc+1)*g.h*g.w], grad[nc*g.p:(nc+1)*g.p], w[c*g.kh*g.kw:(c+1)*g.kh*g.kw])
				}
			})
			return
		}
		// Filter gradient: channels are independent, so split over them and
		// loop over the batch inside (no reduction across workers).
		kk := g.kh * g.kw
		parallelFor(g.c, func(_, lo, hi int) {
			for c := lo; c < hi; c++ {
				for n := 0; n < g.n; n++ {
					nc := n*g.c + c
					depthwiseBackwardFilter(&g, dIn[c*kk:(c+1)*kk], grad[nc*g.p:(nc+1)*g.p], x[nc*g.h*g.w:(nc+1)*g.h*g.w])
				}
			}
		})
		return
	}
	bl := gorgonia.WhichBLAS()
	imgX, imgO := g.c*g.h*g.w, g.o*g.p
	if wrt == 0 && g.winograd() {
		// dx is the convolution of dy with the rotated, transposed filters.
		u := winogradWeights(w, g.o, g.c, true)
		winogradConv(dIn, grad, u, g.n, g.o, g.c, g.h, g.w)
		putScratch(u)
		return
	}
	if wrt == 0 {
		g.eachChunkGroup(func(_ int, sc *convScratch, n0, cnt, gi int) {
			cols := cnt * g.p
			wg := w[gi*g.og*g.k : (gi+1)*g.og*g.k]
			if g.direct(cnt) {
				// dx = Wᵀ·dy straight into the image's planes.
				bl.Sgemm(blas.Trans, blas.NoTrans, g.k, g.p, g.og, 1, wg, g.k, grad[n0*imgO+gi*g.og*g.p:], g.p, 0, dIn[n0*imgX+gi*g.cg*g.h*g.w:], g.p)
				return
			}
			gg, ld := g.gradChunk(sc, grad, n0, cnt, gi)
			bl.Sgemm(blas.Trans, blas.NoTrans, g.k, cols, g.og, 1, wg, g.k, gg, ld, 0, sc.col, cols)
			col2im(&g, dIn[n0*imgX+gi*g.cg*g.h*g.w:], imgX, cnt, sc.col)
		})
		return
	}
	if g.winograd() {
		winogradFilterGrad(dIn, x, grad, g.n, g.c, g.o, g.h, g.w)
		return
	}
	// Filter gradient: each worker accumulates its chunks into its own
	// buffer (worker 0 straight into dIn); the buffers are summed at the end.
	acc := make([][]float32, numWorkers(g.chunks()))
	g.eachChunkGroup(func(wk int, sc *convScratch, n0, cnt, gi int) {
		dw := dIn
		if wk > 0 {
			if acc[wk] == nil {
				acc[wk] = getScratch(len(dIn))
				clear(acc[wk])
			}
			dw = acc[wk]
		}
		cols := cnt * g.p
		var b []float32
		if g.direct(cnt) {
			b = x[n0*imgX+gi*g.cg*g.h*g.w:][:g.cg*g.p]
		} else {
			g.im2colChunk(sc, x, n0, cnt, gi)
			b = sc.col
		}
		gg, ld := g.gradChunk(sc, grad, n0, cnt, gi)
		bl.Sgemm(blas.NoTrans, blas.Trans, g.og, g.k, cols, 1, gg, ld, b, cols, 1, dw[gi*g.og*g.k:(gi+1)*g.og*g.k], g.k)
	})
	for _, a := range acc[1:] {
		if a == nil {
			continue
		}
		for i, v := range a {
			dIn[i] += v
		}
		putScratch(a)
	}
}

// eachChunkGroup calls f for every (chunk of images, group) pair, the chunks
// split over the worker pool; sc is the worker's scratch, made on its first
// use and released when all are done. wk is the worker index (below
// numWorkers(g.chunks())), for per-worker accumulators.
func (g *convGeom) eachChunkGroup(f func(wk int, sc *convScratch, n0, cnt, gi int)) {
	nb := g.chunkImages()
	chunks := g.chunks()
	scratch := make([]*convScratch, numWorkers(chunks))
	defer release(scratch)
	parallelFor(chunks, func(wk, lo, hi int) {
		if scratch[wk] == nil {
			scratch[wk] = g.scratch(nb)
		}
		for ch := lo; ch < hi; ch++ {
			n0, cnt := g.chunkRange(ch, chunks)
			for gi := 0; gi < g.g; gi++ {
				f(wk, scratch[wk], n0, cnt, gi)
			}
		}
	})
}

// im2colChunk unfolds group gi of images n0..n0+cnt-1 side by side into
// sc.col ([cg·kh·kw, cnt·p]).
func (g *convGeom) im2colChunk(sc *convScratch, x []float32, n0, cnt, gi int) {
	imgX := g.c * g.h * g.w
	im2col(g, sc.col, x[n0*imgX+gi*g.cg*g.h*g.w:], imgX, cnt)
}

// gradChunk returns the output gradient of group gi of images
// n0..n0+cnt-1 as a [og, cnt·p] matrix and its leading dimension: the
// images' planes themselves for one image, gathered into sc.tmp otherwise.
func (g *convGeom) gradChunk(sc *convScratch, grad []float32, n0, cnt, gi int) ([]float32, int) {
	if cnt == 1 {
		return grad[n0*g.o*g.p+gi*g.og*g.p:], g.p
	}
	g.gatherGrad(sc.tmp, grad, n0, cnt, gi)
	return sc.tmp, cnt * g.p
}

// im2colGo unfolds cnt images side by side into col [cg·kh·kw, cnt·p]:
// image i's group [cg, h, w] starts at x[i·imgStride], and its columns at
// col[r·cnt·p + i·p] for row r.
func im2colGo(g *convGeom, col, x []float32, imgStride, cnt int) {
	for i := 0; i < cnt; i++ {
		im2colImage(g, col[i*g.p:], cnt*g.p, x[i*imgStride:][:g.cg*g.h*g.w])
	}
}

// im2colImage fills the columns of one image's group xg [cg, h, w] into col:
// row r (of cg·kh·kw) starts at col[r·ld] and holds oh·ow values.
// The valid output rows and columns of each kernel offset are computed once
// per offset, not per row: with the small maps of 28–32 px training the
// per-row bookkeeping cost as much as the copying.
func im2colImage(g *convGeom, col []float32, ld int, xg []float32) {
	row := 0
	for c := 0; c < g.cg; c++ {
		xc := xg[c*g.h*g.w : (c+1)*g.h*g.w]
		for i := 0; i < g.kh; i++ {
			ys := i*g.dh - g.ph
			oyLo, oyHi := validRange(ys, g.sh, g.h, g.oh)
			for j := 0; j < g.kw; j++ {
				dst := col[row*ld : row*ld+g.p]
				row++
				xs := j*g.dw - g.pw
				lo, hi := validRange(xs, g.sw, g.w, g.ow)
				clear(dst[:oyLo*g.ow])
				clear(dst[oyHi*g.ow:])
				for oy := oyLo; oy < oyHi; oy++ {
					y := oy*g.sh + ys
					d := dst[oy*g.ow : (oy+1)*g.ow]
					xr := xc[y*g.w : (y+1)*g.w]
					clear(d[:lo])
					clear(d[hi:])
					if g.sw == 1 {
						copy(d[lo:hi], xr[xs+lo:xs+hi])
						continue
					}
					for ox := lo; ox < hi; ox++ {
						d[ox] = xr[xs+ox*g.sw]
					}
				}
			}
		}
	}
}

// col2imGo writes the adjoint of im2colGo: the columns of cnt images
// summed back into their groups at dx[i·imgStride:], which are overwritten.
func col2imGo(g *convGeom, dx []float32, imgStride, cnt int, col []float32) {
	for i := 0; i < cnt; i++ {
		col2imImage(g, dx[i*imgStride:][:g.cg*g.h*g.w], col[i*g.p:], cnt*g.p)
	}
}

// col2imImage writes the adjoint of im2colImage: the columns (row r at
// col[r·ld]) summed back into dxg [cg, h, w], which is overwritten.
func col2imImage(g *convGeom, dxg, col []float32, ld int) {
	clear(dxg)
	row := 0
	for c := 0; c < g.cg; c++ {
		dc := dxg[c*g.h*g.w : (c+1)*g.h*g.w]
		for i := 0; i < g.kh; i++ {
			ys := i*g.dh - g.ph
			oyLo, oyHi := validRange(ys, g.sh, g.h, g.oh)
			for j := 0; j < g.kw; j++ {
				src := col[row*ld : row*ld+g.p]
				row++
				xs := j*g.dw - g.pw
				lo, hi := validRange(xs, g.sw, g.w, g.ow)
				for oy := oyLo; oy < oyHi; oy++ {
					y := oy*g.sh + ys
					dr := dc[y*g.w : (y+1)*g.w]
					s := src[oy*g.ow : (oy+1)*g.ow]
					if g.sw == 1 {
						d, v := dr[xs+lo:xs+hi], s[lo:hi]
						for k := range v {
							d[k] += v[k]
						}
						continue
					}
					for ox := lo; ox < hi; ox++ {
						dr[xs+ox*g.sw] += s[ox]
					}
				}
			}
		}
	}
}

// depthwiseForward convolves one channel xc [h, w] with its filter wc [kh, kw].
func depthwiseForward(g *convGeom, out, xc, wc []float32) {
	for oy := 0; oy < g.oh; oy++ {
		o := out[oy*g.ow : (oy+1)*g.ow]
		clear(o)
		for i := 0; i < g.kh; i++ {
			y := oy*g.sh - g.ph + i*g.dh
			if y < 0 || y >= g.h {
				continue
			}
			xr := xc[y*g.w : (y+1)*g.w]
			for j := 0; j < g.kw; j++ {
				wv := wc[i*g.kw+j]
				xs := j*g.dw - g.pw
				lo, hi := validRange(xs, g.sw, g.w, g.ow)
				for ox := lo; ox < hi; ox++ {
					o[ox] += wv * xr[xs+ox*g.sw]
				}
			}
		}
	}
}

// depthwiseBackwardData adds the input gradient of one channel into dx.
func depthwiseBackwardData(g *convGeom, dx, gr, wc []float32) {
	for oy := 0; oy < g.oh; oy++ {
		gro := gr[oy*g.ow : (oy+1)*g.ow]
		for i := 0; i < g.kh; i++ {
			y := oy*g.sh - g.ph + i*g.dh
			if y < 0 || y >= g.h {
				continue
			}
			dr := dx[y*g.w : (y+1)*g.w]
			for j := 0; j < g.kw; j++ {
				wv := wc[i*g.kw+j]
				xs := j*g.dw - g.pw
				lo, hi := validRange(xs, g.sw, g.w, g.ow)
				for ox := lo; ox < hi; ox++ {
					dr[xs+ox*g.sw] += wv * gro[ox]
				}
			}
		}
	}
}

// depthwiseBackwardFilter adds one image's filter gradient of one channel into dw.
func depthwiseBackwardFilter(g *convGeom, dw, gr, xc []float32) {
	for oy := 0; oy < g.oh; oy++ {
		gro := gr[oy*g.ow : (oy+1)*g.ow]
		for i := 0; i < g.kh; i++ {
			y := oy*g.sh - g.ph + i*g.dh
			if y < 0 || y >= g.h {
				continue
			}
			xr := xc[y*g.w : (y+1)*g.w]
			for j := 0; j < g.kw; j++ {
				xs := j*g.dw - g.pw
				lo, hi := validRange(xs, g.sw, g.w, g.ow)
				var s float32
				for ox := lo; ox < hi; ox++ {
					s += xr[xs+ox*g.sw] * gro[ox]
				}
				dw[i*g.kw+j] += s
			}
		}
	}
}

// validRange returns the output columns [lo, hi) whose input column
// xs + ox*stride lies inside [0, w).
func validRange(xs, stride, w, ow int) (lo, hi int) {
	lo = 0
	if xs < 0 {
		lo = (-xs + stride - 1) / stride
	}
	hi = ow
	if last := xs + (ow-1)*stride; last >= w {
		hi = (w-1-xs)/stride + 1
		if w-1-xs < 0 {
			hi = 0
		}
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}
