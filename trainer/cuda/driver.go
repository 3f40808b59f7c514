package cuda

import (
	"fmt"
	"unsafe"
)

// driverAPI holds the driver functions Device calls. The _v2 names are the
// ones the library exports where cuda.h maps a name to a newer ABI.
type driverAPI struct {
	lib *Library

	cuInit                    func(flags uint32) int32
	cuDriverGetVersion        func(v *int32) int32
	cuDeviceGetCount          func(n *int32) int32
	cuDeviceGet               func(dev *int32, ordinal int32) int32
	cuDeviceGetName           func(name *byte, n int32, dev int32) int32
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) int32
	cuDeviceTotalMem          func(bytes *uint64, dev int32) int32
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease func(dev int32) int32
	cuCtxSetCurrent           func(ctx uintptr) int32
	cuCtxSynchronize          func() int32
	cuMemAlloc                func(p *uint64, bytes uint64) int32
	cuMemFree                 func(p uint64) int32
	cuMemGetInfo              func(free, total *uint64) int32
	cuMemHostAlloc            func(pp *unsafe.Pointer, bytes uint64, flags uint32) int32
	cuMemFreeHost             func(p unsafe.Pointer) int32
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, bytes uint64) int32
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, bytes uint64) int32
	cuMemcpyHtoDAsync         func(dst uint64, src unsafe.Pointer, bytes uint64, s uintptr) int32
	cuMemcpyDtoHAsync         func(dst unsafe.Pointer, src uint64, bytes uint64, s uintptr) int32
	cuMemcpyDtoDAsync         func(dst, src uint64, bytes uint64, s uintptr) int32
	cuMemsetD32Async          func(dst uint64, v uint32, n uint64, s uintptr) int32
	cuStreamCreate            func(s *uintptr, flags uint32) int32
	cuStreamDestroy           func(s uintptr) int32
	cuStreamSynchronize       func(s uintptr) int32
	cuStreamWaitEvent         func(s, e uintptr, flags uint32) int32
	cuEventCreate             func(e *uintptr, flags uint32) int32
	cuEventDestroy            func(e uintptr) int32
	cuEventRecord             func(e, s uintptr) int32
	cuEventSynchronize        func(e uintptr) int32
	cuEventElapsedTime        func(ms *float32, start, end uintptr) int32
	cuModuleLoadData          func(m *uintptr, image unsafe.Pointer) int32
	cuModuleUnload            func(m uintptr) int32
	cuModuleGetFunction       func(f *uintptr, m uintptr, name string) int32
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, s uintptr, params, extra unsafe.Pointer) int32
	cuGetErrorString          func(code int32, s **byte) int32
	cuGetErrorName            func(code int32, s **byte) int32
}

// Device attributes (CUdevice_attribute) read at Open.
const (
	attrMaxThreadsPerBlock  = 1
	attrMaxSharedPerBlock   = 8
	attrMultiprocessorCount = 16
	attrComputeMajor        = 75
	attrComputeMinor        = 76
)

const (
	streamNonBlocking  = 1 // CU_STREAM_NON_BLOCKING
	eventDisableTiming = 2 // CU_EVENT_DISABLE_TIMING
	hostAllocPortable  = 1 // CU_MEMHOSTALLOC_PORTABLE
)

func bindDriver(l *Library) (*driverAPI, error) {
	d := &driverAPI{lib: l}
	b := &binder{lib: l}
	b.fn(&d.cuInit, "cuInit")
	b.fn(&d.cuDriverGetVersion, "cuDriverGetVersion")
	b.fn(&d.cuDeviceGetCount, "cuDeviceGetCount")
	b.fn(&d.cuDeviceGet, "cuDeviceGet")
	b.fn(&d.cuDeviceGetName, "cuDeviceGetName")
	b.fn(&d.cuDeviceGetAttribute, "cuDeviceGetAttribute")
	b.fn(&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2", "cuDeviceTotalMem")
	b.fn(&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
	b.fn(&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease")
	b.fn(&d.cuCtxSetCurrent, "cuCtxSetCurrent")
	b.fn(&d.cuCtxSynchronize, "cuCtxSynchronize")
	b.fn(&d.cuMemAlloc, "cuMemAlloc_v2")
	b.fn(&d.cuMemFree, "cuMemFree_v2")
	b.fn(&d.cuMemGetInfo, "cuMemGetInfo_v2")
	b.fn(&d.cuMemHostAlloc, "cuMemHostAlloc")
	b.fn(&d.cuMemFreeHost, "cuMemFreeHost")
	b.fn(&d.cuMemcpyHtoD, "cuMemcpyHtoD_v2")
	b.fn(&d.cuMemcpyDtoH, "cuMemcpyDtoH_v2")
	b.fn(&d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2")
	b.fn(&d.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2")
	b.fn(&d.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2")
	b.fn(&d.cuMemsetD32Async, "cuMemsetD32Async")
	b.fn(&d.cuStreamCreate, "cuStreamCreate")
	b.fn(&d.cuStreamDestroy, "cuStreamDestroy_v2", "cuStreamDestroy")
	b.fn(&d.cuStreamSynchronize, "cuStreamSynchronize")
	b.fn(&d.cuStreamWaitEvent, "cuStreamWaitEvent")
	b.fn(&d.cuEventCreate, "cuEventCreate")
	b.fn(&d.cuEventDestroy, "cuEventDestroy_v2", "cuEventDestroy")
	b.fn(&d.cuEventRecord, "cuEventRecord")
	b.fn(&d.cuEventSynchronize, "cuEventSynchronize")
	b.fn(&d.cuEventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime")
	b.fn(&d.cuModuleLoadData, "cuModuleLoadData")
	b.fn(&d.cuModuleUnload, "cuModuleUnload")
	b.fn(&d.cuModuleGetFunction, "cuModuleGetFunction")
	b.fn(&d.cuLaunchKernel, "cuLaunchKernel")
	b.fn(&d.cuGetErrorString, "cuGetErrorString")
	b.fn(&d.cuGetErrorName, "cuGetErrorName")
	if err := b.err(); err != nil {
		return nil, err
	}
	return d, nil
}

// Error is a failed call into one of the CUDA libraries.
type Error struct {
	Func string // the C function
	Code int    // its status code
	Name string // the code's name (CUDA_ERROR_NO_DEVICE), when the library has one
	Msg  string // the library's description
}

func (e *Error) Error() string {
	switch {
	case e.Name != "" && e.Msg != "":
		return fmt.Sprintf("cuda: %s: %s (%d): %s", e.Func, e.Name, e.Code, e.Msg)
	case e.Name != "":
		return fmt.Sprintf("cuda: %s: %s (%d)", e.Func, e.Name, e.Code)
	case e.Msg != "":
		return fmt.Sprintf("cuda: %s: error %d: %s", e.Func, e.Code, e.Msg)
	}
	return fmt.Sprintf("cuda: %s: error %d", e.Func, e.Code)
}

// Driver result codes Device looks at.
const (
	cudaSuccess     = 0
	cudaErrNotReady = 600
)

// check turns a driver result into an *Error (nil for CUDA_SUCCESS).
func (d *driverAPI) check(fn string, r int32) error {
	if r == cudaSuccess {
		return nil
	}
	e := &Error{Func: fn, Code: int(r)}
	var p *byte
	if d.cuGetErrorName(r, &p) == cudaSuccess {
		e.Name = goString(p)
	}
	p = nil
	if d.cuGetErrorString(r, &p) == cudaSuccess {
		e.Msg = goString(p)
	}
	return e
}
