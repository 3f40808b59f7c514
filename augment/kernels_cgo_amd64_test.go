//go:build cgo

package augment

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// The SIMD kernels must produce exactly the bytes of the portable Go kernels
// (which the golden and PIL cross-check tests pin to PIL). These tests run
// both on random data, shapes and filters, including right-edge columns
// whose 8-byte SIMD reads would leave the buffer.

func randImage(rng *rand.Rand, w, h, pad int) *Image {
	img := &Image{W: w, H: h, Stride: 3*w + pad}
	img.Pix = make([]uint8, (h-1)*img.Stride+3*w)
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	return img
}

func requireSIMD(t *testing.T) {
	t.Helper()
	if !simdKernels {
		t.Skip("AVX2 kernels not in use on this machine (or SSLIGHT_NOSIMD set)")
	}
}

func TestSIMDResampleMatchesGo(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for it := 0; it < 400; it++ {
		inW, inH := 1+rng.IntN(300), 1+rng.IntN(60)
		outW, outH := 1+rng.IntN(260), 1+rng.IntN(60)
		pad := rng.IntN(3) * 5
		src := randImage(rng, inW, inH, pad)
		mirror := rng.IntN(2) == 0
		var hf, vf axisFilter
		hf.prepare(inW, outW, mirror)
		vf.prepare(inH, outH, false)

		a, b := NewImage(outW, inH), NewImage(outW, inH)
		resampleRowsGo(a, src, 0, 0, &hf)
		resampleRowsSIMD(b, src, 0, 0, &hf)
		if !bytes.Equal(a.Pix, b.Pix) {
			t.Fatalf("rows %dx%d -> %d (mirror %v): SIMD differs from Go", inW, inH, outW, mirror)
		}
		c, d := NewImage(inW, outH), NewImage(inW, outH)
		resampleColsGo(c, src, 0, 0, &vf, nil)
		resampleColsSIMD(d, src, 0, 0, &vf)
		if !bytes.Equal(c.Pix, d.Pix) {
			t.Fatalf("cols %dx%d -> %d: SIMD differs from Go", inW, inH, outH)
		}
	}
	// Extreme weights: a 1-pixel source stretched (single huge taps) and a
	// large shrink (many small taps).
	for _, c := range []struct{ in, out int }{{1, 300}, {2, 257}, {600, 7}, {1000, 1}} {
		src := randImage(rng, c.in, 3, 0)
		var hf axisFilter
		hf.prepare(c.in, c.out, false)
		a, b := NewImage(c.out, 3), NewImage(c.out, 3)
		resampleRowsGo(a, src, 0, 0, &hf)
		resampleRowsSIMD(b, src, 0, 0, &hf)
		if !bytes.Equal(a.Pix, b.Pix) {
			t.Fatalf("rows %d -> %d: SIMD differs from Go", c.in, c.out)
		}
	}
}

func TestSIMDBlurMatchesGo(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for it := 0; it < 300; it++ {
		nbytes, h := 1+rng.IntN(200), 1+rng.IntN(50)
		src := make([]uint8, nbytes*h)
		for i := range src {
			src[i] = uint8(rng.IntN(256))
		}
		bw := newBoxWeights(GaussianBoxRadius(float32(rng.Float64() * 8)))
		a, b := make([]uint8, len(src)), make([]uint8, len(src))
		boxBlurColsGo(a, src, nbytes, h, bw, nil)
		boxBlurCols(b, src, nbytes, h, bw, nil)
		if !bytes.Equal(a, b) {
			t.Fatalf("box cols %dx%d r=%d: SIMD differs from Go", nbytes, h, bw.r)
		}
		w := 1 + rng.IntN(70)
		hh := 1 + rng.IntN(70)
		img := randImage(rng, w, hh, rng.IntN(2)*3)
		ta, tb := make([]uint8, 3*w*hh), make([]uint8, 3*w*hh)
		transpose3Go(ta, 3*hh, img.Pix, img.Stride, w, hh)
		transpose3(tb, 3*hh, img.Pix, img.Stride, w, hh)
		if !bytes.Equal(ta, tb) {
			t.Fatalf("transpose %dx%d: C differs from Go", w, hh)
		}
	}
}

// TestSIMDHueExhaustive runs every 24-bit colour through the AVX2 hue
// operation and the Go one for a set of shifts, including 0 and both ends.
func TestSIMDHueExhaustive(t *testing.T) {
	requireSIMD(t)
	if testing.Short() {
		t.Skip("exhaustive hue comparison skipped in -short mode")
	}
	src := NewImage(4096, 4096)
	for v := 0; v < 1<<24; v++ {
		src.Pix[3*v], src.Pix[3*v+1], src.Pix[3*v+2] = uint8(v>>16), uint8(v>>8), uint8(v)
	}
	a, b := NewImage(4096, 4096), NewImage(4096, 4096)
	for _, shift := range []uint8{0, 25, 128, 231} {
		hueImageGo(a, src, shift)
		pixelOps(b, src, []pixelOp{{kind: opHue, arg: int32(shift)}}, false)
		if !bytes.Equal(a.Pix, b.Pix) {
			for i := range a.Pix {
				if a.Pix[i] != b.Pix[i] {
					v := i / 3
					t.Fatalf("shift %d: rgb (%d,%d,%d) channel %d: SIMD %d, Go %d", shift, v>>16&255, v>>8&255, v&255, i%3, b.Pix[i], a.Pix[i])
				}
			}
		}
	}
}

// TestSIMDPixelOpsMatchGo runs random operation lists (every kind, extreme
// factors, in place and not, odd widths with their Go tails, padded strides)
// through the fused AVX2 kernel and through the per-operation Go passes.
func TestSIMDPixelOpsMatchGo(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(7, 8))
	factor := func() float32 {
		return []float32{0, 1, 0.5, 1e9, float32(rng.Float64() * 3), float32(rng.Float64())}[rng.IntN(6)]
	}
	for it := 0; it < 2000; it++ {
		img := randImage(rng, 1+rng.IntN(70), 1+rng.IntN(9), rng.IntN(2)*5)
		ops := make([]pixelOp, rng.IntN(7))
		for i := range ops {
			k := int32(rng.IntN(6))
			ops[i] = pixelOp{kind: k, alpha: factor(), arg: int32(rng.IntN(256))}
			if k == opSolarize {
				ops[i].arg = int32(rng.IntN(257))
			}
		}
		want := &Image{}
		wantSum := runPixelOpsGo(want, img, ops, true)
		got := &Image{}
		inPlace := rng.IntN(2) == 0
		var gotSum uint64
		if inPlace {
			copyImage(got, img)
			gotSum = pixelOps(got, got, ops, true)
		} else {
			got.Reset(img.W, img.H)
			gotSum = pixelOps(got, img, ops, true)
		}
		if !equalImages(want, got) || wantSum != gotSum {
			t.Fatalf("%dx%d ops %+v in place %v: SIMD differs from Go (luma %d vs %d)", img.W, img.H, ops, inPlace, gotSum, wantSum)
		}
		if s := lumaSum(img); s != lumaSumGo(img) {
			t.Fatalf("lumaSum %d, Go %d", s, lumaSumGo(img))
		}
	}
}
