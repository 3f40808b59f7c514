//go:build cgo

package gpu

import (
	"testing"

	"github.com/sslight-go/sslight/trainer/gpu/hostemu"
)

// The extractor on the host emulation, through the upload pipeline.
func init() {
	extractorBackends = append(extractorBackends, func(t *testing.T) (Backend, StreamDevice) {
		d := hostemu.New()
		d.HostBLAS = true
		t.Cleanup(d.Close)
		s, _ := d.NewStream()
		return NewDeviceBackend(d, DeviceOptions{Stream: s}), d
	})
}

// The emulation stands in for a CUDA device in both roles.
var (
	_ KernelDevice = (*hostemu.Device)(nil)
	_ StreamDevice = (*hostemu.Device)(nil)
)
