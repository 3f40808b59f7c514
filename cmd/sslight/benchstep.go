package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/trainer"
)

func init() {
	benchModes.Modes["step"] = cli.Mode{Summary: "a whole self-supervised training step (DINO, SwAV or MoCo of a config): images/s, CPU use, peak RSS", Run: runBenchStep}
}

const benchStepDescription = `Time whole training steps of a config's method on random views, as
pretrain runs them without the data loader: every network's forward and
backward over 2 global + L local views (views of one size in one pass, as
the reference groups them), the loss, the gradient rules, the config's
optimiser step (LARS/SGD/AdamW) and the EMA update of the teacher or key
encoder. SwAV runs with a full queue.

Prints images/s (a sample with all its views counts once), images per
CPU-second, the CPU/wall ratio of the timed steps (2.0 keeps both cores of
a 2-core machine busy from start to end) and the peak RSS.

Examples:
  sslight bench step --config dino_fmnist_sslight --steps 5
  sslight bench step --config moco_cnn_sslight --set MODEL.WIDTH=0.25 --batch 128 --json
  sslight bench step --config dino_cnn_sslight --set MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE=96 --batch 32

bench/ssl_step_ratio.sh runs this beside the same step in PyTorch.`

func runBenchStep(ctx context.Context, args []string) error {
	return benchStepCommand(ctx, args, os.Stdout)
}

// benchStepCommand is `sslight bench step` writing its report to w.
func benchStepCommand(_ context.Context, args []string, w io.Writer) error {
	fs := cli.NewFlagSet("bench step", "--config FILE [--set KEY=VALUE ...] [--batch N] [--steps 5] [--threads N]", benchStepDescription)
	cfgPath := fs.String("config", "", "SSLight-schema YAML file, or a preset name ("+strings.Join(configs.PresetNames(), ", ")+")")
	var sets cli.Repeated
	fs.Var(&sets, "set", "override a config key, KEY=VALUE (repeatable)")
	batch := fs.Int("batch", 0, "samples per step (default TRAIN.BATCH_SIZE)")
	steps := fs.Int("steps", 5, "timed steps")
	warmup := fs.Int("warmup", 1, "untimed steps first")
	threads := fs.Int("threads", 0, "GOMAXPROCS for the run (0: leave it)")
	jsonOut := fs.Bool("json", false, "print one JSON line instead of the table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *batch < 0:
		return fmt.Errorf("--batch %d: want at least 1 (or 0 for TRAIN.BATCH_SIZE)", *batch)
	case *steps < 1 || *warmup < 0:
		return fmt.Errorf("--steps %d, --warmup %d: want at least 1 timed step and 0 or more warm-up steps", *steps, *warmup)
	case *threads < 0:
		return fmt.Errorf("--threads %d: want 0 (leave GOMAXPROCS) or more", *threads)
	}
	cfg, err := loadConfig(*cfgPath, sets)
	if err != nil {
		return err
	}
	if *batch == 0 {
		*batch = cfg.Train.BatchSize
	}
	if *threads > 0 {
		runtime.GOMAXPROCS(*threads)
	}
	r, err := trainer.MeasureStep(cfg, *batch, *warmup, *steps)
	if err != nil {
		return err
	}
	if *jsonOut {
		return json.NewEncoder(w).Encode(r)
	}
	_, err = fmt.Fprintf(w, "%s %s (width %g), views %s, batch %d, %d threads, %d steps: %.1f images/s, %.1f images/CPU-s, CPU/wall %.2f, %.3f s/step, peak RSS %.0f MiB\n",
		r.Method, r.Arch, r.Width, r.Views, r.Batch, r.Threads, r.Steps, r.ImagesPerSec, r.ImagesPerCPUSec, r.CPUPerWall, r.SecondsPerStep, r.PeakRSSMiB)
	return err
}
