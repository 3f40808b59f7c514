//go:build cgo

package main

import (
	"github.com/sslight-go/sslight/trainer/gpu"
	"github.com/sslight-go/sslight/trainer/gpu/hostemu"
)

func init() {
	emuBackend = func() (gpu.Backend, func(), error) {
		d := hostemu.New()
		d.HostBLAS = true
		return gpu.NewDeviceBackend(d, gpu.DeviceOptions{}), d.Close, nil
	}
}
