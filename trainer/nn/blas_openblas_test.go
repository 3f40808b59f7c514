//go:build openblas && cgo

package nn

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"gorgonia.org/gorgonia"
)

func TestOpenBLASInUse(t *testing.T) {
	if _, ok := gorgonia.WhichBLAS().(openBLAS); !ok {
		t.Fatalf("gorgonia uses %T, want openBLAS", gorgonia.WhichBLAS())
	}
}

// TestOpenBLASSgemmMatchesGonum compares every transpose combination, with
// strided operands, against gonum's pure-Go SGEMM.
func TestOpenBLASSgemmMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = rng.Float32()*2 - 1
		}
		return s
	}
	m, n, k := 7, 5, 9
	for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
		for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			lda, ldb, ldc := k+2, n+3, n+1
			if tA == blas.Trans {
				lda = m + 2
			}
			if tB == blas.Trans {
				ldb = k + 3
			}
			a, b, c := fill(lda*max(m, k)), fill(ldb*max(n, k)), fill(ldc*m)
			want := append([]float32(nil), c...)
			gonum.Implementation{}.Sgemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 0.25, want, ldc)
			openBLAS{}.Sgemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 0.25, c, ldc)
			for i := range c {
				if d := c[i] - want[i]; d > 1e-5 || d < -1e-5 {
					t.Fatalf("tA=%v tB=%v: c[%d] = %g, gonum %g", tA, tB, i, c[i], want[i])
				}
			}
		}
	}
}
