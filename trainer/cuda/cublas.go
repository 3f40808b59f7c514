package cuda

import (
	"fmt"
)

type blasAPI struct {
	lib    *Library
	handle uintptr

	cublasCreate              func(h *uintptr) int32
	cublasDestroy             func(h uintptr) int32
	cublasSetStream           func(h, s uintptr) int32
	cublasGetVersion          func(h uintptr, v *int32) int32
	cublasSetMathMode         func(h uintptr, mode int32) int32
	cublasGetStatusString     func(status int32) string
	cublasSgemm               func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uint64, lda int32, b uint64, ldb int32, beta *float32, c uint64, ldc int32) int32
	cublasSgemmStridedBatched func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uint64, lda int32, sa int64, b uint64, ldb int32, sb int64, beta *float32, c uint64, ldc int32, sc int64, batch int32) int32
}

// cuBLAS math modes (cublasMath_t).
const (
	blasDefaultMath = 0
	blasTF32Math    = 3
)

func bindBLAS(l *Library) (*blasAPI, error) {
	a := &blasAPI{lib: l}
	b := &binder{lib: l}
	b.fn(&a.cublasCreate, "cublasCreate_v2")
	b.fn(&a.cublasDestroy, "cublasDestroy_v2")
	b.fn(&a.cublasSetStream, "cublasSetStream_v2")
	b.fn(&a.cublasGetVersion, "cublasGetVersion_v2")
	b.fn(&a.cublasSetMathMode, "cublasSetMathMode")
	b.optional(&a.cublasGetStatusString, "cublasGetStatusString")
	b.fn(&a.cublasSgemm, "cublasSgemm_v2")
	b.fn(&a.cublasSgemmStridedBatched, "cublasSgemmStridedBatched")
	return a, b.err()
}

var blasStatusNames = map[int32]string{
	1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE",
	8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR", 13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func (a *blasAPI) check(fn string, s int32) error {
	if s == 0 {
		return nil
	}
	e := &Error{Func: fn, Code: int(s), Name: blasStatusNames[s]}
	if a.cublasGetStatusString != nil {
		e.Msg = a.cublasGetStatusString(s)
	}
	return e
}

// BLASCall is one cuBLAS column-major SGEMM call: what a row-major Gemm
// becomes (see ColumnMajor).
type BLASCall struct {
	TransA, TransB bool // of the column-major operands
	M, N, K        int
	A, B, C        DevPtr
	LDA, LDB, LDC  int
	SA, SB, SC     int // batch strides, elements
}

// ColumnMajor rewrites a row-major product as the column-major one cuBLAS
// computes: a row-major M×N matrix with row stride ld is the column-major
// N×M matrix with leading dimension ld, so C = op(A)·op(B) becomes
// Cᵀ = op(B)ᵀ·op(A)ᵀ: the operands swap, M and N swap, the transpose flags
// stay with their operands.
func ColumnMajor(g Gemm) BLASCall {
	return BLASCall{
		TransA: g.TransB, TransB: g.TransA,
		M: g.N, N: g.M, K: g.K,
		A: g.B, LDA: g.LDB, SA: g.StrideB,
		B: g.A, LDB: g.LDA, SB: g.StrideA,
		C: g.C, LDC: g.LDC, SC: g.StrideC,
	}
}

// CheckGemm reports a Gemm whose sizes or strides cannot be right.
func CheckGemm(g Gemm) error {
	if g.M < 0 || g.N < 0 || g.K < 0 || g.Batch < 1 {
		return fmt.Errorf("cuda: gemm %dx%dx%d batch %d: want non-negative sizes and a batch of at least 1", g.M, g.N, g.K, g.Batch)
	}
	// The stored rows of A are op(A)'s rows, or its columns when
	// transposed; likewise for B.
	colsA, colsB := g.K, g.N
	if g.TransA {
		colsA = g.M
	}
	if g.TransB {
		colsB = g.K
	}
	if g.LDA < max(1, colsA) || g.LDB < max(1, colsB) || g.LDC < max(1, g.N) {
		return fmt.Errorf("cuda: gemm %dx%dx%d: row strides %d, %d, %d shorter than the rows (%d, %d, %d)",
			g.M, g.N, g.K, g.LDA, g.LDB, g.LDC, colsA, colsB, g.N)
	}
	for _, v := range []int{g.M, g.N, g.K, g.LDA, g.LDB, g.LDC} {
		if v > 1<<31-1 {
			return fmt.Errorf("cuda: gemm size %d exceeds 32 bits", v)
		}
	}
	return nil
}

func op(t bool) int32 {
	if t {
		return 1 // CUBLAS_OP_T
	}
	return 0 // CUBLAS_OP_N
}

// sgemm runs g on stream s.
func (a *blasAPI) sgemm(s Stream, g Gemm) error {
	if err := CheckGemm(g); err != nil {
		return err
	}
	if g.M == 0 || g.N == 0 {
		return nil
	}
	if err := a.check("cublasSetStream_v2", a.cublasSetStream(a.handle, uintptr(s))); err != nil {
		return err
	}
	c := ColumnMajor(g)
	alpha, beta := g.Alpha, g.Beta
	if g.Batch == 1 {
		return a.check("cublasSgemm_v2", a.cublasSgemm(a.handle, op(c.TransA), op(c.TransB), int32(c.M), int32(c.N), int32(c.K),
			&alpha, uint64(c.A), int32(c.LDA), uint64(c.B), int32(c.LDB), &beta, uint64(c.C), int32(c.LDC)))
	}
	return a.check("cublasSgemmStridedBatched", a.cublasSgemmStridedBatched(a.handle, op(c.TransA), op(c.TransB),
		int32(c.M), int32(c.N), int32(c.K), &alpha, uint64(c.A), int32(c.LDA), int64(c.SA),
		uint64(c.B), int32(c.LDB), int64(c.SB), &beta, uint64(c.C), int32(c.LDC), int64(c.SC), int32(g.Batch)))
}
