package cuda

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"
)

// Options configure Open.
type Options struct {
	// Ordinal is the device index (CUDA's numbering).
	Ordinal int
	// TF32 lets cuBLAS and cuDNN use TF32 tensor cores for float32
	// products (off: FP32 arithmetic throughout, as the CPU trainer's).
	TF32 bool
	// NoBLAS and NoDNN ignore cuBLAS and cuDNN even when they are found,
	// so that the package's own kernels run (to compare them on a GPU).
	NoBLAS, NoDNN bool
	// ConvBenchmark times cuDNN's convolution algorithms once per shape
	// (cudnnFind*) instead of taking its heuristics' first choice.
	ConvBenchmark bool
	// Getenv reads the environment (nil: os.Getenv); Open uses it for the
	// search folders.
	Getenv func(string) string
	// Opener opens a library (nil: Dlopen).
	Opener Opener
	// KernelCache is a folder where LoadModule keeps compiled images
	// between processes, named by a hash of the source, the target and the
	// options (empty: compile once per process only).
	KernelCache string
}

// Info describes an opened device and the libraries serving it.
type Info struct {
	Name               string
	Ordinal            int
	Major, Minor       int // compute capability
	SMs                int
	MaxThreadsPerBlock int
	MaxSharedPerBlock  int
	TotalMemory        int64
	DriverVersion      int    // CUDA's encoding: 1000·major + 10·minor
	NVRTCVersion       string // "13.0"
	BLASVersion        int    // cuBLAS's encoding, 0 when not loaded
	DNNVersion         int    // cuDNN's encoding, 0 when not loaded
	Target             Target // what the kernels are compiled for
	DriverPath         string
	NVRTCPath          string
	BLASPath, DNNPath  string // "" when not loaded
	TF32               bool
}

// Device is one opened GPU: its primary context, cuBLAS and cuDNN handles
// and the kernel modules loaded into it. Its methods serialise their
// callers and run each on a locked OS thread with the context current.
type Device struct {
	info Info
	opts Options

	mu  sync.Mutex
	drv *driverAPI
	rtc *nvrtcAPI
	bl  *blasAPI // nil without cuBLAS
	dnn *dnnAPI  // nil without cuDNN

	dev int32
	ctx uintptr

	modules []uintptr
	funcs   map[string]uintptr
	args    unsafe.Pointer         // C memory: maxKernelArgs values then their addresses
	pinned  map[unsafe.Pointer]int // host allocations (base → bytes)
	plans   map[ConvSpec]*ConvPlan
	bns     map[BNSpec]*bnDescs
	closed  bool
}

// maxKernelArgs is the most arguments Launch passes to a kernel.
const maxKernelArgs = 64

// Open finds the libraries, initialises the driver and opens device
// o.Ordinal with its primary context. Without a driver or NVRTC it fails at
// once with a *LibraryError (errors.Is(err, ErrNotFound)).
func Open(o Options) (*Device, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Opener == nil {
		o.Opener = Dlopen
	}
	libs, err := FindLibraries(o.Getenv, o.Opener)
	if err != nil {
		return nil, err
	}
	drv, err := bindDriver(libs.Driver)
	if err != nil {
		return nil, err
	}
	rtc, err := bindNVRTC(libs.NVRTC)
	if err != nil {
		return nil, err
	}
	d := &Device{opts: o, drv: drv, rtc: rtc, funcs: map[string]uintptr{}, pinned: map[unsafe.Pointer]int{},
		plans: map[ConvSpec]*ConvPlan{}, bns: map[BNSpec]*bnDescs{}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.init(libs); err != nil {
		d.closeLocked()
		return nil, err
	}
	return d, nil
}

func (d *Device) init(libs *Libraries) error {
	drv := d.drv
	if err := drv.check("cuInit", drv.cuInit(0)); err != nil {
		return fmt.Errorf("%w (the driver at %s is loaded but found no usable GPU)", err, libs.Driver.Path)
	}
	var v, count int32
	if err := drv.check("cuDriverGetVersion", drv.cuDriverGetVersion(&v)); err != nil {
		return err
	}
	if err := drv.check("cuDeviceGetCount", drv.cuDeviceGetCount(&count)); err != nil {
		return err
	}
	if d.opts.Ordinal < 0 || d.opts.Ordinal >= int(count) {
		return fmt.Errorf("cuda: device %d requested, the driver sees %d", d.opts.Ordinal, count)
	}
	if err := drv.check("cuDeviceGet", drv.cuDeviceGet(&d.dev, int32(d.opts.Ordinal))); err != nil {
		return err
	}
	if err := drv.check("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return err
	}
	if err := drv.check("cuCtxSetCurrent", drv.cuCtxSetCurrent(d.ctx)); err != nil {
		return err
	}
	name := make([]byte, 256)
	if err := drv.check("cuDeviceGetName", drv.cuDeviceGetName(&name[0], int32(len(name)), d.dev)); err != nil {
		return err
	}
	attr := func(a int32) (int, error) {
		var x int32
		err := drv.check("cuDeviceGetAttribute", drv.cuDeviceGetAttribute(&x, a, d.dev))
		return int(x), err
	}
	in := &d.info
	in.Name, in.Ordinal, in.DriverVersion, in.TF32 = goString(&name[0]), d.opts.Ordinal, int(v), d.opts.TF32
	in.DriverPath, in.NVRTCPath, in.NVRTCVersion = libs.Driver.Path, libs.NVRTC.Path, d.rtc.version()
	var err error
	for _, a := range []struct {
		id  int32
		dst *int
	}{{attrComputeMajor, &in.Major}, {attrComputeMinor, &in.Minor}, {attrMultiprocessorCount, &in.SMs},
		{attrMaxThreadsPerBlock, &in.MaxThreadsPerBlock}, {attrMaxSharedPerBlock, &in.MaxSharedPerBlock}} {
		if *a.dst, err = attr(a.id); err != nil {
			return err
		}
	}
	var total uint64
	if err := drv.check("cuDeviceTotalMem_v2", drv.cuDeviceTotalMem(&total, d.dev)); err != nil {
		return err
	}
	in.TotalMemory = int64(total)
	if in.Target, err = ChooseTarget(in.Major*10+in.Minor, d.rtc.supportedArchs()); err != nil {
		return err
	}
	if libs.BLAS != nil && !d.opts.NoBLAS {
		if err := d.initBLAS(libs.BLAS); err != nil {
			return err
		}
	}
	if libs.DNN != nil && !d.opts.NoDNN {
		if err := d.initDNN(libs.DNN); err != nil {
			return err
		}
	}
	return nil
}

func (d *Device) initBLAS(l *Library) error {
	a, err := bindBLAS(l)
	if err != nil {
		return err
	}
	if err := a.check("cublasCreate_v2", a.cublasCreate(&a.handle)); err != nil {
		return err
	}
	d.bl = a
	mode := int32(blasDefaultMath)
	if d.opts.TF32 {
		mode = blasTF32Math
	}
	if err := a.check("cublasSetMathMode", a.cublasSetMathMode(a.handle, mode)); err != nil {
		return err
	}
	var v int32
	if err := a.check("cublasGetVersion_v2", a.cublasGetVersion(a.handle, &v)); err != nil {
		return err
	}
	d.info.BLASVersion, d.info.BLASPath = int(v), l.Path
	return nil
}

func (d *Device) initDNN(l *Library) error {
	a, err := bindDNN(l)
	if err != nil {
		return err
	}
	if err := a.check("cudnnCreate", a.cudnnCreate(&a.handle)); err != nil {
		return fmt.Errorf("%w (cuDNN at %s)", err, l.Path)
	}
	d.dnn = a
	d.info.DNNVersion, d.info.DNNPath = int(a.cudnnGetVersion()), l.Path
	return nil
}

// Info describes the device.
func (d *Device) Info() Info { return d.info }

// HasBLAS reports whether cuBLAS serves Sgemm.
func (d *Device) HasBLAS() bool { return d.bl != nil }

// HasDNN reports whether cuDNN serves the convolution and BatchNorm
// methods.
func (d *Device) HasDNN() bool { return d.dnn != nil }

// lock serialises the caller and makes the context current on its thread;
// unlock undoes it.
func (d *Device) lock() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("cuda: device %d is closed", d.info.Ordinal)
	}
	runtime.LockOSThread()
	if err := d.drv.check("cuCtxSetCurrent", d.drv.cuCtxSetCurrent(d.ctx)); err != nil {
		d.unlock()
		return err
	}
	return nil
}

func (d *Device) unlock() {
	runtime.UnlockOSThread()
	d.mu.Unlock()
}

// Close releases the handles, modules, pinned buffers and the primary
// context. The Device cannot be used afterwards.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if d.ctx != 0 {
		d.drv.cuCtxSetCurrent(d.ctx)
	}
	return d.closeLocked()
}

func (d *Device) closeLocked() error {
	d.closed = true
	if d.dnn != nil {
		for _, p := range d.plans {
			d.dnn.destroyPlan(p)
		}
		for _, b := range d.bns {
			d.dnn.cudnnDestroyTensorDescriptor(b.x)
			d.dnn.cudnnDestroyTensorDescriptor(b.bn)
		}
		d.dnn.cudnnDestroy(d.dnn.handle)
	}
	if d.bl != nil {
		d.bl.cublasDestroy(d.bl.handle)
	}
	for _, m := range d.modules {
		d.drv.cuModuleUnload(m)
	}
	for p := range d.pinned {
		d.drv.cuMemFreeHost(p)
	}
	cFree(d.args)
	d.args = nil
	if d.ctx != 0 {
		return d.drv.check("cuDevicePrimaryCtxRelease", d.drv.cuDevicePrimaryCtxRelease(d.dev))
	}
	return nil
}

// MemInfo returns the device's free and total memory in bytes.
func (d *Device) MemInfo() (free, total int64, err error) {
	if err := d.lock(); err != nil {
		return 0, 0, err
	}
	defer d.unlock()
	var f, t uint64
	err = d.drv.check("cuMemGetInfo_v2", d.drv.cuMemGetInfo(&f, &t))
	return int64(f), int64(t), err
}

// Malloc allocates bytes of device memory.
func (d *Device) Malloc(bytes int) (DevPtr, error) {
	if bytes <= 0 {
		return 0, fmt.Errorf("cuda: Malloc(%d): want a positive size", bytes)
	}
	if err := d.lock(); err != nil {
		return 0, err
	}
	defer d.unlock()
	var p uint64
	if err := d.drv.check("cuMemAlloc_v2", d.drv.cuMemAlloc(&p, uint64(bytes))); err != nil {
		return 0, fmt.Errorf("%w (allocating %d bytes)", err, bytes)
	}
	return DevPtr(p), nil
}

// Free releases memory from Malloc.
func (d *Device) Free(p DevPtr) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	return d.drv.check("cuMemFree_v2", d.drv.cuMemFree(uint64(p)))
}

func f32Bytes(s []float32) (unsafe.Pointer, uint64) {
	if len(s) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(&s[0]), uint64(4 * len(s))
}

// CopyHtoD copies src into dst in the order of stream s and returns once
// src may be reused.
func (d *Device) CopyHtoD(dst DevPtr, src []float32, s Stream) error {
	p, n := f32Bytes(src)
	if n == 0 {
		return nil
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	if err := d.drv.check("cuMemcpyHtoDAsync_v2", d.drv.cuMemcpyHtoDAsync(uint64(dst), p, n, uintptr(s))); err != nil {
		return err
	}
	err := d.drv.check("cuStreamSynchronize", d.drv.cuStreamSynchronize(uintptr(s)))
	runtime.KeepAlive(src)
	return err
}

// CopyDtoH copies src into dst after the work queued on s and returns when
// dst holds the data.
func (d *Device) CopyDtoH(dst []float32, src DevPtr, s Stream) error {
	p, n := f32Bytes(dst)
	if n == 0 {
		return nil
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	if err := d.drv.check("cuMemcpyDtoHAsync_v2", d.drv.cuMemcpyDtoHAsync(p, uint64(src), n, uintptr(s))); err != nil {
		return err
	}
	err := d.drv.check("cuStreamSynchronize", d.drv.cuStreamSynchronize(uintptr(s)))
	runtime.KeepAlive(dst)
	return err
}

// CopyDtoD queues a device-to-device copy of bytes on s.
func (d *Device) CopyDtoD(dst, src DevPtr, bytes int, s Stream) error {
	if bytes == 0 {
		return nil
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	return d.drv.check("cuMemcpyDtoDAsync_v2", d.drv.cuMemcpyDtoDAsync(uint64(dst), uint64(src), uint64(bytes), uintptr(s)))
}

// Memset queues zeroing bytes (a multiple of 4) at dst on s.
func (d *Device) Memset(dst DevPtr, bytes int, s Stream) error {
	if bytes%4 != 0 {
		return fmt.Errorf("cuda: Memset of %d bytes: want a multiple of 4", bytes)
	}
	if bytes == 0 {
		return nil
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	return d.drv.check("cuMemsetD32Async", d.drv.cuMemsetD32Async(uint64(dst), 0, uint64(bytes/4), uintptr(s)))
}

// HostAlloc returns n float32s of pinned host memory, which asynchronous
// copies need (see CopyHtoDAsync). Free it with HostFree.
func (d *Device) HostAlloc(n int) ([]float32, error) {
	if n <= 0 {
		return nil, fmt.Errorf("cuda: HostAlloc(%d): want a positive size", n)
	}
	if err := d.lock(); err != nil {
		return nil, err
	}
	defer d.unlock()
	var p unsafe.Pointer
	if err := d.drv.check("cuMemHostAlloc", d.drv.cuMemHostAlloc(&p, uint64(4*n), hostAllocPortable)); err != nil {
		return nil, err
	}
	d.pinned[p] = 4 * n
	return unsafe.Slice((*float32)(p), n), nil
}

// HostFree releases a buffer from HostAlloc.
func (d *Device) HostFree(buf []float32) error {
	if len(buf) == 0 {
		return nil
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	p := unsafe.Pointer(&buf[0])
	if _, ok := d.pinned[p]; !ok {
		return fmt.Errorf("cuda: HostFree of a buffer HostAlloc did not return")
	}
	delete(d.pinned, p)
	return d.drv.check("cuMemFreeHost", d.drv.cuMemFreeHost(p))
}

// isPinned reports whether src lies inside a HostAlloc buffer.
func (d *Device) isPinned(src []float32) bool {
	lo := uintptr(unsafe.Pointer(&src[0]))
	hi := lo + uintptr(4*len(src))
	for base, n := range d.pinned {
		if b := uintptr(base); lo >= b && hi <= b+uintptr(n) {
			return true
		}
	}
	return false
}

// CopyHtoDAsync queues a copy of src, which must lie in a HostAlloc buffer,
// into dst on s and returns at once: src must not change until the copy is
// done (an event recorded on s after it says when).
func (d *Device) CopyHtoDAsync(dst DevPtr, src []float32, s Stream) error {
	p, n := f32Bytes(src)
	if n == 0 {
		return nil
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	if !d.isPinned(src) {
		return fmt.Errorf("cuda: CopyHtoDAsync from memory HostAlloc did not return (pageable memory would be copied synchronously)")
	}
	return d.drv.check("cuMemcpyHtoDAsync_v2", d.drv.cuMemcpyHtoDAsync(uint64(dst), p, n, uintptr(s)))
}

// NewStream creates a stream that does not synchronise with the legacy
// default stream.
func (d *Device) NewStream() (Stream, error) {
	if err := d.lock(); err != nil {
		return 0, err
	}
	defer d.unlock()
	var s uintptr
	err := d.drv.check("cuStreamCreate", d.drv.cuStreamCreate(&s, streamNonBlocking))
	return Stream(s), err
}

// DestroyStream destroys a stream from NewStream.
func (d *Device) DestroyStream(s Stream) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	return d.drv.check("cuStreamDestroy_v2", d.drv.cuStreamDestroy(uintptr(s)))
}

// Synchronize waits for the work queued on s.
func (d *Device) Synchronize(s Stream) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	return d.drv.check("cuStreamSynchronize", d.drv.cuStreamSynchronize(uintptr(s)))
}

// NewEvent creates an event; timing events can be given to ElapsedMs.
func (d *Device) NewEvent(timing bool) (Event, error) {
	if err := d.lock(); err != nil {
		return 0, err
	}
	defer d.unlock()
	var flags uint32 = eventDisableTiming
	if timing {
		flags = 0
	}
	var e uintptr
	err := d.drv.check("cuEventCreate", d.drv.cuEventCreate(&e, flags))
	return Event(e), err
}

// DestroyEvent destroys an event from NewEvent.
func (d *Device) DestroyEvent(e Event) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	return d.drv.check("cuEventDestroy_v2", d.drv.cuEventDestroy(uintptr(e)))
}

// RecordEvent records e at the current end of s.
func (d *Device) RecordEvent(e Event, s Stream) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	return d.drv.check("cuEventRecord", d.drv.cuEventRecord(uintptr(e), uintptr(s)))
}

// StreamWaitEvent makes the work queued on s after this call wait for e.
func (d *Device) StreamWaitEvent(s Stream, e Event) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	return d.drv.check("cuStreamWaitEvent", d.drv.cuStreamWaitEvent(uintptr(s), uintptr(e), 0))
}

// EventSynchronize blocks until the work before e's record is done.
func (d *Device) EventSynchronize(e Event) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	return d.drv.check("cuEventSynchronize", d.drv.cuEventSynchronize(uintptr(e)))
}

// ElapsedMs returns the milliseconds between two recorded timing events.
func (d *Device) ElapsedMs(start, end Event) (float32, error) {
	if err := d.lock(); err != nil {
		return 0, err
	}
	defer d.unlock()
	var ms float32
	err := d.drv.check("cuEventElapsedTime", d.drv.cuEventElapsedTime(&ms, uintptr(start), uintptr(end)))
	return ms, err
}

// CompileLog is what NVRTC said while compiling a module (warnings).
type CompileLog string

// LoadModule compiles src with NVRTC for the device (once per process and
// source) and loads it; Launch then finds its kernels by name. opts are
// extra NVRTC options.
func (d *Device) LoadModule(name, src string, opts []string) (CompileLog, error) {
	image, log, err := d.rtc.compile(name, src, d.info.Target, opts, d.opts.KernelCache)
	if err != nil {
		return CompileLog(log), err
	}
	if err := d.lock(); err != nil {
		return CompileLog(log), err
	}
	defer d.unlock()
	var m uintptr
	if err := d.drv.check("cuModuleLoadData", d.drv.cuModuleLoadData(&m, unsafe.Pointer(&image[0]))); err != nil {
		return CompileLog(log), fmt.Errorf("%w (module %s for %s)", err, name, d.info.Target.Option())
	}
	runtime.KeepAlive(image)
	d.modules = append(d.modules, m)
	return CompileLog(log), nil
}

// function returns the kernel called name from the loaded modules.
func (d *Device) function(name string) (uintptr, error) {
	if f, ok := d.funcs[name]; ok {
		return f, nil
	}
	for _, m := range d.modules {
		var f uintptr
		if d.drv.cuModuleGetFunction(&f, m, name) == cudaSuccess {
			d.funcs[name] = f
			return f, nil
		}
	}
	return 0, fmt.Errorf("cuda: no kernel %q in the %d loaded modules", name, len(d.modules))
}

// Launch queues kernel name on s with the given grid, block, dynamic shared
// memory and arguments (see PackArgs for the types allowed).
func (d *Device) Launch(name string, grid, block Dim3, shmem int, s Stream, args ...any) error {
	if len(args) > maxKernelArgs {
		return fmt.Errorf("cuda: kernel %s: %d arguments, at most %d", name, len(args), maxKernelArgs)
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	f, err := d.function(name)
	if err != nil {
		return err
	}
	if d.args == nil {
		if _, d.args, err = cBytes(16 * maxKernelArgs); err != nil {
			return err
		}
	}
	vals := unsafe.Slice((*byte)(d.args), 8*maxKernelArgs)
	if err := PackArgs(vals, args); err != nil {
		return fmt.Errorf("cuda: kernel %s: %w", name, err)
	}
	ptrs := unsafe.Slice((*unsafe.Pointer)(unsafe.Add(d.args, 8*maxKernelArgs)), maxKernelArgs)
	for i := range args {
		ptrs[i] = unsafe.Pointer(&vals[8*i])
	}
	r := d.drv.cuLaunchKernel(f, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, uint32(shmem), uintptr(s),
		unsafe.Add(d.args, 8*maxKernelArgs), nil)
	if err := d.drv.check("cuLaunchKernel", r); err != nil {
		return fmt.Errorf("%w (kernel %s, grid %v, block %v)", err, name, grid, block)
	}
	return nil
}

// Sgemm queues g on s through cuBLAS (ErrNoBLAS without it).
func (d *Device) Sgemm(s Stream, g Gemm) error {
	if d.bl == nil {
		return ErrNoBLAS
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	return d.bl.sgemm(s, g)
}
