package check

import (
	"testing"

	"github.com/sslight-go/sslight/trainer/gpu"
)

// backend is a backend the tests run the checks on.
type backend struct {
	name string
	make func(t *testing.T) gpu.Backend
	// opsOnly backends are too slow for whole backbones.
	opsOnly bool
}

// testBackends are the CPU backend and, with cgo, the device backend on
// the host emulation (emu_test.go adds it).
var testBackends = []backend{{"cpu", func(*testing.T) gpu.Backend { return gpu.NewCPU() }, false}}

// TestOpCases checks every op against trainer/nn to 1e-5 of each tensor's
// scale, on each backend.
func TestOpCases(t *testing.T) {
	for _, b := range testBackends {
		be := b.make(t)
		for i, c := range OpCases() {
			r := c.Check(be, uint64(i))
			t.Logf("%s: %s: worst %.3g at %s", b.name, c.Name, r.Worst, r.Where)
			if r.Err != "" || r.Worst > 1e-5 {
				t.Errorf("%s: %s: worst %.3g at %s %s", b.name, c.Name, r.Worst, r.Where, r.Err)
			}
		}
		if st := be.Allocator().Stats(); st.InUse != 0 {
			t.Errorf("%s: %d bytes still in use after the op cases", b.name, st.InUse)
		}
	}
}

// TestBackbones runs resnet18, mobilenet_v2 and vit_tiny/16 through the
// executor on each backend against the gorgonia backbones: embeddings,
// every gradient and the running statistics within 1e-4 of each tensor's
// scale (see BackboneCases for MobileNetV2's training-mode gradients).
func TestBackbones(t *testing.T) {
	for _, b := range testBackends {
		if b.opsOnly {
			continue
		}
		be := b.make(t)
		for _, c := range BackboneCases() {
			if testing.Short() && c.Opts.Width == 0 {
				continue // the full-width ResNet-18 takes a second without OpenBLAS
			}
			r := CheckBackbone(be, c)
			t.Logf("%s: %s: output %.2g, input gradient %.2g, worst gradient %.2g (%s), statistics %.2g; %.2fs (gorgonia %.2fs)",
				b.name, r.Case, r.Output, r.InputGrad, r.Grad, r.GradParam, r.Stats, r.Seconds, r.RefSeconds)
			if !r.Pass(1e-4) {
				t.Errorf("%s: %s fails: %+v", b.name, r.Case, r)
			}
		}
		if st := be.Allocator().Stats(); st.InUse != 0 {
			t.Errorf("%s: %d bytes still in use", b.name, st.InUse)
		}
	}
}
