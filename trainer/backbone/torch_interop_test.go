package backbone

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sslight-go/sslight/sinks/npy"
	"github.com/sslight-go/sslight/sinks/safetensors"
)

// TestTorchvisionLoadsOurWeights saves randomly initialised backbones with
// StateDict, loads them into torchvision's models with
// load_state_dict(strict=True) (testdata/torch_load.py) and expects the
// same eval-mode embedding from both frameworks. It needs /usr/bin/python3
// with torch and torchvision and skips, saying so, without them.
func TestTorchvisionLoadsOurWeights(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips the PyTorch interop check")
	}
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, torchvision").Run(); err != nil {
		t.Skipf("no %s with torch and torchvision (%v): the PyTorch interop check needs them", py, err)
	}
	// resnet34 and resnet50 too: their 3x3 convolutions run as Winograd
	// (resnet50's inside its bottlenecks), resnet18's as well.
	for _, arch := range []string{"resnet18", "resnet34", "resnet50", "mobilenet_v2"} {
		b, err := New(arch, Options{Seed: 5, Classifier: true})
		if err != nil {
			t.Fatal(err)
		}
		// Non-trivial BatchNorm running statistics, so eval mode uses them.
		for i, e := range BNBuffers(b) {
			for j := range e.F32 {
				if filepath.Ext(e.Name) == ".running_var" {
					e.F32[j] = 0.5 + float32((i+j)%7)/7
				} else {
					e.F32[j] = float32((i*3+j)%5)/10 - 0.2
				}
			}
		}
		dir := t.TempDir()
		weights := filepath.Join(dir, "w.safetensors")
		if err := safetensors.WriteFile(weights, StateDict(b)); err != nil {
			t.Fatal(err)
		}
		x := randInput(9, 2, 3, 64, 64)
		in := filepath.Join(dir, "x.npy")
		f, err := os.Create(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := npy.WriteFloat32(f, x.Shape(), x.Float32s()); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out, err := exec.Command(py, "testdata/torch_load.py", arch, weights, in).Output()
		if err != nil {
			t.Fatalf("%s: torch_load.py: %v", arch, err)
		}
		var want []float32
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatalf("%s: %v (%s)", arch, err, out)
		}
		got := embed(t, b, x)
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, torch %d", arch, len(got), len(want))
		}
		worst := 0.0
		for i := range want {
			worst = max(worst, math.Abs(float64(got[i]-want[i]))/(1e-3+math.Abs(float64(want[i]))))
		}
		if worst > 1e-3 {
			t.Errorf("%s: embeddings differ from torchvision's by up to %.2g (relative)", arch, worst)
		}
		t.Logf("%s: torchvision loads our weights strictly; worst relative difference %.2g", arch, worst)
	}
}
