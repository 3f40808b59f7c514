package check

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/gpu"
)

// OpTol is the ops' tolerance: 1e-5 of each tensor's scale.
const OpTol = 1e-5

// BackboneTol is the backbones' tolerance: 1e-4 of each tensor's scale.
const BackboneTol = 1e-4

// Emit writes rec as one JSON line.
func Emit(w io.Writer, rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// RunOps checks every op case on be, emitting a record per case, and
// returns how many failed. Cases still waiting at the deadline are
// reported as one error record.
func RunOps(be gpu.Backend, variant string, deadline time.Time, out, log io.Writer) int {
	failed := 0
	cases := OpCases()
	for i, c := range cases {
		if time.Now().After(deadline) {
			Emit(out, ErrorRecord{Phase: "error", Stage: "ops " + variant, Err: fmt.Sprintf("out of time: %d of %d cases not run", len(cases)-i, len(cases))})
			return failed + len(cases) - i
		}
		r := c.Check(be, uint64(i))
		rec := NewOpRecord(variant, r, OpTol)
		if !rec.Pass {
			failed++
		}
		Emit(out, rec)
		fmt.Fprintf(log, "op [%s] %-48s worst %-8s %s\n", variant, c.Name, fmtNum(rec.Worst), passWord(rec.Pass))
	}
	return failed
}

func passWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

// DeviceBackboneCases are the device check's backbone cases: every
// architecture, training and evaluation mode, at sizes where the
// gorgonia reference on a many-core host takes seconds and training-mode
// BatchNorm keeps at least 32 values per channel (see BackboneCases for
// MobileNetV2's training-mode gradients).
func DeviceBackboneCases() []BackboneCase {
	var cs []BackboneCase
	for _, train := range []bool{true, false} {
		cs = append(cs,
			BackboneCase{Arch: "resnet18", Opts: backbone.Options{Seed: 3}, Batch: 8, Size: 112, Train: train},
			BackboneCase{Arch: "resnet34", Opts: backbone.Options{Seed: 3}, Batch: 8, Size: 96, Train: train},
			BackboneCase{Arch: "resnet50", Opts: backbone.Options{Seed: 3}, Batch: 4, Size: 96, Train: train},
			BackboneCase{Arch: "mobilenet_v2", Opts: backbone.Options{Seed: 4}, Batch: 8, Size: 112, Train: train},
			BackboneCase{Arch: "vit_tiny", Opts: backbone.Options{Seed: 5, PatchSize: 16, DropPath: 0.1}, Batch: 4, Size: 224, Train: train},
			BackboneCase{Arch: "vit_tiny", Opts: backbone.Options{Seed: 5, PatchSize: 16, DropPath: 0.1}, Batch: 4, Size: 96, Train: train},
			BackboneCase{Arch: "vit_tiny", Opts: backbone.Options{Seed: 5, PatchSize: 32}, Batch: 4, Size: 224, Train: train},
			BackboneCase{Arch: "vit_small", Opts: backbone.Options{Seed: 6, PatchSize: 16, DropPath: 0.1}, Batch: 2, Size: 224, Train: train},
		)
	}
	for i := range cs {
		if cs[i].Arch == "mobilenet_v2" && cs[i].Train {
			cs[i].GradTol = 5e-2
		}
	}
	return cs
}

// RunBackbones checks cases on be, emitting a record per case, and
// returns how many failed (or were not run before the deadline).
func RunBackbones(be gpu.Backend, variant string, cases []BackboneCase, deadline time.Time, out, log io.Writer) int {
	failed := 0
	for i, c := range cases {
		if time.Now().After(deadline) {
			Emit(out, ErrorRecord{Phase: "error", Stage: "backbones " + variant, Err: fmt.Sprintf("out of time: %d of %d cases not run", len(cases)-i, len(cases))})
			return failed + len(cases) - i
		}
		r := CheckBackbone(be, c)
		rec := NewBackboneRecord(variant, r, BackboneTol)
		if !rec.Pass {
			failed++
		}
		Emit(out, rec)
		fmt.Fprintf(log, "backbone [%s] %-36s out %-7s dx %-7s grad %-7s (%s) stats %-7s %.1fs (CPU %.1fs) %s %s\n", variant, r.Case,
			fmtNum(rec.Output), fmtNum(rec.InputGrad), fmtNum(rec.Grad), r.GradParam, fmtNum(rec.Stats), r.Seconds, r.RefSeconds,
			passWord(rec.Pass), r.Err)
	}
	return failed
}

// RunBench measures cases on be, emitting a record per case.
func RunBench(be gpu.Backend, cases []BenchCase, deadline time.Time, out, log io.Writer) {
	for i, c := range cases {
		if time.Now().After(deadline) {
			Emit(out, ErrorRecord{Phase: "error", Stage: "bench", Err: fmt.Sprintf("out of time: %d of %d measurements not run", len(cases)-i, len(cases))})
			return
		}
		r := Bench(be, c)
		Emit(out, NewBenchRecord(r))
		fmt.Fprintf(log, "bench %-26s %8.0f images/s, peak %6.0f MiB (reserved %6.0f) %s\n", c.Key(), r.ImagesPerSec, r.PeakMiB, r.ReservedMiB, r.Err)
		// Each measurement starts from an empty cache, as PyTorch's side
		// (bench/gpu_torch.py) empties its own between measurements.
		if err := be.Allocator().EmptyCache(); err != nil {
			Emit(out, ErrorRecord{Phase: "error", Stage: "bench", Err: err.Error()})
		}
	}
}
