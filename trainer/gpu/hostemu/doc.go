// Package hostemu runs the executor's CUDA C kernels on the host: the same
// sources NVRTC compiles for a GPU (trainer/gpu/kernels), compiled by the
// C++ compiler with hostemu.h standing in for CUDA's built-ins, driven by a
// small grid scheduler. Its Device has the methods of a CUDA device that
// trainer/gpu's device backend uses, so the tests run the backend's every
// op, its launch configurations included, on a machine without a GPU.
//
// Emulation: the blocks of a grid run one after the other; a block's
// threads run as fibers (ucontext stacks switched with _setjmp/_longjmp)
// from one __syncthreads to the next, so shared memory and barriers behave
// as on a GPU for code free of warp-level assumptions, and a block whose
// first thread passes no barrier runs its threads as plain calls. Device
// memory is malloc'd host memory, filled with NaN bytes when allocated so
// that a kernel reading memory nobody wrote shows. Launches are checked
// against CUDA's limits (1024 threads per block, grid y and z below 65536,
// 48 KiB of dynamic shared memory) and a block whose threads pass
// different numbers of barriers is an error.
//
// It needs cgo (a C++17 compiler); without cgo the package is empty and
// the tests that use it are not built.
package hostemu

//go:generate go run gen_table.go
