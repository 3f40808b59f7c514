package check

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/gpu"
)

// TestReportTable feeds records of every kind, a line cut off by a
// time-out and stray output through ParseResults and Table.
func TestReportTable(t *testing.T) {
	var in bytes.Buffer
	emit := func(rec any) {
		if err := Emit(&in, rec); err != nil {
			t.Fatal(err)
		}
	}
	emit(InfoRecord{Phase: "info", Device: "NVIDIA H200", Details: map[string]any{"cudnn": "9.10", "sms": 132}})
	emit(NewOpRecord("cudnn", OpResult{Case: "conv a", Worst: 2e-7, Where: "output"}, OpTol))
	emit(NewOpRecord("cudnn", OpResult{Case: "conv b", Worst: 3e-3, Where: "gradient 1"}, OpTol))
	emit(NewOpRecord("own", OpResult{Case: "conv a", Worst: math.Inf(1), Err: "launch failed"}, OpTol))
	emit(NewBackboneRecord("cudnn", BackboneResult{Case: "resnet18 112x112 b8 train", Output: 1e-6, InputGrad: 2e-6, Grad: 3e-6,
		GradParam: "fc", CountOK: true, NoiseOK: true}, BackboneTol))
	emit(NewBenchRecord(BenchResult{BenchCase: BenchCase{Arch: "resnet18", Size: 224, Batch: 64, Train: true, Steps: 10},
		ImagesPerSec: 1500, PeakMiB: 3000}))
	emit(BenchRecord{Phase: "bench", Side: "pytorch", Arch: "resnet18", Size: 224, Batch: 64, Mode: "train", ImagesPerSec: 3000, PeakMiB: 2500})
	emit(BenchRecord{Phase: "bench", Side: "pytorch", Arch: "mobilenet_v2", Size: 96, Batch: 128, Mode: "train", Err: "CUDA out of memory"})
	emit(ErrorRecord{Phase: "error", Stage: "ops cudnn-bn", Err: "no cuDNN"})
	emit(ErrorRecord{Phase: "error", Stage: "backbones", Err: "no cuDNN"})
	in.WriteString("warning: something printed to stdout\n{\"phase\":\"bench\",\"side\":\"sslight\",\"arch\n")
	res, err := ParseResults(&in)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ops) != 3 || len(res.Backbones) != 1 || len(res.Bench) != 3 || len(res.Errors) != 2 || res.Unreadable != 2 {
		t.Fatalf("parsed %d ops, %d backbones, %d bench, %d errors, %d unreadable", len(res.Ops), len(res.Backbones), len(res.Bench), len(res.Errors), res.Unreadable)
	}
	if !math.IsInf(float64(res.Ops[2].Worst), 1) {
		t.Errorf("a failed case's worst error read back as %v, want +Inf", res.Ops[2].Worst)
	}
	var out bytes.Buffer
	res.Table(&out)
	text := out.String()
	for _, want := range []string{
		"device: NVIDIA H200", "cudnn=9.10 sms=132",
		"FAIL op conv b [cudnn]: 0.003 at gradient 1",
		"ops [cudnn]: 1/2 within tolerance, worst 0.003 (conv b)",
		"ops [own]: 0/1 within tolerance",
		"launch failed",
		"backbones [cudnn]: 1/1 within tolerance",
		"phase ops cudnn-bn failed: no cuDNN",
		"phase backbones failed: the same error as ops cudnn-bn",
		"(2 lines were not records)",
		"pytorch mobilenet_v2 96 b128 train: CUDA out of memory",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	last := lines[len(lines)-1]
	if last != "verdict: 4 parity checks or phases FAILED (see above)" {
		t.Errorf("last line %q", last)
	}
	var row string
	for _, l := range lines {
		if strings.HasPrefix(l, "resnet18 224 b64 train") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 8 || f[4] != "1500" || f[5] != "3000" || f[6] != "0.50" || f[7] != "3000/2500" {
		t.Errorf("throughput row %q: want 1500, 3000, ratio 0.50, memory 3000/2500", row)
	}
}

// TestBenchOnCPU runs one small measurement through Bench: the counters
// it reports are there and the memory is given back.
func TestBenchOnCPU(t *testing.T) {
	be := gpu.NewCPU()
	r := Bench(be, BenchCase{Arch: "resnet18", Size: 16, Batch: 2, Train: true, Steps: 1, Warmup: 1})
	if r.Err != "" || r.ImagesPerSec <= 0 || r.PeakMiB <= 0 || r.ReservedMiB < r.PeakMiB {
		t.Fatalf("%+v", r)
	}
	params := 0
	b, _ := backbone.New("resnet18", backbone.Options{})
	params = backbone.NumParams(b)
	// Weights and gradients at least: 2 × 4 bytes per parameter.
	if r.PeakMiB*(1<<20) < float64(8*params) {
		t.Errorf("peak %.1f MiB below the weights and gradients' %.1f", r.PeakMiB, float64(8*params)/(1<<20))
	}
	if st := be.Allocator().Stats(); st.InUse != 0 {
		t.Errorf("%d bytes in use after the measurement", st.InUse)
	}
	if r := Bench(be, BenchCase{Arch: "nope", Size: 32, Batch: 1, Steps: 1}); r.Err == "" {
		t.Error("an unknown architecture was measured")
	}
}
