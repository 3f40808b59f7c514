package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// TestDeviceCUDAWithoutDriver: on a machine without the NVIDIA driver (CI
// has none), every command that takes --device cuda fails at once, before
// reading any input, with the error that names what was looked for.
func TestDeviceCUDAWithoutDriver(t *testing.T) {
	if _, err := cuda.FindLibraries(os.Getenv, cuda.Dlopen); err == nil {
		t.Skip("the CUDA libraries are installed here: the no-driver errors cannot be seen (bench/gpu_check.sh checks the GPU path)")
	}
	ctx := context.Background()
	for name, run := range map[string]func() error{
		"pretrain": func() error {
			return runPretrain(ctx, []string{"--config", "dino_fmnist_sslight", "--shards", "/nonexistent", "--out", t.TempDir(), "--device", "cuda"})
		},
		"pretrain TRAIN.DEVICE": func() error {
			return runPretrain(ctx, []string{"--config", "dino_fmnist_sslight", "--shards", "/nonexistent", "--out", t.TempDir(), "--set", "TRAIN.DEVICE=cuda"})
		},
		"eval": func() error {
			return runEval(ctx, []string{"--checkpoint", "/nonexistent", "--train", "/nonexistent", "--val", "/nonexistent", "--out", t.TempDir(), "--device", "cuda"})
		},
		"embed": func() error {
			return runEmbed(ctx, []string{"--checkpoint", "/nonexistent", "--source", "/nonexistent", "--out", t.TempDir(), "--device", "cuda"})
		},
	} {
		err := run()
		if err == nil || !strings.Contains(err.Error(), "--device cuda") || !strings.Contains(err.Error(), "libcuda.so.1") ||
			!strings.Contains(err.Error(), "SSLIGHT_CUDA_LIBS") || strings.Contains(err.Error(), "/nonexistent") {
			t.Errorf("%s --device cuda: err %v, want the missing driver named before any input is read", name, err)
		}
	}
	if err := runEmbed(ctx, []string{"--checkpoint", "x", "--source", "y", "--out", "z", "--device", "tpu"}); err == nil || !strings.Contains(err.Error(), "want cpu, cuda or auto") {
		t.Errorf("--device tpu: %v", err)
	}
}
