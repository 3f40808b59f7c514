package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/trainer/gpu"
)

// deviceUsage is the --device flag's help, shared by every command with one.
const deviceUsage = "where the models run: cpu; cuda, an NVIDIA GPU through the CUDA libraries loaded at run time (fails at once without a driver, naming\n" +
	"every library and folder it looked in; SSLIGHT_CUDA_LIBS adds folders); or auto, the GPU when one opens (default TRAIN.DEVICE, else cpu).\n" +
	"THE GPU PATH HAS NOT YET RUN ON A GPU"

func addDeviceFlag(fs *cli.FlagSet) *string {
	return fs.String("device", "", deviceUsage)
}

// deviceOf is the flag's choice, else the config's TRAIN.DEVICE, else cpu.
func deviceOf(flag, config string) string {
	switch {
	case flag != "":
		return flag
	case config != "":
		return config
	}
	return evaluate.DeviceCPU
}

// checkTrainingDevice refuses, before any work, a training device this
// build cannot train on: the CUDA backend runs the backbones (evaluation,
// embedding) but the training step on the GPU is not built yet. "auto"
// trains on the CPU.
func checkTrainingDevice(name string) error {
	switch name {
	case "", evaluate.DeviceCPU:
		return nil
	case evaluate.DeviceAuto:
		fmt.Fprintln(os.Stderr, "pretrain: --device auto: training runs on the CPU (training on the GPU is not built yet)")
		return nil
	case evaluate.DeviceCUDA:
	default:
		return fmt.Errorf("device %q (--device or TRAIN.DEVICE): want cpu, cuda or auto", name)
	}
	p, err := gpu.Select(name, gpu.DeviceConfig{Getenv: os.Getenv})
	if err != nil {
		return err // names the missing driver and where it was looked for
	}
	p.Device.Close()
	return errors.New("--device cuda: training on the GPU is not built yet (a CUDA device was found; sslight eval and embed run their models on it with --device cuda): train with --device cpu")
}
