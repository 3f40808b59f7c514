//go:build cgo

package nn

// #cgo CFLAGS: -O3
// #include "kernels.h"
import "C"

import (
	"os"
	"unsafe"
)

// simdKernels reports whether the AVX2/FMA kernels of kernels_amd64.c are in
// use: the CPU has AVX2 and FMA and SSLIGHT_NOSIMD is not set (the escape
// hatch for comparing the paths, shared with package augment). Go does not
// vectorise loops, and these loops are memory-bound passes that a vector
// unit runs several times faster.
var simdKernels = C.nn_has_avx2_fma() != 0 && os.Getenv("SSLIGHT_NOSIMD") == ""

// fp returns a C pointer to s's first element. The wrappers below slice
// every argument to the extent the C code touches first, so a bad call
// panics in Go instead of reading or writing out of bounds in C.
func fp(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

// strided returns the part of s that n blocks of sp values, block b at
// off + b·stride, cover.
func strided(s []float32, off, n, stride, sp int) []float32 {
	return s[off : off+(n-1)*stride+sp]
}

func (g *convGeom) cgeom() C.nn_conv {
	return C.nn_conv{cg: C.int32_t(g.cg), h: C.int32_t(g.h), w: C.int32_t(g.w), kh: C.int32_t(g.kh), kw: C.int32_t(g.kw),
		oh: C.int32_t(g.oh), ow: C.int32_t(g.ow), sh: C.int32_t(g.sh), sw: C.int32_t(g.sw),
		ph: C.int32_t(g.ph), pw: C.int32_t(g.pw), dh: C.int32_t(g.dh), dw: C.int32_t(g.dw)}
}

// im2col unfolds cnt images (image i's group at x[i·imgStride:]) into col
// [cg·kh·kw, cnt·p], as im2colGo.
func im2col(g *convGeom, col, x []float32, imgStride, cnt int) {
	if !simdKernels || cnt == 0 {
		im2colGo(g, col, x, imgStride, cnt)
		return
	}
	col = col[:g.k*cnt*g.p]
	x = strided(x, 0, cnt, imgStride, g.cg*g.h*g.w)
	C.nn_im2col(g.cgeom(), fp(x), C.ptrdiff_t(imgStride), C.int(cnt), fp(col))
}

// col2im overwrites the cnt images' groups with the columns summed back, as
// col2imGo. It may clobber col (the C kernel clears the columns that fall
// on padding); callers pass scratch they no longer need.
func col2im(g *convGeom, dx []float32, imgStride, cnt int, col []float32) {
	if !simdKernels || cnt == 0 {
		col2imGo(g, dx, imgStride, cnt, col)
		return
	}
	col = col[:g.k*cnt*g.p]
	dx = strided(dx, 0, cnt, imgStride, g.cg*g.h*g.w)
	C.nn_col2im(g.cgeom(), fp(dx), C.ptrdiff_t(imgStride), C.int(cnt), fp(col))
}

// copyBlocks copies outer·inner blocks of n floats, as copyBlocksGo.
func copyBlocks(dst []float32, dOuter, dInner int, src []float32, sOuter, sInner, outer, inner, n int) {
	if !simdKernels || outer == 0 || inner == 0 || n == 0 {
		copyBlocksGo(dst, dOuter, dInner, src, sOuter, sInner, outer, inner, n)
		return
	}
	dst = dst[:(outer-1)*dOuter+(inner-1)*dInner+n]
	src = src[:(outer-1)*sOuter+(inner-1)*sInner+n]
	C.nn_copy_blocks(fp(dst), C.ptrdiff_t(dOuter), C.ptrdiff_t(dInner), fp(src), C.ptrdiff_t(sOuter), C.ptrdiff_t(sInner),
		C.int(outer), C.int(inner), C.ptrdiff_t(n))
}

// channelSums returns channel ch's BatchNorm sums, as channelSumsGo.
func channelSums(x, grad, y []float32, act actCode, n, c, sp, ch int) (sx, sxx, sdy, sdyx float64) {
	if !simdKernels || n == 0 || sp == 0 {
		return channelSumsGo(x, grad, y, act, n, c, sp, ch)
	}
	off := ch * sp
	xs := strided(x, off, n, c*sp, sp)
	var gp, yp *C.float
	if grad != nil {
		gp = fp(strided(grad, off, n, c*sp, sp))
		if act != actNone {
			yp = fp(strided(y, off, n, c*sp, sp))
		}
	} else {
		act = actNone
	}
	s := C.nn_bn_sums(fp(xs), gp, yp, C.int(act), C.ptrdiff_t(n), C.ptrdiff_t(c*sp), C.ptrdiff_t(sp))
	return float64(s.sx), float64(s.sxx), float64(s.sdy), float64(s.sdyx)
}

// bnApply writes act(x·scale + shift) into channel ch of out, as bnApplyGo.
func bnApply(out, x []float32, n, c, sp, ch int, scale, shift float32, act actCode) {
	if !simdKernels || n == 0 || sp == 0 {
		bnApplyGo(out, x, n, c, sp, ch, scale, shift, act)
		return
	}
	off := ch * sp
	o, xs := strided(out, off, n, c*sp, sp), strided(x, off, n, c*sp, sp)
	C.nn_bn_apply(fp(o), fp(xs), C.ptrdiff_t(n), C.ptrdiff_t(c*sp), C.ptrdiff_t(sp), C.float(scale), C.float(shift), C.int(act))
}

// bnDx writes channel ch of BatchNorm's input gradient, as bnDxGo.
func bnDx(dx, x, dy, y []float32, act actCode, n, c, sp, ch int, train bool, k *bnCoef) {
	if !simdKernels || n == 0 || sp == 0 {
		bnDxGo(dx, x, dy, y, act, n, c, sp, ch, train, k)
		return
	}
	off := ch * sp
	d, xs, gs := strided(dx, off, n, c*sp, sp), strided(x, off, n, c*sp, sp), strided(dy, off, n, c*sp, sp)
	var yp *C.float
	if act != actNone {
		yp = fp(strided(y, off, n, c*sp, sp))
	}
	coef := C.nn_bn_coef{g: C.double(k[0]), mean: C.double(k[1]), inv: C.double(k[2]), mdy: C.double(k[3]), mdyx: C.double(k[4])}
	C.nn_bn_dx(fp(d), fp(xs), fp(gs), yp, C.int(act), C.ptrdiff_t(n), C.ptrdiff_t(c*sp), C.ptrdiff_t(sp), cBool(train), coef)
}

// actForward writes a(x) into out, as actForwardGo.
func actForward(a actCode, out, x []float32) {
	if !simdKernels || a == actNone || len(x) == 0 {
		actForwardGo(a, out, x)
		return
	}
	out = out[:len(x)]
	C.nn_act_forward(C.int(a), fp(out), fp(x), C.ptrdiff_t(len(x)))
}

// actBackward writes dy where a passes the gradient at x, as actBackwardGo.
func actBackward(a actCode, dx, dy, x []float32) {
	if !simdKernels || a == actNone || len(x) == 0 {
		actBackwardGo(a, dx, dy, x)
		return
	}
	dx, dy = dx[:len(x)], dy[:len(x)]
	C.nn_act_backward(C.int(a), fp(dx), fp(dy), fp(x), C.ptrdiff_t(len(x)))
}

// addVec writes a + b into out, as addGo.
func addVec(out, a, b []float32) {
	if !simdKernels || len(out) == 0 {
		addGo(out, a, b)
		return
	}
	a, b = a[:len(out)], b[:len(out)]
	C.nn_add(fp(out), fp(a), fp(b), C.ptrdiff_t(len(out)))
}

func (k *maxPoolKernel) cgeom(h, w, oh, ow int) C.nn_pool {
	return C.nn_pool{h: C.int32_t(h), w: C.int32_t(w), oh: C.int32_t(oh), ow: C.int32_t(ow),
		k: C.int32_t(k.k), s: C.int32_t(k.s), p: C.int32_t(k.p)}
}

// maxPoolForward pools the planes of x into out, as maxPoolForwardGo. The
// Go loop made max pooling 8-11 % of a resnet18 step: per-element bounds
// checks and a compare branch that random data mispredicts. The C kernel
// clips each window once and, with AVX2, takes 8 windows at a time.
func maxPoolForward(k *maxPoolKernel, out, x []float32, h, w, oh, ow int) {
	planes := len(x) / (h * w)
	if planes == 0 {
		return
	}
	x, out = x[:planes*h*w], out[:planes*oh*ow]
	C.nn_maxpool_forward(k.cgeom(h, w, oh, ow), fp(x), fp(out), C.ptrdiff_t(planes), cBool(simdKernels))
}

// maxPoolBackward adds dy to dx at each window's arg-max, as
// maxPoolBackwardGo.
func maxPoolBackward(k *maxPoolKernel, dx, dy, x []float32, h, w, oh, ow int) {
	planes := len(x) / (h * w)
	if planes == 0 {
		return
	}
	x, dx, dy = x[:planes*h*w], dx[:planes*h*w], dy[:planes*oh*ow]
	C.nn_maxpool_backward(k.cgeom(h, w, oh, ow), fp(x), fp(dy), fp(dx), C.ptrdiff_t(planes), cBool(simdKernels))
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// winogradKernels says whether 3x3 stride-1 convolutions run as Winograd's
// F(2x2, 3x3) (winograd.go); SSLIGHT_NOWINOGRAD=1 turns it off, to compare.
var winogradKernels = os.Getenv("SSLIGHT_NOWINOGRAD") == ""

// winoInput writes V [16][c][cnt·tiles] of cnt images (image i's c planes
// at x[i·imgStride:]), as nn_wino_input.
func winoInput(v, x []float32, imgStride, cnt, c, h, w int) {
	t := cnt * ((h + 1) / 2) * ((w + 1) / 2)
	v = v[:16*c*t]
	x = strided(x, 0, cnt, imgStride, c*h*w)
	C.nn_wino_input(fp(x), C.ptrdiff_t(imgStride), C.int(cnt), C.int(c), C.int(h), C.int(w), fp(v), cBool(simdKernels))
}

// winoOutput writes the outputs of M [16][o][cnt·tiles] into cnt images
// (image i's o planes at out[i·imgStride:]), as nn_wino_output.
func winoOutput(out, m []float32, imgStride, cnt, o, h, w int) {
	t := cnt * ((h + 1) / 2) * ((w + 1) / 2)
	m = m[:16*o*t]
	out = strided(out, 0, cnt, imgStride, o*h*w)
	C.nn_wino_output(fp(m), C.int(cnt), C.int(o), C.int(h), C.int(w), fp(out), C.ptrdiff_t(imgStride), cBool(simdKernels))
}

// winoGradOutput writes dM [16][o][cnt·tiles] of the output gradients of
// cnt images (image i's o planes at dy[i·imgStride:]), as
// nn_wino_grad_output.
func winoGradOutput(dm, dy []float32, imgStride, cnt, o, h, w int) {
	t := cnt * ((h + 1) / 2) * ((w + 1) / 2)
	dm = dm[:16*o*t]
	dy = strided(dy, 0, cnt, imgStride, o*h*w)
	C.nn_wino_grad_output(fp(dy), C.ptrdiff_t(imgStride), C.int(cnt), C.int(o), C.int(h), C.int(w), fp(dm), cBool(simdKernels))
}

// Kernels names the kernel set in use: "avx2" (cgo build on a CPU with
// AVX2 and FMA) or "go" (portable).
func Kernels() string {
	if simdKernels {
		return "avx2"
	}
	return "go"
}
