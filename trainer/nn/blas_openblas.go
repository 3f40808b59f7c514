//go:build openblas && cgo

package nn

// #cgo LDFLAGS: -lopenblas
// #include <cblas.h>
// void openblas_set_num_threads(int num_threads);
import "C"

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"gorgonia.org/gorgonia"
)

// openBLAS routes SGEMM, the only BLAS routine the ops call in hot paths,
// to OpenBLAS through cgo and leaves everything else to gonum. Built with
// the "openblas" tag (needs libopenblas-dev); the pure-Go path stays the
// default so CGO_ENABLED=0 builds keep working.
type openBLAS struct{ gonum.Implementation }

func init() {
	// The ops parallelise over images themselves; OpenBLAS threads on top
	// of that would oversubscribe the cores.
	C.openblas_set_num_threads(1)
	gorgonia.Use(openBLAS{})
}

func cblasTrans(t blas.Transpose) C.enum_CBLAS_TRANSPOSE {
	if t == blas.NoTrans {
		return C.CblasNoTrans
	}
	return C.CblasTrans
}

// Sgemm computes c = alpha·op(a)·op(b) + beta·c on row-major matrices.
func (o openBLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 || k == 0 || len(a) == 0 || len(b) == 0 {
		// Degenerate shapes: let gonum do the argument checks and scaling.
		o.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// Same bounds as gonum checks, so a bad call panics here rather than
	// reading out of bounds in C.
	rowsA, colsA := m, k
	if tA != blas.NoTrans {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if tB != blas.NoTrans {
		rowsB, colsB = n, k
	}
	if lda < max(1, colsA) || ldb < max(1, colsB) || ldc < max(1, n) ||
		len(a) < lda*(rowsA-1)+colsA || len(b) < ldb*(rowsB-1)+colsB || len(c) < ldc*(m-1)+n {
		panic("nn: openblas Sgemm: matrix bounds")
	}
	C.cblas_sgemm(C.CblasRowMajor, cblasTrans(tA), cblasTrans(tB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(&a[0]), C.blasint(lda), (*C.float)(&b[0]), C.blasint(ldb),
		C.float(beta), (*C.float)(&c[0]), C.blasint(ldc))
}

func (openBLAS) isOpenBLAS() {}
