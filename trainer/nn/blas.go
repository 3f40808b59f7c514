package nn

import "gorgonia.org/gorgonia"

// BLAS names the SGEMM the ops use: "openblas" (cgo, -tags openblas) or
// "gonum" (pure Go). Results are bit-identical across batch sizes and
// worker counts with gonum; OpenBLAS picks its kernels by matrix size, so
// a different batching can change the last bits.
func BLAS() string {
	if _, ok := gorgonia.WhichBLAS().(interface{ isOpenBLAS() }); ok {
		return "openblas"
	}
	return "gonum"
}
