package evaluate

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/sslight-go/sslight/sinks/featurefile"
	"github.com/sslight-go/sslight/trainer/features"
	"github.com/sslight-go/sslight/trainer/gpu"
	"github.com/sslight-go/sslight/transforms"
)

// The devices the extraction can run its models on (Options.Device).
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
	DeviceAuto = "auto"
)

// process holds the GPU this process opened: every DoFn instance of the
// extraction shares it (one context per device and process).
var process struct {
	sync.Mutex
	dev *gpu.Device
}

// PlaceModels resolves a --device choice for the extraction: "cpu" (or
// ""), "cuda" (the GPU must open: on a machine without a driver the error
// names every library looked for and every folder searched), or "auto"
// (the GPU when one opens, else the CPU, saying why on progress).
func PlaceModels(name string, progress func(string, ...any)) (string, error) {
	switch name {
	case "", DeviceCPU:
		return DeviceCPU, nil
	case DeviceCUDA, DeviceAuto:
	default:
		return "", fmt.Errorf("--device %q: want cpu, cuda or auto", name)
	}
	_, err := openDevice()
	switch {
	case err == nil:
		return DeviceCUDA, nil
	case name == DeviceAuto:
		progress("evaluate: --device auto: the models run on the CPU (no usable CUDA device: %v)", err)
		return DeviceCPU, nil
	}
	return "", fmt.Errorf("--device cuda: %w", err)
}

func openDevice() (*gpu.Device, error) {
	process.Lock()
	defer process.Unlock()
	if process.dev != nil {
		return process.dev, nil
	}
	dev, err := gpu.OpenDevice(gpu.DeviceConfig{Getenv: os.Getenv})
	if err != nil {
		return nil, err
	}
	process.dev = dev
	return dev, nil
}

// deviceExtractor runs a features model's backbone on the GPU.
type deviceExtractor struct {
	model *features.Model
	ex    *gpu.Extractor
}

func (d *deviceExtractor) Dim(h, w int) int { return d.model.Dim(h, w) }
func (d *deviceExtractor) Extract(images [][]float32, h, w int) ([]float32, error) {
	return d.ex.Extract(images, h, w)
}

// onDevice returns m itself on the CPU, or m's backbone on the GPU (raw
// pixels have no network to move).
func onDevice(ctx context.Context, m *features.Model, device string) (transforms.FeatureExtractor, error) {
	if device != DeviceCUDA || m.Mode() == featurefile.ModeRawPixels {
		return m, nil
	}
	dev, err := openDevice()
	if err != nil {
		return nil, fmt.Errorf("--device cuda: %w", err)
	}
	ex, err := gpu.NewExtractor(ctx, dev, m.Backbone())
	if err != nil {
		return nil, fmt.Errorf("--device cuda: %w", err)
	}
	return &deviceExtractor{model: m, ex: ex}, nil
}
