//go:build cgo && amd64

package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gorgonia.org/tensor"
)

// TestWinogradMatchesDefinition checks the F(2x2, 3x3) convolution and its
// input and filter gradients against float64 sums of the definition, on map sizes that
// take every path of the transforms (odd sizes with partial edge tiles,
// rows wide enough for the 8-tile AVX2 blocks) and batches that split into
// uneven chunks. The error allowed is relative to the sum of the absolute
// products, the scale of float32 rounding in any summation order.
func TestWinogradMatchesDefinition(t *testing.T) {
	if !winogradKernels {
		t.Skip("Winograd kernels are not in this build (cgo) or SSLIGHT_NOWINOGRAD is set")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	rng := rand.New(rand.NewPCG(31, 32))
	for _, tc := range []struct{ n, c, o, h, w int }{
		{1, 1, 1, 4, 4}, {2, 3, 5, 5, 7}, {3, 4, 2, 8, 8}, {1, 2, 3, 19, 19}, {2, 3, 4, 20, 37},
		{5, 6, 7, 9, 40}, {1, 8, 8, 33, 18}, {7, 2, 3, 4, 6},
	} {
		name := fmt.Sprintf("%+v", tc)
		k := &convKernel{p: ConvParams{Padding: [2]int{1, 1}}.withDefaults()}
		shapes := []tensor.Shape{{tc.n, tc.c, tc.h, tc.w}, {tc.o, tc.c, 3, 3}}
		g, err := k.geom(shapes)
		if err != nil {
			t.Fatal(err)
		}
		if !g.winograd() {
			t.Fatalf("%s: not run as Winograd", name)
		}
		x := randTensor(rng, -1, 1, tc.n, tc.c, tc.h, tc.w).Float32s()
		w := randTensor(rng, -1, 1, tc.o, tc.c, 3, 3).Float32s()
		dy := randTensor(rng, -1, 1, tc.n, tc.o, tc.h, tc.w).Float32s()
		y := make([]float32, len(dy))
		k.forward(y, [][]float32{x, w}, shapes)
		dx := make([]float32, len(x))
		k.backward(0, dx, dy, y, [][]float32{x, w}, shapes)
		dw := make([]float32, len(w))
		k.backward(1, dw, dy, y, [][]float32{x, w}, shapes)

		at := func(s []float32, c, i, yy, xx, planes int) float64 {
			if yy < 0 || yy >= tc.h || xx < 0 || xx >= tc.w {
				return 0
			}
			return float64(s[((i*planes+c)*tc.h+yy)*tc.w+xx])
		}
		for i := range tc.n {
			for yy := range tc.h {
				for xx := range tc.w {
					for o := range tc.o {
						var sum, abs float64
						for c := range tc.c {
							for ki := range 3 {
								for kj := range 3 {
									v := at(x, c, i, yy+ki-1, xx+kj-1, tc.c) * float64(w[((o*tc.c+c)*3+ki)*3+kj])
									sum, abs = sum+v, abs+math.Abs(v)
								}
							}
						}
						got := float64(y[((i*tc.o+o)*tc.h+yy)*tc.w+xx])
						if math.Abs(got-sum) > 1e-5*(abs+1e-6) {
							t.Fatalf("%s: y[%d,%d,%d,%d] = %v, want %v", name, i, o, yy, xx, got, sum)
						}
					}
					for c := range tc.c {
						var sum, abs float64
						for o := range tc.o {
							for ki := range 3 {
								for kj := range 3 {
									v := at(dy, o, i, yy+1-ki, xx+1-kj, tc.o) * float64(w[((o*tc.c+c)*3+ki)*3+kj])
									sum, abs = sum+v, abs+math.Abs(v)
								}
							}
						}
						got := float64(dx[((i*tc.c+c)*tc.h+yy)*tc.w+xx])
						if math.Abs(got-sum) > 1e-5*(abs+1e-6) {
							t.Fatalf("%s: dx[%d,%d,%d,%d] = %v, want %v", name, i, c, yy, xx, got, sum)
						}
					}
				}
			}
		}
		for o := range tc.o {
			for c := range tc.c {
				for ki := range 3 {
					for kj := range 3 {
						var sum, abs float64
						for i := range tc.n {
							for yy := range tc.h {
								for xx := range tc.w {
									v := at(dy, o, i, yy, xx, tc.o) * at(x, c, i, yy+ki-1, xx+kj-1, tc.c)
									sum, abs = sum+v, abs+math.Abs(v)
								}
							}
						}
						got := float64(dw[((o*tc.c+c)*3+ki)*3+kj])
						if math.Abs(got-sum) > 1e-5*(abs+1e-6) {
							t.Fatalf("%s: dw[%d,%d,%d,%d] = %v, want %v", name, o, c, ki, kj, got, sum)
						}
					}
				}
			}
		}
	}
}
