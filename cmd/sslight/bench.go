package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/backbone/measure"
)

func init() {
	register(&command{name: "bench", summary: "measure: model (a backbone's parameters, GFLOPs, training and inference images/s, peak RSS)", run: runBench})
}

// benchModes are the measurements `sslight bench` knows, by name.
var benchModes = &cli.ModeSet{
	Command: "bench", Noun: "benchmark",
	Header: "Usage: sslight bench <benchmark> [flags]\n\nBenchmarks:\n",
	Modes: map[string]cli.Mode{
		"model": {Summary: "a backbone's parameters, GFLOPs, training-step and inference images/s, peak RSS", Run: runBenchModel},
	},
}

func runBench(ctx context.Context, args []string) error { return benchModes.Run(ctx, args) }

const benchModelDescription = `Build a backbone and print what the paper's table reports about it, then
time it on random images:

  parameters  learnable parameters of the forward pass, classifier excluded
              (the paper's "Params", e.g. resnet18 11.2M)
  GFLOPs      one forward pass of one --size x --size image, counted as the
              paper counts (fvcore's convention: a multiply-accumulate is one
              FLOP; convolutions, linears, attention matmuls, norms and the
              final average pool; resnet18 1.8 at 224)
  train       images/s of a training step on a batch: forward in train mode
              (batch statistics), the mean of the embedding as the loss,
              backward to every parameter, a plain SGD update
  inference   images/s of an eval-mode forward pass (feature extraction)
  peak RSS    the process's resident-memory high-water mark (VmHWM) during
              each phase; the phases run one after the other and the mark is
              reset in between where Linux allows (/proc/self/clear_refs)

Each phase runs --warmup untimed steps, then --steps timed ones. --steps 0
prints the parameters and GFLOPs only (instant, any size). --threads sets
GOMAXPROCS, the number of CPUs the ops spread images over. Build with
-tags openblas (Debian libopenblas-dev) for OpenBLAS's SGEMM: several times
faster than the pure-Go gonum BLAS the default build uses; the "blas" line
says which one ran. Memory can be capped with GOMEMLIMIT as for any Go
program.

Examples:
  sslight bench model --arch resnet18 --steps 0            # 11.18 M, 1.82 GFLOPs
  sslight bench model --arch vit_tiny --patch 32 --steps 0 # 5.94 M, 0.31 GFLOPs
  sslight bench model --arch mobilenet_v2 --size 96 --batch 64 --steps 5 --threads 2
  sslight bench model --arch resnet18 --width 0.25 --small-stem --size 32 --batch 256 --json

bench/backbone_ratio.sh runs this beside the same model in PyTorch.`

func runBenchModel(ctx context.Context, args []string) error {
	return benchModelCommand(ctx, args, os.Stdout)
}

// benchModelCommand is `sslight bench model` writing its report to w.
func benchModelCommand(ctx context.Context, args []string, w io.Writer) error {
	fs := cli.NewFlagSet("bench model", "--arch ARCH [--patch 16|32] [--width W] [--small-stem] [--size 224] [--batch 32] [--steps 5] [--threads N]", benchModelDescription)
	var c measure.Config
	fs.StringVar(&c.Arch, "arch", "", "architecture: "+strings.Join(backbone.Archs(), ", "))
	fs.IntVar(&c.Options.PatchSize, "patch", 0, "ViT patch size, 16 or 32 (default 16; ViTs only)")
	fs.Float64Var(&c.Options.Width, "width", 1, "CNN width multiplier, MODEL.WIDTH (CNNs only)")
	fs.BoolVar(&c.Options.SmallImageStem, "small-stem", false, "stride-1 stem for small images, MODEL.SMALL_IMAGE_STEM (CNNs only)")
	fs.IntVar(&c.Size, "size", 224, "input height and width in pixels")
	fs.IntVar(&c.Batch, "batch", 32, "images per step")
	fs.IntVar(&c.Steps, "steps", 5, "timed steps per phase (0: parameters and GFLOPs only)")
	fs.IntVar(&c.Warmup, "warmup", 1, "untimed steps before each timed phase")
	fs.IntVar(&c.Threads, "threads", 0, "GOMAXPROCS for the run (0: leave it, currently "+strconv.Itoa(runtime.GOMAXPROCS(0))+")")
	fs.StringVar(&c.Mode, "mode", "both", "phases to time: both, train or infer (one per process gives clean peak RSS figures)")
	fs.Uint64Var(&c.Options.Seed, "seed", 1, "seed of the weights and of the random images")
	jsonOut := fs.Bool("json", false, "print one JSON line instead of the table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkBenchFlags(c); err != nil {
		return err
	}
	rep, err := measure.Run(ctx, c)
	if err != nil {
		return err
	}
	if *jsonOut {
		return rep.WriteJSON(w)
	}
	return rep.WriteTable(w)
}

// checkBenchFlags refuses flag values measure.Run would refuse, in the
// flags' words.
func checkBenchFlags(c measure.Config) error {
	switch {
	case c.Arch == "":
		return fmt.Errorf("--arch is required (one of %s)", strings.Join(backbone.Archs(), ", "))
	case c.Size < 1:
		return fmt.Errorf("--size %d: want a positive number of pixels", c.Size)
	case c.Batch < 1:
		return fmt.Errorf("--batch %d: want at least 1", c.Batch)
	case c.Steps < 0 || c.Warmup < 0:
		return fmt.Errorf("--steps %d, --warmup %d: want 0 or more", c.Steps, c.Warmup)
	case c.Threads < 0:
		return fmt.Errorf("--threads %d: want 0 (leave GOMAXPROCS) or more", c.Threads)
	case c.Mode != measure.ModeBoth && c.Mode != measure.ModeTrain && c.Mode != measure.ModeInfer:
		return fmt.Errorf("--mode %q: want both, train or infer", c.Mode)
	case c.Options.PatchSize != 0 && !strings.HasPrefix(c.Arch, "vit"):
		return fmt.Errorf("--patch applies to ViTs, not %s", c.Arch)
	}
	return nil
}
