package gpu

import (
	"fmt"
	"strings"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// DeviceConfig configures OpenDevice and Select.
type DeviceConfig struct {
	// Ordinal is the CUDA device index.
	Ordinal int
	// TF32 lets cuBLAS and cuDNN use TF32 tensor cores (off: FP32 as the
	// CPU trainer).
	TF32 bool
	// NoBLAS and NoDNN leave cuBLAS and cuDNN unused even when found (the
	// package's kernels run instead).
	NoBLAS, NoDNN bool
	// DNNBatchNorm runs BatchNorm through cuDNN (see DeviceOptions).
	DNNBatchNorm bool
	// ConvBenchmark times cuDNN's convolution algorithms per shape.
	ConvBenchmark bool
	// WorkspaceLimit bounds one convolution's scratch memory (0: 256 MiB).
	WorkspaceLimit int
	// Getenv reads the environment for the library search (nil:
	// os.Getenv).
	Getenv func(string) string
	// KernelCache is a folder keeping the compiled kernels between
	// processes (empty: compile once per process).
	KernelCache string
}

// Device is an opened CUDA device ready for the executor: the kernels
// compiled and loaded, a compute stream, and the backend queuing on it.
type Device struct {
	CUDA    *cuda.Device
	Backend *DeviceBackend
	Stream  cuda.Stream
}

// OpenDevice opens CUDA device c.Ordinal (see cuda.Open for the library
// search and its errors), compiles the kernels for it and returns the
// executor's device.
func OpenDevice(c DeviceConfig) (*Device, error) {
	dev, err := cuda.Open(cuda.Options{Ordinal: c.Ordinal, TF32: c.TF32, NoBLAS: c.NoBLAS, NoDNN: c.NoDNN,
		ConvBenchmark: c.ConvBenchmark, Getenv: c.Getenv, KernelCache: c.KernelCache})
	if err != nil {
		return nil, err
	}
	if err := LoadKernels(dev); err != nil {
		dev.Close()
		return nil, err
	}
	s, err := dev.NewStream()
	if err != nil {
		dev.Close()
		return nil, err
	}
	be := NewDeviceBackend(dev, DeviceOptions{Stream: s, NoDNN: c.NoDNN, DNNBatchNorm: c.DNNBatchNorm, WorkspaceLimit: c.WorkspaceLimit})
	return &Device{CUDA: dev, Backend: be, Stream: s}, nil
}

// Close returns the cached memory, destroys the stream and closes the
// device.
func (d *Device) Close() error {
	errs := []error{d.Backend.Synchronize(), d.Backend.Allocator().EmptyCache(), d.CUDA.DestroyStream(d.Stream), d.CUDA.Close()}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Placement is where Select put the computation.
type Placement struct {
	// Name is "cpu" or "cuda".
	Name string
	// Device is the opened GPU (nil on the CPU).
	Device *Device
	// Note says why "auto" chose the CPU (empty otherwise).
	Note string
}

// Devices are the names Select accepts.
var Devices = []string{"cpu", "cuda", "auto"}

// Select resolves a --device flag: "cpu" (the gorgonia trainer), "cuda"
// (device c.Ordinal, an error when it cannot be opened: without a driver
// the error names every library looked for and what to do), or "auto"
// (cuda when it opens, else cpu with the reason in Note).
func Select(name string, c DeviceConfig) (Placement, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "cpu":
		return Placement{Name: "cpu"}, nil
	case "cuda", "gpu":
		d, err := OpenDevice(c)
		if err != nil {
			return Placement{}, fmt.Errorf("--device cuda: %w", err)
		}
		return Placement{Name: "cuda", Device: d}, nil
	case "auto", "":
		d, err := OpenDevice(c)
		if err != nil {
			return Placement{Name: "cpu", Note: "no usable CUDA device: " + err.Error()}, nil
		}
		return Placement{Name: "cuda", Device: d}, nil
	}
	return Placement{}, fmt.Errorf("--device %q: want one of %s", name, strings.Join(Devices, ", "))
}
