//go:build cgo

package hostemu

/*
#cgo CXXFLAGS: -O2 -std=c++17 -U_FORTIFY_SOURCE -fno-strict-aliasing -Wno-unused-function
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "emu_api.h"

static void *emu_address(uint64_t p) { return (void *)(uintptr_t)p; }
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// Device is an emulated CUDA device: host memory and the kernels run by
// the emulation. It has no cuBLAS and no cuDNN (Sgemm returns
// cuda.ErrNoBLAS), so the device backend runs its own GEMM and convolution
// kernels on it. Streams and events exist but every operation completes
// before its call returns.
type Device struct {
	mu      sync.Mutex
	live    map[cuda.DevPtr]int // allocations: address → bytes
	pinned  map[unsafe.Pointer]int
	args    unsafe.Pointer // C memory for kernel parameters
	streams int
	events  int
	// Launches counts the kernel launches, by name.
	Launches map[string]int
	// HostBLAS makes Sgemm a host SGEMM in cuBLAS's place (the
	// configuration of a GPU with cuBLAS); without it HasBLAS is false and
	// the backend runs its GEMM kernel, which the emulation runs slowly.
	HostBLAS bool
}

// emuMu serialises launches: the emulation's scheduler state is global.
var emuMu sync.Mutex

var kernelIndex = func() map[string]int {
	m := map[string]int{}
	for k := 0; k < int(C.emu_kernel_count()); k++ {
		m[C.GoString(C.emu_kernel_name(C.int(k)))] = k
	}
	return m
}()

// Kernels returns the names of the kernels the emulation was built with.
func Kernels() []string {
	out := make([]string, 0, len(kernelIndex))
	for k := 0; k < int(C.emu_kernel_count()); k++ {
		out = append(out, C.GoString(C.emu_kernel_name(C.int(k))))
	}
	return out
}

const maxArgs = 64

// New returns an emulated device.
func New() *Device {
	return &Device{live: map[cuda.DevPtr]int{}, pinned: map[unsafe.Pointer]int{}, Launches: map[string]int{},
		args: C.malloc(C.size_t(16 * maxArgs))}
}

// Close frees what the device still holds.
func (d *Device) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p := range d.live {
		C.free(cptr(p))
	}
	for p := range d.pinned {
		C.free(p)
	}
	C.free(d.args)
	d.live, d.pinned, d.args = nil, nil, nil
}

// Live returns the bytes allocated and not freed.
func (d *Device) Live() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, b := range d.live {
		n += b
	}
	return n
}

func (d *Device) ptr(p cuda.DevPtr, bytes int) (unsafe.Pointer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for base, n := range d.live {
		if p >= base && uint64(p)+uint64(bytes) <= uint64(base)+uint64(n) {
			return cptr(p), nil
		}
	}
	return nil, fmt.Errorf("hostemu: %d bytes at %#x are not inside an allocation", bytes, p)
}

// cptr turns an emulated device address (a C address) back into a pointer.
func cptr(p cuda.DevPtr) unsafe.Pointer {
	return C.emu_address(C.uint64_t(p))
}

// Malloc allocates bytes, filled with 0xff bytes (each float a NaN).
func (d *Device) Malloc(bytes int) (cuda.DevPtr, error) {
	if bytes <= 0 {
		return 0, fmt.Errorf("hostemu: Malloc(%d)", bytes)
	}
	p := C.malloc(C.size_t(bytes))
	if p == nil {
		return 0, errors.New("hostemu: out of memory")
	}
	C.memset(p, 0xff, C.size_t(bytes))
	dp := cuda.DevPtr(uintptr(p))
	d.mu.Lock()
	d.live[dp] = bytes
	d.mu.Unlock()
	return dp, nil
}

// Free releases an allocation.
func (d *Device) Free(p cuda.DevPtr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.live[p]; !ok {
		return fmt.Errorf("hostemu: Free(%#x) of memory Malloc did not return", p)
	}
	delete(d.live, p)
	C.free(cptr(p))
	return nil
}

func f32(s []float32) (unsafe.Pointer, int) {
	if len(s) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(&s[0]), 4 * len(s)
}

// CopyHtoD copies src into dst.
func (d *Device) CopyHtoD(dst cuda.DevPtr, src []float32, _ cuda.Stream) error {
	sp, n := f32(src)
	if n == 0 {
		return nil
	}
	p, err := d.ptr(dst, n)
	if err != nil {
		return err
	}
	C.memcpy(p, sp, C.size_t(n))
	return nil
}

// CopyHtoDAsync is CopyHtoD from a HostAlloc buffer.
func (d *Device) CopyHtoDAsync(dst cuda.DevPtr, src []float32, s cuda.Stream) error {
	if len(src) > 0 && !d.isPinned(src) {
		return errors.New("hostemu: CopyHtoDAsync from memory HostAlloc did not return")
	}
	return d.CopyHtoD(dst, src, s)
}

// CopyDtoH copies src into dst.
func (d *Device) CopyDtoH(dst []float32, src cuda.DevPtr, _ cuda.Stream) error {
	dp, n := f32(dst)
	if n == 0 {
		return nil
	}
	p, err := d.ptr(src, n)
	if err != nil {
		return err
	}
	C.memcpy(dp, p, C.size_t(n))
	return nil
}

// CopyDtoD copies bytes from src to dst.
func (d *Device) CopyDtoD(dst, src cuda.DevPtr, bytes int, _ cuda.Stream) error {
	if bytes == 0 {
		return nil
	}
	dp, err := d.ptr(dst, bytes)
	if err != nil {
		return err
	}
	sp, err := d.ptr(src, bytes)
	if err != nil {
		return err
	}
	C.memmove(dp, sp, C.size_t(bytes))
	return nil
}

// Memset zeroes bytes at dst.
func (d *Device) Memset(dst cuda.DevPtr, bytes int, _ cuda.Stream) error {
	if bytes%4 != 0 {
		return fmt.Errorf("hostemu: Memset of %d bytes", bytes)
	}
	if bytes == 0 {
		return nil
	}
	p, err := d.ptr(dst, bytes)
	if err != nil {
		return err
	}
	C.memset(p, 0, C.size_t(bytes))
	return nil
}

// HostAlloc returns n float32s of C memory (the emulation's pinned memory).
func (d *Device) HostAlloc(n int) ([]float32, error) {
	if n <= 0 {
		return nil, fmt.Errorf("hostemu: HostAlloc(%d)", n)
	}
	p := C.malloc(C.size_t(4 * n))
	if p == nil {
		return nil, errors.New("hostemu: out of memory")
	}
	d.mu.Lock()
	d.pinned[p] = 4 * n
	d.mu.Unlock()
	return unsafe.Slice((*float32)(p), n), nil
}

// HostFree releases a HostAlloc buffer.
func (d *Device) HostFree(buf []float32) error {
	if len(buf) == 0 {
		return nil
	}
	p := unsafe.Pointer(&buf[0])
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.pinned[p]; !ok {
		return errors.New("hostemu: HostFree of a buffer HostAlloc did not return")
	}
	delete(d.pinned, p)
	C.free(p)
	return nil
}

func (d *Device) isPinned(s []float32) bool {
	lo := uintptr(unsafe.Pointer(&s[0]))
	hi := lo + uintptr(4*len(s))
	d.mu.Lock()
	defer d.mu.Unlock()
	for base, n := range d.pinned {
		if b := uintptr(base); lo >= b && hi <= b+uintptr(n) {
			return true
		}
	}
	return false
}

// NewStream returns a new stream handle.
func (d *Device) NewStream() (cuda.Stream, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.streams++
	return cuda.Stream(d.streams), nil
}

// DestroyStream does nothing.
func (d *Device) DestroyStream(cuda.Stream) error { return nil }

// Synchronize does nothing: every operation is complete when it returns.
func (d *Device) Synchronize(cuda.Stream) error { return nil }

// NewEvent returns a new event handle.
func (d *Device) NewEvent(bool) (cuda.Event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events++
	return cuda.Event(d.events), nil
}

// DestroyEvent does nothing.
func (d *Device) DestroyEvent(cuda.Event) error { return nil }

// RecordEvent does nothing (the work before it is done).
func (d *Device) RecordEvent(cuda.Event, cuda.Stream) error { return nil }

// StreamWaitEvent does nothing.
func (d *Device) StreamWaitEvent(cuda.Stream, cuda.Event) error { return nil }

// EventSynchronize does nothing.
func (d *Device) EventSynchronize(cuda.Event) error { return nil }

// ElapsedMs is always 0.
func (d *Device) ElapsedMs(cuda.Event, cuda.Event) (float32, error) { return 0, nil }

// HasBLAS reports HostBLAS.
func (d *Device) HasBLAS() bool { return d.HostBLAS }

// Sgemm runs g on the host with HostBLAS, and returns cuda.ErrNoBLAS
// without.
func (d *Device) Sgemm(_ cuda.Stream, g cuda.Gemm) error {
	if !d.HostBLAS {
		return cuda.ErrNoBLAS
	}
	if err := cuda.CheckGemm(g); err != nil {
		return err
	}
	if g.M == 0 || g.N == 0 {
		return nil
	}
	// The extent each operand's batch covers, to check it lies in memory.
	span := func(rows, cols, ld, stride int) int { return 4 * ((g.Batch-1)*stride + (rows-1)*ld + cols) }
	ra, ca, rb, cb := g.M, g.K, g.K, g.N
	if g.TransA {
		ra, ca = g.K, g.M
	}
	if g.TransB {
		rb, cb = g.N, g.K
	}
	a, err := d.ptr(g.A, span(ra, ca, g.LDA, g.StrideA))
	if err != nil {
		return err
	}
	b, err := d.ptr(g.B, span(rb, cb, g.LDB, g.StrideB))
	if err != nil {
		return err
	}
	c, err := d.ptr(g.C, span(g.M, g.N, g.LDC, g.StrideC))
	if err != nil {
		return err
	}
	b2i := func(v bool) C.int {
		if v {
			return 1
		}
		return 0
	}
	C.emu_sgemm(b2i(g.TransA), b2i(g.TransB), C.int(g.M), C.int(g.N), C.int(g.K), C.float(g.Alpha), (*C.float)(a), C.int(g.LDA),
		C.longlong(g.StrideA), (*C.float)(b), C.int(g.LDB), C.longlong(g.StrideB), C.float(g.Beta), (*C.float)(c), C.int(g.LDC),
		C.longlong(g.StrideC), C.int(g.Batch))
	return nil
}

var launchErrors = map[C.int]string{
	C.EMU_BAD_KERNEL:       "no such kernel",
	C.EMU_BAD_SHAPE:        "grid or block beyond CUDA's limits",
	C.EMU_BAD_SHARED:       "more than 48 KiB of dynamic shared memory",
	C.EMU_BARRIER_DIVERGED: "the block's threads passed different numbers of __syncthreads",
}

// Launch runs kernel name over the grid.
func (d *Device) Launch(name string, grid, block cuda.Dim3, shmem int, _ cuda.Stream, args ...any) error {
	k, ok := kernelIndex[name]
	if !ok {
		return fmt.Errorf("hostemu: no kernel %q", name)
	}
	if n := int(C.emu_kernel_params(C.int(k))); n != len(args) {
		return fmt.Errorf("hostemu: kernel %s takes %d parameters, got %d", name, n, len(args))
	}
	emuMu.Lock()
	defer emuMu.Unlock()
	vals := unsafe.Slice((*byte)(d.args), 8*maxArgs)
	if err := cuda.PackArgs(vals, args); err != nil {
		return fmt.Errorf("hostemu: kernel %s: %w", name, err)
	}
	ptrs := unsafe.Slice((*unsafe.Pointer)(unsafe.Add(d.args, 8*maxArgs)), maxArgs)
	for i := range args {
		ptrs[i] = unsafe.Pointer(&vals[8*i])
	}
	r := C.emu_launch(C.int(k), C.uint(grid.X), C.uint(grid.Y), C.uint(grid.Z), C.uint(block.X), C.uint(block.Y),
		C.uint(block.Z), C.size_t(shmem), (*unsafe.Pointer)(unsafe.Add(d.args, 8*maxArgs)))
	if r != C.EMU_OK {
		return fmt.Errorf("hostemu: kernel %s, grid %v, block %v: %s", name, grid, block, launchErrors[r])
	}
	d.mu.Lock()
	d.Launches[name]++
	d.mu.Unlock()
	return nil
}
