package measure

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/backbone"
)

// TestRun checks the counts against PyTorch (torchvision's ResNet-18 with
// the classifier replaced by Identity, FLOPs as fvcore counts them; the
// numbers of trainer/backbone's TestFLOPsExact) and that the phases asked
// for, and only those, are timed.
func TestRun(t *testing.T) {
	ctx := context.Background()
	procs := runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		cfg          Config
		train, infer bool
	}{
		{Config{Arch: "resnet18", Options: backbone.Options{Seed: 1}, Size: 32, Batch: 2}, false, false},
		{Config{Arch: "resnet18", Options: backbone.Options{Seed: 1}, Size: 32, Batch: 2, Steps: 1, Mode: ModeInfer, Threads: 1}, false, true},
		{Config{Arch: "resnet18", Options: backbone.Options{Seed: 1}, Size: 32, Batch: 2, Steps: 1, Mode: ModeTrain}, true, false},
	} {
		rep, err := Run(ctx, tc.cfg)
		if err != nil {
			t.Fatalf("%+v: %v", tc.cfg, err)
		}
		if rep.Params != 11176512 || rep.FLOPs != 37113344 || rep.Width != 1 || rep.Patch != 0 {
			t.Errorf("%+v: %d parameters, %d FLOPs, width %v, patch %d; want 11176512, 37113344, 1, 0", tc.cfg, rep.Params, rep.FLOPs, rep.Width, rep.Patch)
		}
		if (rep.Train != nil) != tc.train || (rep.Infer != nil) != tc.infer {
			t.Errorf("%+v: train timed %v, inference timed %v", tc.cfg, rep.Train != nil, rep.Infer != nil)
		}
		for _, p := range []*Phase{rep.Train, rep.Infer} {
			if p != nil && (p.ImagesPerS <= 0 || p.SecondsPerRun <= 0) {
				t.Errorf("%+v: phase %+v", tc.cfg, p)
			}
		}
		if tc.cfg.Threads == 1 && rep.Threads != 1 {
			t.Errorf("threads 1: the report says %d", rep.Threads)
		}
		if runtime.GOMAXPROCS(0) != procs {
			t.Errorf("%+v: GOMAXPROCS left at %d, was %d", tc.cfg, runtime.GOMAXPROCS(0), procs)
		}
	}
	// A ViT reports its patch (16 by default), not a width.
	rep, err := Run(ctx, Config{Arch: "vit_tiny", Size: 64, Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Patch != 16 || rep.Width != 0 {
		t.Errorf("vit_tiny: patch %d width %v, want 16 and none", rep.Patch, rep.Width)
	}
}

func TestRunRefusesBadConfigs(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Arch: "resnet18", Size: 0, Batch: 1}, "size 0"},
		{Config{Arch: "resnet18", Size: 32, Batch: 0}, "batch 0"},
		{Config{Arch: "resnet18", Size: 32, Batch: 1, Steps: -1}, "steps -1"},
		{Config{Arch: "resnet18", Size: 32, Batch: 1, Threads: -1}, "threads -1"},
		{Config{Arch: "resnet18", Size: 32, Batch: 1, Mode: "eval"}, `mode "eval"`},
		{Config{Arch: "resnet101", Size: 32, Batch: 1}, `unknown architecture "resnet101"`},
		{Config{Arch: "vit_tiny", Options: backbone.Options{PatchSize: 32}, Size: 16, Batch: 1}, "too small for its 32x32 kernel"},
	} {
		if _, err := Run(context.Background(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestReportWriters(t *testing.T) {
	r := &Report{Arch: "resnet18", Width: 0.25, SmallStem: true, Size: 32, Batch: 4, Steps: 2, Threads: 2, BLAS: "*blas.Implementation",
		Params: 11176512, FLOPs: 37113344, GFLOPs: 0.037113344,
		Infer: &Phase{ImagesPerS: 100, ImagesPerCPUS: 60, SecondsPerRun: 0.04, PeakRSSMiB: 80}, PeakRSSMiB: 90}
	var tab bytes.Buffer
	if err := r.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	want := "model       resnet18 width 0.25, small-image stem\n" +
		"parameters  11.18 M (11176512, classifier excluded)\n" +
		"GFLOPs      0.037 at 32x32 (37113344 multiply-accumulates, fvcore's convention)\n" +
		"threads     2 (GOMAXPROCS), blas *blas.Implementation\n" +
		"inference   100.0 images/s (batch 4, 2 steps, 0.040 s/step, 60.0 images per CPU-second), peak RSS 80 MiB\n" +
		"peak RSS    90 MiB (whole process)\n"
	if tab.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", tab.String(), want)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || strings.Count(js.String(), "\n") != 1 {
		t.Fatalf("JSON line %q: %v", js.String(), err)
	}
	// The names bench/backbone_ratio.sh reads.
	for _, k := range []string{"arch", "params", "flops", "gflops", "infer", "peak_rss_mib", "threads", "batch", "size", "blas"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON report lacks %q: %s", k, js.String())
		}
	}
	if inf := back["infer"].(map[string]any); inf["images_per_s"] != 100.0 || inf["images_per_cpu_s"] != 60.0 || inf["peak_rss_mib"] != 80.0 {
		t.Errorf("infer phase %v", inf)
	}
}
