//go:build cgo

package check

import (
	"os"
	"testing"

	"github.com/sslight-go/sslight/trainer/gpu"
	"github.com/sslight-go/sslight/trainer/gpu/hostemu"
)

// The device backend on the host emulation, twice: with its own GEMM
// kernel (a device without cuBLAS) and with a host SGEMM in cuBLAS's place
// (a GPU's configuration). Whole backbones on the emulation take a minute,
// so TestBackbones runs them only with SSLIGHT_EMU_BACKBONES=1 (they
// passed at the same tolerances as the CPU backend when this was written).
func init() {
	testBackends = append(testBackends,
		backend{"hostemu", func(t *testing.T) gpu.Backend {
			d := hostemu.New()
			t.Cleanup(d.Close)
			return gpu.NewDeviceBackend(d, gpu.DeviceOptions{})
		}, true},
		backend{"hostemu+blas", func(t *testing.T) gpu.Backend {
			d := hostemu.New()
			d.HostBLAS = true
			t.Cleanup(d.Close)
			return gpu.NewDeviceBackend(d, gpu.DeviceOptions{})
		}, os.Getenv("SSLIGHT_EMU_BACKBONES") == ""})
}
