package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/pipelines/run"
	"github.com/sslight-go/sslight/sinks/report"
)

func init() {
	register(&command{name: "run", summary: "one command from bucket to report: prepare → pretrain → eval for one or more configs", run: runRun})
}

const runDescription = `Run the whole job: prepare shards, pre-train, evaluate, report.

For every config in --config (comma-separated: e.g. the baseline and the
SSLight recipe of one method, to compare them at the same budget):
  prepare   Beam: --source → multi-crop shards      <run>/<config>/shards
  pretrain  the trainer, --epochs epochs            <run>/<config>/pretrain
then
  eval      Beam feature extraction + kNN / linear (and optionally semi-
            supervised) on --eval-train / --eval-val for every trained
            checkpoint plus the raw-pixel and random-init reference rows
  report    <run>/metrics.json, metrics.csv, report.md, accuracy.png, loss.png
All of it lands in one run directory <out>/<run id> (a UUIDv7: sortable by
time). At the end a table of the stages (wall time, peak memory) and the
paper-style results table are printed.

--storage emulator runs the same job with gs:// URIs against an in-process
GCS emulator (no cloud account): --source is uploaded to gs://sslight-demo/,
everything is written there, and the report files are copied back to --out.

Examples:
  sslight run --config dino_fmnist_baseline,dino_fmnist_sslight --source runs/bucket/fashion-mnist/train \
      --eval-train runs/bucket/fashion-mnist/train --eval-val runs/bucket/fashion-mnist/test --out runs
  sslight run --config configs/my.yaml --source gs://bucket/images --eval-train gs://bucket/labelled/train \
      --eval-val gs://bucket/labelled/val --out gs://bucket/sslight-runs --runner=dataflow ...`

func runRun(ctx context.Context, args []string) error {
	fs := cli.NewPipelineFlagSet("run", "--config A[,B...] --source URI --out URI [flags]", runDescription)
	cfgPaths := fs.String("config", "", "comma-separated configs (files or presets: "+strings.Join(configs.PresetNames(), ", ")+")")
	var o run.Options
	fs.StringVar(&o.Source, "source", "", "pre-training images: a local folder or gs://bucket/prefix")
	format := fs.String("format", "", "layout of --source and the eval sources (default DATA.FORMAT)")
	fs.StringVar(&o.Out, "out", "runs", "root of run directories")
	fs.IntVar(&o.PrepareEpochs, "prepare-epochs", 0, "epochs of views to prepare (default: the training epochs; training cycles them when fewer)")
	epochs := fs.Int("epochs", 0, "training epochs (default SOLVER.TOTAL_EPOCHS)")
	fs.IntVar(&o.BatchSize, "batch-size", 0, "batch size (default TRAIN.BATCH_SIZE)")
	fs.IntVar(&o.Limit, "limit", 0, "use only the first N listed images for pre-training (0 = all)")
	fs.StringVar(&o.EvalTrain, "eval-train", "", "labelled source for the protocols' train side (default --source)")
	fs.StringVar(&o.EvalVal, "eval-val", "", "labelled validation source (required unless --no-eval)")
	protocols := fs.String("protocols", "knn,linear", "comma-separated: knn, linear, semi1, semi10, detection")
	fs.StringVar(&o.DetTrain, "det-train", "", "detection protocol: COCO-format root to fine-tune on (split train; see sslight eval --help)")
	fs.StringVar(&o.DetVal, "det-val", "", "detection protocol: COCO-format root to score on (split val)")
	refs := fs.String("references", "raw,random", "reference rows to add: raw (pixels), random (init); empty for none")
	fs.BoolVar(&o.NoEval, "no-eval", false, "stop after pre-training")
	storageMode := fs.String("storage", "local", "local, or emulator: gs:// URIs on an in-process GCS emulator")
	var sets cli.Repeated
	fs.Var(&sets, "set", "override a config key in every config, KEY=VALUE (repeatable)")
	quiet := fs.Bool("quiet", false, "no progress display")
	device := addDeviceFlag(fs)
	storageOpts := addStorageFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := storageOpts.apply(); err != nil {
		return err
	}
	if err := fs.Require("config", "source"); err != nil {
		return err
	}
	if err := fs.AtLeast(1, "epochs", "batch-size", "prepare-epochs"); err != nil {
		return err
	}
	if err := fs.AtLeast(0, "limit"); err != nil {
		return err
	}
	if !o.NoEval && o.EvalVal == "" {
		return errors.New("--eval-val is required for the evaluation (or pass --no-eval)")
	}
	if o.Emulator = *storageMode == "emulator"; !o.Emulator && *storageMode != "local" {
		return fmt.Errorf("--storage %q: want local or emulator", *storageMode)
	}
	paths := strings.Split(*cfgPaths, ",")
	names := run.ConfigNames(paths)
	for i, cp := range paths {
		cfg, err := loadConfig(cp, sets, "DATA.FORMAT", *format, "SOLVER.TOTAL_EPOCHS", strconv.Itoa(*epochs), "TRAIN.DEVICE", *device)
		if err != nil {
			return err
		}
		if err := checkTrainingDevice(deviceOf("", cfg.Train.Device)); err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		o.Configs = append(o.Configs, run.Config{Name: names[i], Source: cp, Config: cfg})
	}
	for _, r := range strings.Split(*refs, ",") {
		switch strings.TrimSpace(r) {
		case "":
		case "raw":
			o.References = append(o.References, evaluate.RawPixelsModel(o.Configs[0].Config))
		case "random":
			o.References = append(o.References, evaluate.RandomInitModel(o.Configs[0].Config))
		default:
			return fmt.Errorf("--references %q: want raw and/or random", r)
		}
	}
	o.Protocols = strings.Split(*protocols, ",")
	o.Device = deviceOf(*device, o.Configs[0].Config.Train.Device)
	if !*quiet {
		o.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := run.Run(ctx, o)
	if err != nil {
		return err
	}
	if err := run.WriteStages(os.Stdout, sum.Stages); err != nil {
		return err
	}
	if sum.Report != nil {
		fmt.Printf("\n%s", report.Markdown(sum.Report))
	}
	fmt.Printf("\nrun directory: %s\n", sum.Dir)
	return nil
}
