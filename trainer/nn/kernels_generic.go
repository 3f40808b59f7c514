//go:build !cgo || !amd64

package nn

// Without cgo (or off amd64) every kernel is the portable Go version.

func im2col(g *convGeom, col, x []float32, imgStride, cnt int) { im2colGo(g, col, x, imgStride, cnt) }

func col2im(g *convGeom, dx []float32, imgStride, cnt int, col []float32) {
	col2imGo(g, dx, imgStride, cnt, col)
}

func copyBlocks(dst []float32, dOuter, dInner int, src []float32, sOuter, sInner, outer, inner, n int) {
	copyBlocksGo(dst, dOuter, dInner, src, sOuter, sInner, outer, inner, n)
}

func channelSums(x, grad, y []float32, act actCode, n, c, sp, ch int) (sx, sxx, sdy, sdyx float64) {
	return channelSumsGo(x, grad, y, act, n, c, sp, ch)
}

func bnApply(out, x []float32, n, c, sp, ch int, scale, shift float32, act actCode) {
	bnApplyGo(out, x, n, c, sp, ch, scale, shift, act)
}

func bnDx(dx, x, dy, y []float32, act actCode, n, c, sp, ch int, train bool, k *bnCoef) {
	bnDxGo(dx, x, dy, y, act, n, c, sp, ch, train, k)
}

func actForward(a actCode, out, x []float32) { actForwardGo(a, out, x) }

func actBackward(a actCode, dx, dy, x []float32) { actBackwardGo(a, dx, dy, x) }

func addVec(out, a, b []float32) { addGo(out, a, b) }

func maxPoolForward(k *maxPoolKernel, out, x []float32, h, w, oh, ow int) {
	maxPoolForwardGo(k, out, x, h, w, oh, ow)
}

func maxPoolBackward(k *maxPoolKernel, dx, dy, x []float32, h, w, oh, ow int) {
	maxPoolBackwardGo(k, dx, dy, x, h, w, oh, ow)
}

// Without cgo no convolution runs as Winograd (winograd.go is C-backed):
// the predicate is false and the drivers are never called.
func (g *convGeom) winograd() bool { return false }

func winogradWeights(w []float32, o, c int, transposed bool) []float32 {
	panic("nn: Winograd convolutions need cgo")
}

func winogradConv(out, in, u []float32, n, cin, cout, h, w int) {
	panic("nn: Winograd convolutions need cgo")
}

func winogradFilterGrad(dw, in, dy []float32, n, cin, cout, h, w int) {
	panic("nn: Winograd convolutions need cgo")
}

// Kernels names the kernel set in use: always "go" in builds without cgo or
// off amd64.
func Kernels() string { return "go" }
