package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/infra/gcsemu"
	"github.com/sslight-go/sslight/pipelines/prepare"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer"
	"github.com/sslight-go/sslight/trainer/detect"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/trainer/finetune"
)

func init() {
	register(&command{
		name:    "run",
		summary: "one command from bucket to report: prepare → pretrain → eval for one or more configs",
		run:     runRun,
	})
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

// stageRecord is one row of the final stage table.
type stageRecord struct {
	Stage     string  `json:"stage"`
	Seconds   float64 `json:"seconds"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
	Detail    string  `json:"detail,omitempty"`
}

func runRun(ctx context.Context, args []string) error {
	fs := newPipelineFlagSet("run", "--config A[,B...] --source URI --out URI [flags]", runDescription)
	cfgPaths := fs.String("config", "", "comma-separated configs (files or presets: "+strings.Join(configs.PresetNames(), ", ")+")")
	src := fs.String("source", "", "pre-training images: a local folder or gs://bucket/prefix")
	format := fs.String("format", "", "layout of --source and the eval sources (default DATA.FORMAT)")
	out := fs.String("out", "runs", "root of run directories")
	prepEpochs := fs.Int("prepare-epochs", 0, "epochs of views to prepare (default: the training epochs; training cycles them when fewer)")
	epochs := fs.Int("epochs", 0, "training epochs (default SOLVER.TOTAL_EPOCHS)")
	batch := fs.Int("batch-size", 0, "batch size (default TRAIN.BATCH_SIZE)")
	limit := fs.Int("limit", 0, "use only the first N listed images for pre-training (0 = all)")
	evalTrain := fs.String("eval-train", "", "labelled source for the protocols' train side (default --source)")
	evalVal := fs.String("eval-val", "", "labelled validation source (required unless --no-eval)")
	protocols := fs.String("protocols", "knn,linear", "comma-separated: knn, linear, semi1, semi10, detection")
	detTrain := fs.String("det-train", "", "detection protocol: COCO-format root to fine-tune on (split train; see sslight eval --help)")
	detVal := fs.String("det-val", "", "detection protocol: COCO-format root to score on (split val)")
	refs := fs.String("references", "raw,random", "reference rows to add: raw (pixels), random (init); empty for none")
	noEval := fs.Bool("no-eval", false, "stop after pre-training")
	storageMode := fs.String("storage", "local", "local, or emulator: gs:// URIs on an in-process GCS emulator")
	var sets multiFlag
	fs.Var(&sets, "set", "override a config key in every config, KEY=VALUE (repeatable)")
	quiet := fs.Bool("quiet", false, "no progress display")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *cfgPaths == "" || *src == "" {
		return errors.New("--config and --source are required (see sslight run --help)")
	}
	if !*noEval && *evalVal == "" {
		return errors.New("--eval-val is required for the evaluation (or pass --no-eval)")
	}
	if *evalTrain == "" {
		*evalTrain = *src
	}
	var progress io.Writer = os.Stderr
	if *quiet {
		progress = nil
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	localOut := *out
	switch *storageMode {
	case "local":
	case "emulator":
		emu, err := gcsemu.Start("sslight-demo")
		if err != nil {
			return err
		}
		defer emu.Stop()
		logf(progress, "storage: in-process GCS emulator at %s (objects vanish when the run ends; the report is copied to %s)", os.Getenv("STORAGE_EMULATOR_HOST"), localOut)
		up := func(dir, name string) (string, error) {
			dst := "gs://sslight-demo/" + name
			n, err := uploadTree(ctx, dir, dst)
			logf(progress, "storage: uploaded %d files of %s to %s", n, dir, dst)
			return dst, err
		}
		var err2 error
		if *src, err2 = up(*src, "source"); err2 != nil {
			return err2
		}
		if !*noEval {
			if *evalTrain == *src || *evalTrain == localSourceOf(*src) {
				*evalTrain = *src
			} else if *evalTrain, err2 = up(*evalTrain, "eval-train"); err2 != nil {
				return err2
			}
			if *evalVal, err2 = up(*evalVal, "eval-val"); err2 != nil {
				return err2
			}
		}
		*out = "gs://sslight-demo/runs"
	default:
		return fmt.Errorf("--storage %q: want local or emulator", *storageMode)
	}

	runID := uuid.Must(uuid.NewV7()).String()
	runDir := storage.Join(*out, runID)
	logf(progress, "run %s → %s", runID, runDir)
	var stages []stageRecord
	stage := func(name string, detail string, f func() error) error {
		// Hand the last stage's heap back to the OS so the high-water mark
		// measures this stage alone.
		debug.FreeOSMemory()
		resetPeakRSS()
		t := time.Now()
		logf(progress, "── %s", name)
		err := f()
		stages = append(stages, stageRecord{Stage: name, Seconds: time.Since(t).Seconds(), PeakRSSMB: peakRSSMiB(), Detail: detail})
		return err
	}
	var models []evalModel
	var lossSeries []report.Series
	var firstCfg *configs.Config
	for _, cp := range strings.Split(*cfgPaths, ",") {
		cfg, err := loadConfig(cp, sets)
		if err != nil {
			return err
		}
		if *format != "" {
			if err := cfg.Set("DATA.FORMAT", *format); err != nil {
				return err
			}
		}
		if *epochs > 0 {
			if err := cfg.Set("SOLVER.TOTAL_EPOCHS", fmt.Sprint(*epochs)); err != nil {
				return err
			}
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		if firstCfg == nil {
			firstCfg = cfg
		}
		name := configName(cp)
		dir := storage.Join(runDir, name)
		pe := *prepEpochs
		if pe <= 0 {
			pe = cfg.Solver.TotalEpochs
		}
		var psum *prepare.Summary
		if err := stage("prepare "+name, fmt.Sprintf("%d epochs of views", pe), func() error {
			var err error
			psum, err = prepare.Run(ctx, prepare.Options{Config: cfg, Source: *src, Out: storage.Join(dir, "shards"), Epochs: pe, Limit: *limit, Progress: progress})
			return err
		}); err != nil {
			return err
		}
		stages[len(stages)-1].Detail += fmt.Sprintf(", %d samples, %.0f img/s", psum.Samples, psum.ImagesPerSec)
		var tsum *trainer.Summary
		if err := stage("pretrain "+name, "", func() error {
			var err error
			tsum, err = trainer.Run(ctx, trainer.Options{Config: cfg, Shards: []string{storage.Join(dir, "shards")}, Out: storage.Join(dir, "pretrain"),
				BatchSize: *batch, Progress: progress})
			return err
		}); err != nil {
			return err
		}
		stages[len(stages)-1].Detail = fmt.Sprintf("%d epochs × %d it, batch %d, %.1f img/s, final loss %.3f", tsum.Epochs, tsum.ItersPerEpoch, tsum.BatchSize, tsum.ImagesPerSec, tsum.FinalLoss)
		models = append(models, evalModel{Name: modelName(cfg), Method: cfg.SSLMethod, Setting: settingOf(cfg), Checkpoint: tsum.Checkpoint, Config: cfg,
			Training: map[string]float64{"epochs": float64(tsum.Epochs), "steps": float64(tsum.Steps), "images_per_sec": tsum.ImagesPerSec, "seconds": tsum.WallSeconds}})
		if recs, err := jsonfile.ReadLines[trainer.MetricsRecord](ctx, storage.Join(dir, "pretrain", trainer.MetricsFile)); err == nil {
			s := report.Series{Name: modelName(cfg)}
			for _, r := range recs {
				if r.Kind == "step" {
					s.X, s.Y = append(s.X, float64(r.Step)), append(s.Y, r.Loss)
				}
			}
			lossSeries = append(lossSeries, s)
		}
	}
	if len(lossSeries) > 0 {
		if err := report.LinePlot(ctx, storage.Join(runDir, "loss.png"), "pre-training loss", "step", "loss", lossSeries); err != nil {
			return err
		}
	}
	var rep *report.Report
	if !*noEval {
		var evalModels []evalModel
		for _, r := range strings.Split(*refs, ",") {
			switch strings.TrimSpace(r) {
			case "":
			case "raw":
				evalModels = append(evalModels, evalModel{Name: "raw pixels", Setting: report.SettingRawPixels, RawPixels: true, Config: firstCfg})
			case "random":
				evalModels = append(evalModels, evalModel{Name: "random init", Setting: report.SettingRandomInit, RandomInit: true, Config: firstCfg})
			default:
				return fmt.Errorf("--references %q: want raw and/or random", r)
			}
		}
		evalModels = append(evalModels, models...)
		spec := evalSpec{Train: *evalTrain, Val: *evalVal, Format: firstCfg.Data.Format, Protocols: strings.Split(*protocols, ","),
			Seed: uint64(firstCfg.Seed), Linear: eval.DefaultLinearConfig(), Finetune: finetune.DefaultConfig(), Progress: progress,
			Detection: detectSpec{Train: *detTrain, Val: *detVal, TrainSplit: "train", ValSplit: "val", Config: detect.DefaultConfig()}}
		var rows []report.Row
		if err := stage("eval", fmt.Sprintf("%d models × %s", len(evalModels), *protocols), func() error {
			var err error
			rows, err = evaluateModels(ctx, evalModels, spec, storage.Join(runDir, "eval"))
			return err
		}); err != nil {
			return err
		}
		rep = &report.Report{RunID: runID, Created: time.Now().UTC().Format(time.RFC3339), Dataset: rows[0].Dataset, Rows: rows,
			Notes: []string{"linear: fast mode (linear classifier on frozen precomputed features), not the reference's augmented-image protocol",
				"kNN: k = 20, T = 0.07 (other k in metrics.json)"}}
		if err := writeReport(ctx, runDir, rep); err != nil {
			return err
		}
	}
	if err := jsonfile.Write(ctx, storage.Join(runDir, "stages.json"), stages); err != nil {
		return err
	}
	if *storageMode == "emulator" {
		local := filepath.Join(localOut, runID)
		for _, f := range []string{"metrics.json", "metrics.csv", "report.md", "accuracy.png", "loss.png", "stages.json"} {
			b, err := storage.ReadFile(ctx, storage.Join(runDir, f))
			if err != nil {
				continue
			}
			if err := storage.WriteFile(ctx, filepath.Join(local, f), b); err != nil {
				return err
			}
		}
		logf(progress, "storage: report files copied from %s to %s", runDir, local)
		runDir = local
	}
	printStages(os.Stdout, stages)
	if rep != nil {
		fmt.Println()
		fmt.Print(report.Markdown(rep))
	}
	fmt.Printf("\nrun directory: %s\n", runDir)
	return nil
}

func logf(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", a...)
	}
}

// configName names a config's folder: the preset name or the file's base
// name without extension.
func configName(p string) string {
	return strings.TrimSuffix(path.Base(filepath.ToSlash(p)), filepath.Ext(p))
}

func localSourceOf(s string) string { return s }

func printStages(w io.Writer, stages []stageRecord) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "stage\twall\tpeak RSS\tdetail")
	var total float64
	for _, s := range stages {
		total += s.Seconds
		fmt.Fprintf(tw, "%s\t%s\t%.0f MiB\t%s\n", s.Stage, time.Duration(s.Seconds*float64(time.Second)).Round(100*time.Millisecond).String(), s.PeakRSSMB, s.Detail)
	}
	fmt.Fprintf(tw, "total\t%s\t\t\n", time.Duration(total*float64(time.Second)).Round(time.Second).String())
	tw.Flush()
}

// uploadTree copies a local folder's files under dst (a gs:// prefix).
func uploadTree(ctx context.Context, dir, dst string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		return storage.WriteFile(ctx, dst+"/"+filepath.ToSlash(rel), b)
	})
	return n, err
}
