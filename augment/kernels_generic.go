//go:build !cgo || !amd64

package augment

// Without cgo (or off amd64) every kernel is the portable Go version.

const simdKernels = false

func resampleRows(dst, src *Image, rowOff, colOff int, f *axisFilter) {
	resampleRowsGo(dst, src, rowOff, colOff, f)
}

func resampleCols(dst, src *Image, rowOff, colOff int, f *axisFilter, acc []int32) []int32 {
	return resampleColsGo(dst, src, rowOff, colOff, f, acc)
}

func boxBlurCols(dst, src []uint8, nbytes, h int, bw boxWeights, acc []uint32) []uint32 {
	return boxBlurColsGo(dst, src, nbytes, h, bw, acc)
}

func transpose3(dst []uint8, dstride int, src []uint8, sstride, w, h int) {
	transpose3Go(dst, dstride, src, sstride, w, h)
}

// pixelOps is only reached with simdKernels set, which it never is here.
func pixelOps(dst, src *Image, ops []pixelOp, wantLuma bool) uint64 {
	panic("augment: pixelOps without SIMD kernels")
}

func lumaSum(src *Image) uint64 { return lumaSumGo(src) }

// Kernels names the kernel set in use: always "go" in builds without cgo or
// off amd64.
func Kernels() string { return "go" }
