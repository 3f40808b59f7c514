package gpu

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/cuda"
	"github.com/sslight-go/sslight/trainer/features"
)

// extractorBackends are where the extractor is tested: the CPU backend and,
// with cgo, the device backend on the host emulation with its pipeline
// (extract_emu_test.go).
var extractorBackends = []func(t *testing.T) (Backend, StreamDevice){
	func(*testing.T) (Backend, StreamDevice) { return NewCPU(), nil },
}

// TestExtractorMatchesFeatures compares the extractor with
// trainer/features, the CPU trainer's extractor, on the same random-init
// backbone: several batches and a short last one, for a CNN and a ViT.
func TestExtractorMatchesFeatures(t *testing.T) {
	for _, mk := range extractorBackends {
		for _, tc := range []struct {
			arch  features.Arch
			size  int
			views int
		}{
			{features.Arch{Name: "resnet18", Width: 0.25}, 32, 5},
			{features.Arch{Name: "vit_tiny", PatchSize: 16}, 32, 3},
		} {
			ref, err := features.NewRandomInit(tc.arch, 7)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			views := make([][]float32, tc.views)
			for i := range views {
				views[i] = make([]float32, 3*tc.size*tc.size)
				for j := range views[i] {
					views[i][j] = float32(rng.NormFloat64())
				}
			}
			want, err := ref.Extract(views, tc.size, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := backbone.New(tc.arch.Name, backbone.Options{Seed: 7, Width: tc.arch.Width, PatchSize: tc.arch.PatchSize})
			be, sd := mk(t)
			e, err := NewBackendExtractor(be, sd, b)
			if err != nil {
				t.Fatal(err)
			}
			e.BatchSize = 2
			got, err := e.Extract(views, tc.size, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || e.Dim(tc.size, tc.size) != ref.Dim(tc.size, tc.size) {
				t.Fatalf("%s: %d features of dimension %d, want %d of %d", tc.arch.Name, len(got), e.Dim(tc.size, tc.size), len(want), ref.Dim(tc.size, tc.size))
			}
			var diff, scale float64
			for i := range want {
				diff = max(diff, math.Abs(float64(got[i]-want[i])))
				scale = max(scale, math.Abs(float64(want[i])))
			}
			if diff > 1e-4*scale {
				t.Errorf("%s on %s: features differ by %.2g of their scale", tc.arch.Name, be.Name(), diff/scale)
			}
			// Another batch size, the same features.
			e.BatchSize = 0
			again, err := e.Extract(views, tc.size, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if math.Abs(float64(again[i]-got[i])) > 1e-5*scale {
					t.Fatalf("%s: batch size changed feature %d: %g vs %g", tc.arch.Name, i, again[i], got[i])
				}
			}
			if _, err := e.Extract([][]float32{make([]float32, 5)}, tc.size, tc.size); err == nil || !strings.Contains(err.Error(), "view 0") {
				t.Errorf("a short view: %v", err)
			}
			if out, err := e.Extract(nil, tc.size, tc.size); err != nil || len(out) != 0 {
				t.Errorf("no views: %v, %v", out, err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if st := be.Allocator().Stats(); st.InUse != 0 {
				t.Errorf("%s: %d bytes in use after Close", be.Name(), st.InUse)
			}
		}
	}
}

func TestSelect(t *testing.T) {
	p, err := Select("cpu", DeviceConfig{})
	if err != nil || p.Name != "cpu" || p.Device != nil {
		t.Fatalf("Select(cpu) = %+v, %v", p, err)
	}
	if _, err := Select("tpu", DeviceConfig{}); err == nil || !strings.Contains(err.Error(), "cpu, cuda, auto") {
		t.Fatalf("Select(tpu): %v", err)
	}
	// No library in these folders (the machine's own are shadowed only if
	// it has none): cuda must fail and say why, auto must fall back.
	empty := func(k string) string {
		if k == cuda.EnvLibs {
			return t.TempDir()
		}
		return ""
	}
	p, err = Select("cuda", DeviceConfig{Getenv: empty})
	if err == nil {
		p.Device.Close()
		t.Skip("a CUDA device opened on this machine")
	}
	if !errors.Is(err, cuda.ErrNotFound) || !strings.Contains(err.Error(), "libcuda.so.1") || !strings.Contains(err.Error(), "--device cuda") {
		t.Fatalf("Select(cuda) on a machine without a driver: %v", err)
	}
	p, err = Select("auto", DeviceConfig{Getenv: empty})
	if err != nil || p.Name != "cpu" || !strings.Contains(p.Note, "libcuda.so.1") {
		t.Fatalf("Select(auto) = %+v, %v", p, err)
	}
}
