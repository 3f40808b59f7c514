//go:build cgo && amd64

package nn

import (
	"gonum.org/v1/gonum/blas"
	"gorgonia.org/gorgonia"
)

// Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016) computes a
// 3x3 stride-1 convolution from 4x4 input tiles: each tile and filter is
// transformed (V = Bᵀ·d·B, U = G·g·Gᵀ), the 16 transformed positions are 16
// independent GEMMs over the channels, and Y = Aᵀ·M·A gives 2x2 outputs.
// 16 multiplies per 4 outputs instead of 36: the GEMM work of resnet's
// 3x3 convolutions drops 2.25-fold, for transforms that are a few additions
// per value. The input gradient of such a convolution is one too (filters
// rotated by 180°, channels swapped), so it runs the same way; the filter
// gradient is 16 GEMMs in the transformed domain, dU = dM·Vᵀ with
// dM = A·dY·Aᵀ per tile, brought back by dW = Gᵀ·dU·G.

// winograd reports a convolution that runs as F(2x2, 3x3): 3x3, stride 1,
// padding 1, no dilation, one group, maps of at least 4x4 (smaller ones are
// mostly padding tiles).
func (g *convGeom) winograd() bool {
	return winogradKernels && g.g == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 &&
		g.dh == 1 && g.dw == 1 && g.ph == 1 && g.pw == 1 && g.h >= 4 && g.w >= 4
}

// winogradWeights returns U [16][o][c] = G·f·Gᵀ for every filter f = w[o][c]
// of w [o, c, 3, 3]; transposed, U [16][c][o] from the filters rotated by
// 180°, which the input gradient convolves with. The slice comes from the
// scratch pool.
func winogradWeights(w []float32, o, c int, transposed bool) []float32 {
	u := getScratch(16 * o * c)
	plane := o * c
	parallelFor(o, func(_, lo, hi int) { winogradFilters(u, w, plane, lo, hi, c, o, transposed) })
	return u
}

// winogradFilters transforms the filters of output channels [lo, hi).
func winogradFilters(u, w []float32, plane, lo, hi, c, o int, transposed bool) {
	for oi := lo; oi < hi; oi++ {
		for ci := range c {
			f := w[(oi*c+ci)*9:][:9]
			var k [9]float32
			idx := oi*c + ci
			if transposed {
				for j := range 9 {
					k[j] = f[8-j]
				}
				idx = ci*o + oi
			} else {
				copy(k[:], f)
			}
			// G·f: 4 rows of 3.
			var t [12]float32
			for j := range 3 {
				f0, f1, f2 := k[j], k[3+j], k[6+j]
				t[j], t[3+j], t[6+j], t[9+j] = f0, 0.5*(f0+f1+f2), 0.5*(f0-f1+f2), f2
			}
			// (G·f)·Gᵀ.
			for r := range 4 {
				a0, a1, a2 := t[3*r], t[3*r+1], t[3*r+2]
				u[(4*r+0)*plane+idx] = a0
				u[(4*r+1)*plane+idx] = 0.5 * (a0 + a1 + a2)
				u[(4*r+2)*plane+idx] = 0.5 * (a0 - a1 + a2)
				u[(4*r+3)*plane+idx] = a2
			}
		}
	}
}

// winogradTiles is the fewest tiles one chunk's GEMMs should cover: half
// of im2col's gemmColumns, as the 16 transformed copies of a chunk (V, M)
// then stay in cache (measured on resnet18's 12x12 and 24x24 maps, batch
// 64: 10-25 % faster than 512; no change on 56x56, one image per chunk).
const winogradTiles = 256

// winogradChunks returns the tiles per image of an h x w map, how many
// chunks a batch of n images splits into (winogradTiles taking the place of
// gemmColumns), and the most images one chunk holds.
func winogradChunks(n, h, w int) (tiles, chunks, nb int) {
	tiles = ((h + 1) / 2) * ((w + 1) / 2)
	chunks = splitBatch(n, tiles*gemmColumns/winogradTiles)
	return tiles, chunks, (n + chunks - 1) / chunks
}

// winogradConv writes out [n, cout, h, w], the 3x3 stride-1 pad-1
// convolution of in [n, cin, h, w] with the transformed filters u
// [16][cout][cin]. Images are split into chunks as convolutions split them,
// with winogradTiles tiles taking the place of gemmColumns columns.
func winogradConv(out, in, u []float32, n, cin, cout, h, w int) {
	tiles, chunks, nb := winogradChunks(n, h, w)
	bl := gorgonia.WhichBLAS()
	parallelFor(chunks, func(_, lo, hi int) {
		v, m := getScratch(16*cin*nb*tiles), getScratch(16*cout*nb*tiles)
		defer putScratch(v)
		defer putScratch(m)
		for ch := lo; ch < hi; ch++ {
			n0, cnt := batchRange(n, ch, chunks)
			t := cnt * tiles
			winoInput(v, in[n0*cin*h*w:], cin*h*w, cnt, cin, h, w)
			for xi := range 16 {
				bl.Sgemm(blas.NoTrans, blas.NoTrans, cout, t, cin, 1, u[xi*cout*cin:], cin, v[xi*cin*t:], t, 0, m[xi*cout*t:], t)
			}
			winoOutput(out[n0*cout*h*w:], m, cout*h*w, cnt, cout, h, w)
		}
	})
}

// winogradFilterGrad writes dw [cout, cin, 3, 3], the filter gradient of
// the convolution of in [n, cin, h, w] whose output gradient is dy
// [n, cout, h, w]. Each worker accumulates its chunks' dU [16][cout][cin]
// on its own; the sums are added in worker order (deterministic for a given
// GOMAXPROCS, as the im2col path).
func winogradFilterGrad(dw, in, dy []float32, n, cin, cout, h, w int) {
	tiles, chunks, nb := winogradChunks(n, h, w)
	bl := gorgonia.WhichBLAS()
	acc := make([][]float32, numWorkers(chunks))
	parallelFor(chunks, func(wk, lo, hi int) {
		v, m := getScratch(16*cin*nb*tiles), getScratch(16*cout*nb*tiles)
		defer putScratch(v)
		defer putScratch(m)
		du := getScratch(16 * cout * cin)
		clear(du)
		acc[wk] = du
		for ch := lo; ch < hi; ch++ {
			n0, cnt := batchRange(n, ch, chunks)
			t := cnt * tiles
			winoInput(v, in[n0*cin*h*w:], cin*h*w, cnt, cin, h, w)
			winoGradOutput(m, dy[n0*cout*h*w:], cout*h*w, cnt, cout, h, w)
			for xi := range 16 {
				bl.Sgemm(blas.NoTrans, blas.Trans, cout, cin, t, 1, m[xi*cout*t:], t, v[xi*cin*t:], t, 1, du[xi*cout*cin:], cin)
			}
		}
	})
	du := acc[0]
	for _, a := range acc[1:] {
		for i, x := range a {
			du[i] += x
		}
		putScratch(a)
	}
	plane := cout * cin
	parallelFor(cout, func(_, lo, hi int) {
		for f := lo * cin; f < hi*cin; f++ {
			// Gᵀ·dU: 3 rows of 4, then ·G: 3x3.
			var t [12]float32
			for j := range 4 {
				u0, u1, u2, u3 := du[(0+j)*plane+f], du[(4+j)*plane+f], du[(8+j)*plane+f], du[(12+j)*plane+f]
				t[j], t[4+j], t[8+j] = u0+0.5*(u1+u2), 0.5*(u1-u2), 0.5*(u1+u2)+u3
			}
			d := dw[f*9:][:9]
			for r := range 3 {
				p0, p1, p2, p3 := t[4*r], t[4*r+1], t[4*r+2], t[4*r+3]
				d[3*r], d[3*r+1], d[3*r+2] = p0+0.5*(p1+p2), 0.5*(p1-p2), 0.5*(p1+p2)+p3
			}
		}
	})
	putScratch(du)
}
