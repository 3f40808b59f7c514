//go:build cgo

package augment

// #cgo CFLAGS: -O3
// #include <stdint.h>
// #include <stddef.h>
// int sslight_has_avx2(void);
// void sslight_resample_rows_avx2(const uint8_t *src, ptrdiff_t sstride, ptrdiff_t src_len,
//		uint8_t *dst, ptrdiff_t dstride, int rows, int outw,
//		const int32_t *start, const int32_t *count, const int32_t *w, int ksize,
//		const int32_t *wq, int groups);
// void sslight_resample_cols_avx2(const uint8_t *src, ptrdiff_t sstride, uint8_t *dst, ptrdiff_t dstride,
//		int outh, int nbytes, const int32_t *start, const int32_t *count, const int32_t *w, int ksize);
// void sslight_box_cols_avx2(uint8_t *dst, const uint8_t *src, int nbytes, int h, int r,
//		uint32_t ww, uint32_t fw, uint32_t *acc);
// typedef struct { int32_t kind; int32_t arg; float alpha; int32_t pad; } pixel_op;
// typedef struct { pixel_op op[8]; int32_t n; } pixel_ops;
// uint64_t sslight_pixel_ops_avx2(uint8_t *dst, ptrdiff_t dstride, const uint8_t *src, ptrdiff_t sstride,
//		int w8, int h, pixel_ops list, int want_luma);
// void sslight_transpose3(uint8_t *dst, ptrdiff_t dstride, const uint8_t *src, ptrdiff_t sstride, int w, int h);
import "C"

import (
	"os"
	"unsafe"
)

// simdKernels reports whether the AVX2 kernels are in use: the CPU has AVX2
// and SSLIGHT_NOSIMD is not set (the escape hatch for comparing the paths).
var simdKernels = C.sslight_has_avx2() != 0 && os.Getenv("SSLIGHT_NOSIMD") == ""

func u8p(s []uint8) *C.uint8_t    { return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(s))) }
func i32p(s []int32) *C.int32_t   { return (*C.int32_t)(unsafe.Pointer(unsafe.SliceData(s))) }
func u32p(s []uint32) *C.uint32_t { return (*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(s))) }

func resampleRows(dst, src *Image, rowOff, colOff int, f *axisFilter) {
	if !simdKernels || dst.W == 0 || dst.H == 0 || f.ksize > maxSIMDTaps {
		resampleRowsGo(dst, src, rowOff, colOff, f)
		return
	}
	resampleRowsSIMD(dst, src, rowOff, colOff, f)
}

// resampleRowsSIMD is the AVX2 horizontal pass (callers check simdKernels).
func resampleRowsSIMD(dst, src *Image, rowOff, colOff int, f *axisFilter) {
	groups := f.quadWeights()
	base := src.Pix[(rowOff)*src.Stride+3*colOff:]
	C.sslight_resample_rows_avx2(u8p(base), C.ptrdiff_t(src.Stride), C.ptrdiff_t(len(base)),
		u8p(dst.Pix), C.ptrdiff_t(dst.Stride), C.int(dst.H), C.int(dst.W),
		i32p(f.start), i32p(f.count), i32p(f.w), C.int(f.ksize), i32p(f.wpair), C.int(groups))
}

func resampleCols(dst, src *Image, rowOff, colOff int, f *axisFilter, acc []int32) []int32 {
	if !simdKernels || dst.W == 0 || dst.H == 0 {
		return resampleColsGo(dst, src, rowOff, colOff, f, acc)
	}
	resampleColsSIMD(dst, src, rowOff, colOff, f)
	return acc
}

// resampleColsSIMD is the AVX2 vertical pass (callers check simdKernels).
func resampleColsSIMD(dst, src *Image, rowOff, colOff int, f *axisFilter) {
	base := src.Pix[rowOff*src.Stride+3*colOff:]
	C.sslight_resample_cols_avx2(u8p(base), C.ptrdiff_t(src.Stride), u8p(dst.Pix), C.ptrdiff_t(dst.Stride),
		C.int(dst.H), C.int(3*dst.W), i32p(f.start), i32p(f.count), i32p(f.w), C.int(f.ksize))
}

func boxBlurCols(dst, src []uint8, nbytes, h int, bw boxWeights, acc []uint32) []uint32 {
	if !simdKernels {
		return boxBlurColsGo(dst, src, nbytes, h, bw, acc)
	}
	if cap(acc) < nbytes {
		acc = make([]uint32, nbytes)
	}
	acc = acc[:nbytes]
	C.sslight_box_cols_avx2(u8p(dst), u8p(src), C.int(nbytes), C.int(h), C.int(bw.r), C.uint32_t(bw.ww), C.uint32_t(bw.fw), u32p(acc))
	return acc
}

func transpose3(dst []uint8, dstride int, src []uint8, sstride, w, h int) {
	if !simdKernels {
		transpose3Go(dst, dstride, src, sstride, w, h)
		return
	}
	C.sslight_transpose3(u8p(dst), C.ptrdiff_t(dstride), u8p(src), C.ptrdiff_t(sstride), C.int(w), C.int(h))
}

// maxPixelOps is the length of the C operation list (pixel_ops.op).
const maxPixelOps = 8

// pixelOps applies ops to every pixel of src into dst (same size; dst may be
// src) with the AVX2 kernel, the last w mod 8 pixels of each row in Go, and
// returns the sum of L over the result when wantLuma is set.
func pixelOps(dst, src *Image, ops []pixelOp, wantLuma bool) uint64 {
	for len(ops) > maxPixelOps {
		pixelOps(dst, src, ops[:maxPixelOps], false)
		src, ops = dst, ops[maxPixelOps:]
	}
	w8 := src.W &^ 7
	var total uint64
	if w8 > 0 && src.H > 0 {
		var list C.pixel_ops
		for i := range ops {
			list.op[i] = C.pixel_op{kind: C.int32_t(ops[i].kind), arg: C.int32_t(ops[i].arg), alpha: C.float(ops[i].alpha)}
		}
		list.n = C.int32_t(len(ops))
		want := C.int(0)
		if wantLuma {
			want = 1
		}
		total = uint64(C.sslight_pixel_ops_avx2(u8p(dst.Pix), C.ptrdiff_t(dst.Stride), u8p(src.Pix), C.ptrdiff_t(src.Stride),
			C.int(w8), C.int(src.H), list, want))
	}
	if w8 < src.W {
		total += pixelOpsTailGo(dst, src, w8, ops)
	}
	return total
}

// lumaSum is the sum of PIL's L over src.
func lumaSum(src *Image) uint64 {
	if !simdKernels || src.W < 8 {
		return lumaSumGo(src)
	}
	w8 := src.W &^ 7
	var none C.pixel_ops
	total := uint64(C.sslight_pixel_ops_avx2(nil, 0, u8p(src.Pix), C.ptrdiff_t(src.Stride), C.int(w8), C.int(src.H), none, 1))
	for y := 0; y < src.H; y++ {
		s := src.Row(y)[3*w8:]
		for i := 0; i+2 < len(s); i += 3 {
			total += uint64(luma(s[i], s[i+1], s[i+2]))
		}
	}
	return total
}

// Kernels names the kernel set in use: "avx2" (cgo build on an AVX2 CPU) or
// "go" (portable).
func Kernels() string {
	if simdKernels {
		return "avx2"
	}
	return "go"
}
