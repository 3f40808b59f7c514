package cuda

import "errors"

// DevPtr is a device address (CUdeviceptr). In an emulated device it is a
// host address.
type DevPtr uint64

// Stream is a CUDA stream (CUstream); 0 is the legacy default stream.
type Stream uintptr

// Event is a CUDA event (CUevent).
type Event uintptr

// Dim3 is a grid or block shape.
type Dim3 struct{ X, Y, Z uint32 }

// D1 returns a one-dimensional Dim3.
func D1(x int) Dim3 { return Dim3{X: uint32(x), Y: 1, Z: 1} }

// D3 returns a three-dimensional Dim3.
func D3(x, y, z int) Dim3 { return Dim3{X: uint32(x), Y: uint32(y), Z: uint32(z)} }

// Gemm is one row-major, optionally strided-batched, single-precision matrix
// product C = Alpha·op(A)·op(B) + Beta·C, as gonum's blas.Sgemm states it:
// op(A) is M×K, op(B) is K×N, C is M×N; LDA, LDB, LDC are row strides;
// Batch products (at least 1) follow each other at StrideA, StrideB,
// StrideC elements.
type Gemm struct {
	TransA, TransB            bool
	M, N, K                   int
	Alpha, Beta               float32
	A, B, C                   DevPtr
	LDA, LDB, LDC             int
	Batch                     int
	StrideA, StrideB, StrideC int
}

// ErrNoBLAS is returned by Device.Sgemm when cuBLAS was not found: callers
// fall back to their own GEMM kernel.
var ErrNoBLAS = errors.New("cuda: cuBLAS not loaded")

// ErrNoDNN is returned by the cuDNN methods when cuDNN was not found.
var ErrNoDNN = errors.New("cuda: cuDNN not loaded")
