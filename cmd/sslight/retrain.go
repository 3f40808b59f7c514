package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/pipelines/retrain"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer"
	"github.com/sslight-go/sslight/trainer/eval"
)

func init() {
	register(&command{name: "retrain", summary: "scheduled re-pre-training: prepare only new/changed objects, continue training, re-evaluate", run: runRetrain})
}

const retrainDescription = `Re-pre-train when new images land in the bucket.

Each run lists --source, compares it with the listing the last run committed
(URI, size, GCS generation or modification time), and when something is new,
changed or removed:
  1. prepares only the new and changed objects as a new shards increment
     (<state>/shards/inc-NNNN),
  2. continues pre-training from the newest checkpoint for --epochs epochs over
     all increments, skipping the old versions of changed objects and removed
     ones (<state>/pretrain/phase-NNNN),
  3. re-evaluates the new checkpoint when --eval-train/--eval-val are given,
  4. appends to <state>/history.jsonl and redraws <state>/history.png,
  5. commits <state>/state.json (atomically, last).
With nothing new it says so and does nothing. A run that crashes or is
killed at any point is redone from its unfinished step on the next start
(finished increments are reused, pre-training resumes from the phase's newest
checkpoint) and ends with the state an uninterrupted run leaves. A phase is
committed only with its final checkpoint checked (meta.json, both safetensors
files, a backbone that loads), never without one. Temporaries a killed run
left under a local --state are removed at start (gs:// writes leave none).
Object-storage operations retry under --storage-attempts / --storage-timeout.

--once runs one step and exits (for cron or a Kubernetes CronJob, see
infra/k8s); --every DURATION (e.g. 6h) loops until interrupted.

Examples:
  sslight retrain --config dino_fmnist_sslight --source gs://bucket/images --state gs://bucket/sslight-state --once
  sslight retrain --config dino_fmnist_sslight --source runs/bucket/train --state runs/retrain --every 1h`

func runRetrain(ctx context.Context, args []string) error {
	fs := cli.NewPipelineFlagSet("retrain", "--config FILE --source URI --state URI (--once | --every DURATION) [flags]", retrainDescription)
	cfgPath := fs.String("config", "", "SSLight-schema YAML file, or a preset name ("+strings.Join(configs.PresetNames(), ", ")+")")
	src := fs.String("source", "", "the bucket or folder to watch (DATA.FORMAT layout)")
	state := fs.String("state", "", "where the retrain state, shards, checkpoints and history live (local folder or gs://)")
	once := fs.Bool("once", false, "run one step and exit")
	every := fs.Duration("every", 0, "run a step every DURATION until interrupted")
	epochs := fs.Int("epochs", 1, "pre-training epochs per run")
	prepEpochs := fs.Int("prepare-epochs", 1, "epochs of views to prepare per increment")
	batch := fs.Int("batch-size", 0, "batch size (default TRAIN.BATCH_SIZE)")
	format := fs.String("format", "", "source layout (default DATA.FORMAT)")
	evalTrain := fs.String("eval-train", "", "labelled source for the kNN/linear evaluation's train side (optional)")
	evalVal := fs.String("eval-val", "", "labelled source for the evaluation's validation side (optional)")
	var sets cli.Repeated
	fs.Var(&sets, "set", "override a config key, KEY=VALUE (repeatable)")
	storageOpts := addStorageFlags(fs)
	quiet := fs.Bool("quiet", false, "no progress lines (each run's one-line result is still printed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := storageOpts.apply(); err != nil {
		return err
	}
	if err := fs.Require("config", "source", "state"); err != nil {
		return err
	}
	if err := fs.AtLeast(1, "epochs", "prepare-epochs", "batch-size"); err != nil {
		return err
	}
	if *once == (*every > 0) {
		return errors.New("pass exactly one of --once and --every DURATION")
	}
	cfg, err := loadConfig(*cfgPath, sets, "DATA.FORMAT", *format)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := checkTrainingDevice(deviceOf("", cfg.Train.Device)); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var progress io.Writer = os.Stderr
	if *quiet {
		progress = nil
	}
	opts := retrain.Options{Config: cfg, Source: *src, State: *state, Epochs: *prepEpochs, Log: progress,
		Pretrain: func(ctx context.Context, shards []string, exclude map[string]map[string]bool, initFrom, out string) (string, error) {
			sum, err := trainer.Run(ctx, trainer.Options{Config: cfg, ConfigSource: *cfgPath, Shards: shards, Exclude: exclude, InitFrom: initFrom, Out: out,
				Epochs: *epochs, BatchSize: *batch, Resume: true, Progress: progress})
			if err != nil {
				return "", err
			}
			return sum.Checkpoint, nil
		},
	}
	if (*evalTrain == "") != (*evalVal == "") {
		return errors.New("--eval-train and --eval-val go together")
	}
	if *evalTrain != "" {
		// kNN and the fast linear probe of every new checkpoint.
		spec := evaluate.Spec{Train: *evalTrain, Val: *evalVal, Protocols: []string{evaluate.ProtocolKNN, evaluate.ProtocolLinear},
			Seed: uint64(cfg.Seed), Linear: eval.DefaultLinearConfig(), Progress: progress}
		opts.Evaluate = func(ctx context.Context, ckpt string) (map[string]float64, error) {
			rows, err := evaluate.Models(ctx, []evaluate.Model{{Name: "checkpoint", Checkpoint: ckpt, Config: cfg}}, spec, storage.Join(*state, "eval"))
			if err != nil {
				return nil, err
			}
			return rows[0].Metrics, nil
		}
	}
	for {
		res, err := retrain.Once(ctx, opts)
		if err != nil {
			return err
		}
		if res.Ran {
			fmt.Printf("retrain run %d: %d new, %d changed, %d removed objects; checkpoint %s; metrics %v\n",
				res.Entry.Run, res.Entry.New, res.Entry.Changed, res.Entry.Removed, res.Entry.Checkpoint, res.Entry.Metrics)
		}
		if *once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*every):
		}
	}
}
