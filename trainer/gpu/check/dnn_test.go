package check

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/cuda"
	"github.com/sslight-go/sslight/trainer/gpu"
)

// fakeDNNDevice opens a cuda.Device over trainer/cuda's fake libraries
// (testdata/fakecuda.c, built with gcc here): host memory and a textbook
// cuDNN, so that the device backend's cuDNN calls (descriptor shapes,
// pointer order, accumulation flags) run end to end on the CPU.
func fakeDNNDevice(t *testing.T) *cuda.Device {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found")
	}
	dir := t.TempDir()
	so := filepath.Join(dir, "libfake.so")
	if out, err := exec.Command(gcc, "-shared", "-fPIC", "-O1", "-o", so, "../../cuda/testdata/fakecuda.c", "-lm").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	for _, n := range []string{"libcuda.so.1", "libnvrtc.so.13", "libcudnn.so.9"} {
		if err := os.Symlink(so, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := cuda.Open(cuda.Options{
		Getenv: func(k string) string {
			if k == cuda.EnvLibs {
				return dir
			}
			return ""
		},
		Opener: func(p string) (uintptr, error) {
			if !strings.HasPrefix(p, dir+"/") {
				return 0, errors.New("outside the test folder")
			}
			return cuda.Dlopen(p)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if !d.HasDNN() || d.HasBLAS() {
		t.Fatalf("fake device: cuDNN %v, cuBLAS %v; want cuDNN only", d.HasDNN(), d.HasBLAS())
	}
	return d
}

// TestDNNCallsThroughFake runs the convolution and training-mode
// BatchNorm cases through the device backend's cuDNN paths against
// trainer/nn.
func TestDNNCallsThroughFake(t *testing.T) {
	d := fakeDNNDevice(t)
	be := gpu.NewDeviceBackend(d, gpu.DeviceOptions{DNNBatchNorm: true})
	if !be.UsesDNN() {
		t.Fatal("the backend does not use cuDNN")
	}
	ran := 0
	for i, c := range OpCases() {
		conv := strings.HasPrefix(c.Name, "conv") && !strings.Contains(c.Name, "+bias")
		bn := strings.HasPrefix(c.Name, "batchnorm") && strings.Contains(c.Name, "train=true act=none")
		if !conv && !bn {
			continue // the other ops launch kernels, which the fake driver has not
		}
		ran++
		if r := c.Check(be, uint64(i)); r.Err != "" || r.Worst > OpTol {
			t.Errorf("%s: worst %.3g at %s %s", c.Name, r.Worst, r.Where, r.Err)
		}
	}
	if ran < 15 {
		t.Fatalf("only %d cases ran", ran)
	}
}
