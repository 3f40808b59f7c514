package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"runtime"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/backbone/measure"
)

// TestBenchModelCounts runs `sslight bench model` and checks the parameter
// and FLOP counts against PyTorch: torchvision 0.14's models (classifier
// replaced by Identity; MobileNetV2 at width_mult 0.35 with features.0 at
// stride 1) and DINO's ViT, FLOPs counted by re-doing fvcore's default
// handles over a TorchScript trace (see trainer/backbone's TestFLOPsExact).
func TestBenchModelCounts(t *testing.T) {
	tests := []struct {
		args   []string
		params int
		flops  int64
		timed  bool
	}{
		{[]string{"--arch", "resnet18", "--size", "32", "--batch", "2", "--steps", "1", "--warmup", "0", "--threads", "1"}, 11176512, 37113344, true},
		{[]string{"--arch", "mobilenet_v2", "--width", "0.35", "--small-stem", "--size", "32", "--batch", "2", "--steps", "1", "--mode", "infer"}, 396128, 5207680, true},
		{[]string{"--arch", "vit_tiny", "--patch", "32", "--size", "64", "--steps", "0"}, 5938560, 29136576, false},
	}
	procs := runtime.GOMAXPROCS(0)
	for _, tc := range tests {
		var out bytes.Buffer
		if err := benchModelCommand(context.Background(), append(tc.args, "--json"), &out); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		var rep measure.Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("%v: %v in %q", tc.args, err, out.String())
		}
		if rep.Params != tc.params || rep.FLOPs != tc.flops {
			t.Errorf("%v: %d parameters, %d FLOPs; want %d, %d", tc.args, rep.Params, rep.FLOPs, tc.params, tc.flops)
		}
		if timed := rep.Infer != nil && rep.Infer.ImagesPerS > 0; timed != tc.timed {
			t.Errorf("%v: inference timed %v, want %v (%s)", tc.args, timed, tc.timed, out.String())
		}
		if train := rep.Train != nil; train != (tc.timed && !strings.Contains(strings.Join(tc.args, " "), "infer")) {
			t.Errorf("%v: training phase %v (%s)", tc.args, train, out.String())
		}
		if runtime.GOMAXPROCS(0) != procs {
			t.Errorf("%v: GOMAXPROCS left at %d, was %d", tc.args, runtime.GOMAXPROCS(0), procs)
		}
	}

	// The table says the same in words.
	var out bytes.Buffer
	if err := benchModelCommand(context.Background(), []string{"--arch", "resnet18", "--steps", "0"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"parameters  11.18 M (11176512, classifier excluded)", "GFLOPs      1.819 at 224x224 (1818553856 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table %q lacks %q", out.String(), want)
		}
	}
}

func TestBenchModelErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "--arch is required"},
		{[]string{"--arch", "resnet101"}, `unknown architecture "resnet101"`},
		{[]string{"--arch", "resnet18", "--patch", "16"}, "--patch applies to ViTs, not resnet18"},
		{[]string{"--arch", "vit_tiny", "--patch", "8"}, "patch size 8"},
		{[]string{"--arch", "vit_tiny", "--width", "0.5"}, "CNNs only"},
		{[]string{"--arch", "resnet18", "--size", "0"}, "--size 0"},
		{[]string{"--arch", "resnet18", "--batch", "0"}, "--batch 0"},
		{[]string{"--arch", "resnet18", "--steps", "-1"}, "--steps -1"},
		{[]string{"--arch", "resnet18", "--threads", "-2"}, "--threads -2"},
		{[]string{"--arch", "resnet18", "--mode", "eval"}, `--mode "eval"`},
		{[]string{"--arch", "vit_tiny", "--patch", "32", "--size", "16", "--steps", "0"}, "too small for its 32x32 kernel"},
		{[]string{"--arch", "resnet18", "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		err := benchModelCommand(context.Background(), tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sslight bench model %v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	if err := runBench(context.Background(), []string{"speed"}); err == nil || !strings.Contains(err.Error(), `unknown benchmark "speed"`) {
		t.Errorf("sslight bench speed: err %v", err)
	}
	if err := runBench(context.Background(), []string{"model", "--help"}); err != flag.ErrHelp {
		t.Errorf("--help: err %v, want flag.ErrHelp", err)
	}
}

// TestBenchStep times one step of each method on the Fashion-MNIST network
// and checks what the report says it ran; bad flags fail before any work.
func TestBenchStep(t *testing.T) {
	net := []string{"--set", "MODEL.BACKBONE_ARCH=resnet18", "--set", "MODEL.WIDTH=0.25", "--set", "MODEL.SMALL_IMAGE_STEM=true",
		"--set", "MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE=28", "--set", "MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE=16"}
	for _, tc := range []struct {
		config, method string
	}{{"dino_fmnist_sslight", "DINO"}, {"moco_cnn_sslight", "MOCO"}, {"swav_cnn_sslight", "SWAV"}} {
		var out bytes.Buffer
		args := append([]string{"--config", tc.config, "--batch", "4", "--steps", "1", "--warmup", "0", "--threads", "1", "--json"}, net...)
		if err := benchStepCommand(context.Background(), args, &out); err != nil {
			t.Fatalf("%s: %v", tc.config, err)
		}
		var r struct {
			Method, Views string
			Batch, Steps  int
			Threads       int
			ImagesPerSec  float64 `json:"images_per_s"`
			PeakRSSMiB    float64 `json:"peak_rss_mib"`
		}
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v in %q", tc.config, err, out.String())
		}
		if r.Method != tc.method || r.Views != "2x28+6x16" || r.Batch != 4 || r.Steps != 1 || r.Threads != 1 || r.ImagesPerSec <= 0 {
			t.Errorf("%s: report %+v", tc.config, r)
		}
	}
	for _, bad := range [][]string{{"--config", "dino_fmnist_sslight", "--batch", "-1"}, {"--config", "dino_fmnist_sslight", "--steps", "0"},
		{"--batch", "4"}, {"--config", "dino_fmnist_sslight", "--threads", "-2"}} {
		if err := benchStepCommand(context.Background(), bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
