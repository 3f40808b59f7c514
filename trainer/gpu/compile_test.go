package gpu

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sslight-go/sslight/trainer/cuda"
	"github.com/sslight-go/sslight/trainer/gpu/kernels"
)

// TestKernelsCompileWithNVRTC compiles the kernels with the real NVRTC,
// which needs no GPU, when the library is found (SSLIGHT_CUDA_LIBS,
// LD_LIBRARY_PATH, the system folders): a CUBIN for the newest
// architecture it supports and PTX, with the executor's options.
func TestKernelsCompileWithNVRTC(t *testing.T) {
	rtc, err := cuda.OpenNVRTC(nil, nil)
	if errors.Is(err, cuda.ErrNotFound) {
		t.Skip("NVRTC not found (set SSLIGHT_CUDA_LIBS to its folder to run this)")
	}
	if err != nil {
		t.Fatal(err)
	}
	archs := rtc.SupportedArchs()
	if len(archs) == 0 {
		t.Fatalf("NVRTC %s at %s lists no architectures", rtc.Version(), rtc.Path())
	}
	newest := archs[len(archs)-1]
	for _, target := range []cuda.Target{{Arch: newest}, {Arch: min(newest, 80), PTX: true}} {
		image, log, err := rtc.CompileOnly("sslight_kernels.cu", kernels.NVRTCSource(), target, kernelOptions)
		if err != nil {
			t.Fatalf("NVRTC %s, %s: %v", rtc.Version(), target.Option(), err)
		}
		if log != "" {
			t.Logf("NVRTC %s, %s says: %s", rtc.Version(), target.Option(), log)
		}
		if target.PTX {
			for _, k := range kernels.Kernels() {
				if !bytes.Contains(image, []byte(".entry "+k.Name+"(")) {
					t.Errorf("PTX has no entry %s", k.Name)
				}
			}
		} else if !bytes.HasPrefix(image, []byte("\x7fELF")) {
			t.Errorf("%s: the CUBIN is not an ELF image", target.Option())
		}
		t.Logf("NVRTC %s (%s): %s, %d bytes", rtc.Version(), rtc.Path(), target.Option(), len(image))
	}
}
