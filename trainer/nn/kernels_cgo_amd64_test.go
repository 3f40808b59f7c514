//go:build cgo

package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// The AVX2/FMA kernels must compute what their Go twins compute: exactly
// for the copies, activations, Add and col2im (same additions in the same
// order), to float32 rounding for the FMA and float64 paths. Each test runs
// both on odd sizes (lengths not multiples of 8, maps down to 1x1, stride 2,
// padding, dilation) and checks that the C code writes nothing past the
// slices it was given.

func requireSIMD(t *testing.T) {
	t.Helper()
	if !simdKernels {
		t.Skip("AVX2/FMA kernels not in use on this machine (or SSLIGHT_NOSIMD set)")
	}
}

const guard = 7 // sentinel floats after every output slice

// guarded returns n random floats followed by guard sentinels, and the n.
func guarded(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n+guard)
	for i := range s {
		s[i] = rng.Float32()*4 - 2
	}
	for i := n; i < len(s); i++ {
		s[i] = 12345
	}
	return s[:n]
}

// checkGuard fails if the sentinels after s changed.
func checkGuard(t *testing.T, what string, s []float32) {
	t.Helper()
	for _, v := range s[len(s) : len(s)+guard] {
		if v != 12345 {
			t.Fatalf("%s: wrote past the end", what)
		}
	}
}

func randFloats(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = rng.Float32()*4 - 2
	}
	return s
}

// equalF32 compares exactly, treating -0 as +0 and NaN as equal to NaN.
func equalF32(a, b float32) bool {
	return a == b || (a != a && b != b)
}

func TestSIMDIm2colCol2imMatchGo(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(1, 2))
	type geo struct{ cg, h, w, k, s, pad, d int }
	var cases []geo
	// Hand-picked: the flat stride-1 geometries, tiny maps 1x1..4x4, stride 2.
	for _, hw := range []int{1, 2, 3, 4, 7, 9, 28} {
		cases = append(cases, geo{3, hw, hw, 3, 1, 1, 1}, geo{2, hw, hw, 3, 2, 1, 1}, geo{2, hw, hw, 1, 2, 0, 1}, geo{2, hw, hw, 1, 1, 0, 1})
	}
	cases = append(cases, geo{2, 9, 9, 5, 1, 2, 1}, geo{2, 9, 9, 3, 1, 2, 2}, geo{1, 11, 13, 7, 2, 3, 1})
	// Random geometries.
	for len(cases) < 200 {
		g := geo{1 + rng.IntN(4), 1 + rng.IntN(10), 1 + rng.IntN(10), 1 + rng.IntN(4), 1 + rng.IntN(3), rng.IntN(3), 1 + rng.IntN(2)}
		if (g.h+2*g.pad-g.d*(g.k-1)) >= 1 && (g.w+2*g.pad-g.d*(g.k-1)) >= 1 {
			cases = append(cases, g)
		}
	}
	for _, c := range cases {
		k := &convKernel{p: ConvParams{Stride: [2]int{c.s, c.s}, Padding: [2]int{c.pad, c.pad}, Dilation: [2]int{c.d, c.d}}.withDefaults()}
		for _, cnt := range []int{1, 3} {
			extra := rng.IntN(2) // images hold an extra channel: a group's stride exceeds its size
			n := cnt
			g, err := k.geom([]tensor.Shape{{n, c.cg + extra, c.h, c.w}, {2, c.cg + extra, c.k, c.k}})
			if err != nil {
				t.Fatal(err)
			}
			g.cg = c.cg // unfold the first cg channels, as one group would
			g.k = g.cg * g.kh * g.kw
			name := fmt.Sprintf("%+v cnt %d", c, cnt)
			imgStride := g.c * g.h * g.w
			x := randFloats(rng, n*imgStride)

			want := make([]float32, g.k*cnt*g.p)
			im2colGo(&g, want, x, imgStride, cnt)
			got := guarded(rng, g.k*cnt*g.p)
			im2col(&g, got, x, imgStride, cnt)
			checkGuard(t, name+" im2col", got)
			for i := range want {
				if !equalF32(got[i], want[i]) {
					t.Fatalf("%s: im2col[%d] = %v, Go %v", name, i, got[i], want[i])
				}
			}

			col := randFloats(rng, g.k*cnt*g.p)
			colC := append([]float32(nil), col...)
			wantDx := randFloats(rng, n*imgStride)
			gotDx := guarded(rng, n*imgStride)
			copy(gotDx, wantDx) // the channels past the group must stay as they were
			col2imGo(&g, wantDx, imgStride, cnt, col)
			col2im(&g, gotDx, imgStride, cnt, colC)
			checkGuard(t, name+" col2im", gotDx)
			for i := range wantDx {
				if !equalF32(gotDx[i], wantDx[i]) {
					t.Fatalf("%s: col2im[%d] = %v, Go %v", name, i, gotDx[i], wantDx[i])
				}
			}
		}
	}
}

func TestSIMDCopyBlocksMatchesGo(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for it := 0; it < 200; it++ {
		outer, inner, n := 1+rng.IntN(5), 1+rng.IntN(5), 1+rng.IntN(19)
		// Scatter layout (dst strided) or gather layout (src strided).
		dO, dI, sO, sI := n, outer*n+rng.IntN(3), inner*n, n
		if it%2 == 1 {
			dO, dI, sO, sI = inner*n, n, n, outer*n+rng.IntN(3)
		}
		dlen := (outer-1)*dO + (inner-1)*dI + n
		src := randFloats(rng, (outer-1)*sO+(inner-1)*sI+n)
		want := randFloats(rng, dlen)
		got := guarded(rng, dlen)
		copy(got, want)
		copyBlocksGo(want, dO, dI, src, sO, sI, outer, inner, n)
		copyBlocks(got, dO, dI, src, sO, sI, outer, inner, n)
		checkGuard(t, "copyBlocks", got)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("case %d: [%d] = %v, Go %v", it, i, got[i], want[i])
			}
		}
	}
}

// bnShapes are (n, c, sp) with spatial sizes around the 8-wide vectors.
var bnShapes = [][3]int{{1, 1, 1}, {2, 3, 1}, {3, 2, 4}, {2, 2, 7}, {2, 3, 8}, {3, 2, 9}, {2, 1, 16}, {4, 3, 49}, {2, 2, 23}, {5, 1, 3}}

func closeF64(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

func TestSIMDBatchNormKernelsMatchGo(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range bnShapes {
		n, c, sp := s[0], s[1], s[2]
		for _, act := range []actCode{actNone, actReLU, actReLU6} {
			x := randFloats(rng, n*c*sp)
			for i := range x {
				x[i] *= 5 // reach past ReLU6's upper bound
			}
			dy := randFloats(rng, n*c*sp)
			y := make([]float32, len(x))
			for i, v := range x {
				y[i] = act.apply(v)
			}
			y[0] = 0 // the kink itself: no gradient
			for ch := 0; ch < c; ch++ {
				name := fmt.Sprintf("n%d c%d sp%d act %v ch %d", n, c, sp, act, ch)
				for _, grad := range [][]float32{nil, dy} {
					a0, a1, a2, a3 := channelSumsGo(x, grad, y, act, n, c, sp, ch)
					b0, b1, b2, b3 := channelSums(x, grad, y, act, n, c, sp, ch)
					if !closeF64(b0, a0, 1e-12) || !closeF64(b1, a1, 1e-12) || !closeF64(b2, a2, 1e-12) || !closeF64(b3, a3, 1e-12) {
						t.Fatalf("%s grad %v: sums %v %v %v %v, Go %v %v %v %v", name, grad != nil, b0, b1, b2, b3, a0, a1, a2, a3)
					}
				}

				scale, shift := rng.Float32()*2-1, rng.Float32()*2-1
				want := make([]float32, len(x))
				got := guarded(rng, len(x))
				copy(want, got)
				bnApplyGo(want, x, n, c, sp, ch, scale, shift, act)
				bnApply(got, x, n, c, sp, ch, scale, shift, act)
				checkGuard(t, name+" apply", got)
				for i := range want {
					// FMA rounds once where Go rounds twice.
					tol := 1e-6 * (math.Abs(float64(x[i]*scale)) + math.Abs(float64(shift)))
					if math.Abs(float64(got[i]-want[i])) > tol {
						t.Fatalf("%s: apply[%d] = %v, Go %v", name, i, got[i], want[i])
					}
				}

				for _, train := range []bool{true, false} {
					k := bnCoef{rng.Float64() + 0.5, rng.Float64() - 0.5, rng.Float64() + 0.5, rng.Float64() - 0.5, rng.Float64() - 0.5}
					want := make([]float32, len(x))
					got := guarded(rng, len(x))
					copy(want, got)
					bnDxGo(want, x, dy, y, act, n, c, sp, ch, train, &k)
					bnDx(got, x, dy, y, act, n, c, sp, ch, train, &k)
					checkGuard(t, name+" dx", got)
					for i := range want {
						if !closeF64(float64(got[i]), float64(want[i]), 1e-6) {
							t.Fatalf("%s train %v: dx[%d] = %v, Go %v", name, train, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

func TestSIMDElementwiseMatchesGo(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(7, 8))
	special := []float32{0, float32(math.Copysign(0, -1)), 6, -6, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 5.999999, 1e-30}
	for _, n := range []int{1, 3, 7, 8, 9, 15, 16, 17, 31, 100} {
		x := randFloats(rng, n)
		for i := range x {
			x[i] *= 5
			if rng.IntN(4) == 0 {
				x[i] = special[rng.IntN(len(special))]
			}
		}
		b, dy := randFloats(rng, n), randFloats(rng, n)
		for _, act := range []actCode{actReLU, actReLU6} {
			want, got := make([]float32, n), guarded(rng, n)
			actForwardGo(act, want, x)
			actForward(act, got, x)
			checkGuard(t, "forward", got)
			wantD, gotD := make([]float32, n), guarded(rng, n)
			actBackwardGo(act, wantD, dy, x)
			actBackward(act, gotD, dy, x)
			checkGuard(t, "backward", gotD)
			for i := range want {
				if !equalF32(got[i], want[i]) || !equalF32(gotD[i], wantD[i]) {
					t.Fatalf("%v n %d: x %v: forward %v backward %v, Go %v %v", act, n, x[i], got[i], gotD[i], want[i], wantD[i])
				}
			}
		}
		want, got := make([]float32, n), guarded(rng, n)
		addGo(want, x, b)
		addVec(got, x, b)
		checkGuard(t, "add", got)
		for i := range want {
			if !equalF32(got[i], want[i]) {
				t.Fatalf("add n %d: [%d] = %v, Go %v", n, i, got[i], want[i])
			}
		}
	}
}

// TestCMaxPoolMatchesGo runs the C max pool (scalar, and 8-wide where the
// CPU has AVX2) against its Go twin on random geometries with ties (values
// drawn from a few levels), -Inf and NaN, so that the first-maximum and
// NaN-propagation rules are exercised.
func TestCMaxPoolMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	levels := []float32{-1, 0, 0.5, 2, float32(math.Inf(-1))}
	for trial := 0; trial < 300; trial++ {
		k := &maxPoolKernel{k: 1 + rng.IntN(4), s: 1 + rng.IntN(3)}
		k.p = rng.IntN(k.k/2 + 1)
		// Widths up to 40 give the 8-wide path several blocks per row.
		h, w, planes := 1+rng.IntN(12), 1+rng.IntN(40), 1+rng.IntN(3)
		nanEvery := []int{0, 40, 400}[trial%3]
		oh, ow := (h+2*k.p-k.k)/k.s+1, (w+2*k.p-k.k)/k.s+1
		if h+2*k.p < k.k || w+2*k.p < k.k {
			continue
		}
		x := make([]float32, planes*h*w)
		for i := range x {
			x[i] = levels[rng.IntN(len(levels))]
			if nanEvery > 0 && rng.IntN(nanEvery) == 0 {
				x[i] = float32(math.NaN())
			}
		}
		name := fmt.Sprintf("pool k%d s%d p%d on %dx%dx%d", k.k, k.s, k.p, planes, h, w)
		want := make([]float32, planes*oh*ow)
		maxPoolForwardGo(k, want, x, h, w, oh, ow)
		got := guarded(rng, planes*oh*ow)
		maxPoolForward(k, got, x, h, w, oh, ow)
		checkGuard(t, name, got)
		for i := range want {
			if !equalF32(got[i], want[i]) {
				t.Fatalf("%s: out[%d] = %v, Go %v", name, i, got[i], want[i])
			}
		}
		dy := randFloats(rng, planes*oh*ow)
		wantDx := randFloats(rng, planes*h*w)
		gotDx := guarded(rng, planes*h*w)
		copy(gotDx, wantDx) // both accumulate into what is there
		maxPoolBackwardGo(k, wantDx, dy, x, h, w, oh, ow)
		maxPoolBackward(k, gotDx, dy, x, h, w, oh, ow)
		checkGuard(t, name+" backward", gotDx)
		for i := range wantDx {
			if !equalF32(gotDx[i], wantDx[i]) {
				t.Fatalf("%s: dx[%d] = %v, Go %v", name, i, gotDx[i], wantDx[i])
			}
		}
	}
}
