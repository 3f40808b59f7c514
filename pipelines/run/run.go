// Package run is the whole job from bucket to report, what `sslight run`
// does: for every config, prepare multi-crop shards (pipelines/prepare)
// and pre-train on them (trainer), then score every trained checkpoint and
// the reference rows with the evaluation protocols (pipelines/evaluate)
// and write the report. Each stage is recorded with its wall time and
// peak resident memory. Everything lands in one run directory,
// <Out>/<run id>, the id a UUIDv7 so that runs sort by time:
//
//	<config>/shards/, <config>/pretrain/   one pair per config
//	eval/                                  features, detections
//	metrics.json, metrics.csv, report.md   the report (evaluate.WriteReport)
//	accuracy.png, loss.png                 top-1 bars; pre-training loss by step
//	stages.json                            the stage records
//
// With Options.Emulator the same job runs on gs:// URIs against an
// in-process GCS emulator: the local sources are uploaded first, and the
// report files are copied back to the local Out at the end.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/infra/gcsemu"
	"github.com/sslight-go/sslight/internal/procstat"
	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/pipelines/prepare"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer"
	"github.com/sslight-go/sslight/trainer/detect"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/trainer/finetune"
)

// EmulatorBucket is the bucket the emulator mode works in.
const EmulatorBucket = "sslight-demo"

// Config is one config to prepare and pre-train; Name names its folder in
// the run directory.
type Config struct {
	Name string
	// Source is the preset name or file the config came from (reports
	// name it).
	Source string
	Config *configs.Config
}

// Options configure a run.
type Options struct {
	// Device is where the evaluation runs its models (evaluate.Options.Device);
	// pre-training runs on the CPU.
	Device string
	// Configs are prepared and pre-trained in order (validated configs:
	// flags already applied).
	Configs []Config
	// Source holds the pre-training images (DATA.FORMAT layout).
	Source string
	// Out is the root of run directories.
	Out string
	// PrepareEpochs is the number of epochs of views to prepare (0: the
	// training epochs; training cycles them when fewer); Limit, when > 0,
	// prepares only the first Limit listed images.
	PrepareEpochs, Limit int
	// BatchSize overrides TRAIN.BATCH_SIZE when > 0.
	BatchSize int
	// NoEval stops after pre-training.
	NoEval bool
	// EvalTrain (default Source) and EvalVal are the labelled sources of
	// the protocols; Protocols names them (evaluate.Protocols).
	EvalTrain, EvalVal string
	Protocols          []string
	// DetTrain and DetVal are the detection protocol's COCO-format roots
	// (splits train and val).
	DetTrain, DetVal string
	// References are the reference rows scored before the trained models
	// (evaluate.RawPixelsModel, evaluate.RandomInitModel).
	References []evaluate.Model
	// Emulator runs the job on an in-process GCS emulator.
	Emulator bool
	// Progress, when set, receives progress lines.
	Progress io.Writer
}

// Stage is the record of one stage.
type Stage struct {
	Stage     string  `json:"stage"`
	Seconds   float64 `json:"seconds"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
	Detail    string  `json:"detail,omitempty"`
}

// Summary is what a run did.
type Summary struct {
	RunID string
	// Dir is the run directory (the local copy in emulator mode).
	Dir    string
	Stages []Stage
	// Report is the evaluation's report (nil with NoEval).
	Report *report.Report
}

// reportFiles are the run directory's files an emulator run copies back.
var reportFiles = []string{"metrics.json", "metrics.csv", "report.md", "accuracy.png", "loss.png", "stages.json"}

// Run runs the job. The options, protocols and reference rows are checked
// before anything is prepared.
func Run(ctx context.Context, o Options) (*Summary, error) {
	switch {
	case len(o.Configs) == 0:
		return nil, errors.New("run: no config")
	case o.Source == "":
		return nil, errors.New("run: no source")
	case !o.NoEval && o.EvalVal == "":
		return nil, errors.New("run: no validation source for the evaluation")
	}
	seen := map[string]bool{}
	for _, c := range o.Configs {
		if c.Name == "" || c.Name == "." || c.Name == ".." || strings.ContainsAny(c.Name, `/\`) || seen[c.Name] {
			return nil, fmt.Errorf("run: config folder name %q is empty, a path or used twice (ConfigNames derives safe, unique names)", c.Name)
		}
		seen[c.Name] = true
	}
	if o.EvalTrain == "" {
		o.EvalTrain = o.Source
	}
	if !o.NoEval {
		if err := evaluate.CheckProtocols(o.Protocols); err != nil {
			return nil, err
		}
	}
	localOut := o.Out
	if o.Emulator {
		emu, err := gcsemu.Start(EmulatorBucket)
		if err != nil {
			return nil, err
		}
		defer emu.Stop()
		logf(o.Progress, "storage: in-process GCS emulator at %s (objects vanish when the run ends; the report is copied to %s)", os.Getenv("STORAGE_EMULATOR_HOST"), localOut)
		if err := upload(ctx, &o); err != nil {
			return nil, err
		}
	}

	sum := &Summary{RunID: uuid.Must(uuid.NewV7()).String()}
	runDir := storage.Join(o.Out, sum.RunID)
	logf(o.Progress, "run %s → %s", sum.RunID, runDir)
	stage := func(name, detail string, f func() (string, error)) error {
		// Hand the last stage's heap back to the OS so the high-water mark
		// measures this stage alone.
		debug.FreeOSMemory()
		procstat.ResetPeakRSS()
		t := time.Now()
		logf(o.Progress, "── %s", name)
		more, err := f()
		sum.Stages = append(sum.Stages, Stage{Stage: name, Seconds: time.Since(t).Seconds(), PeakRSSMB: procstat.PeakRSSMiB(), Detail: detail + more})
		return err
	}
	var models []evaluate.Model
	var losses []report.Series
	for _, c := range o.Configs {
		m, loss, err := pretrain(ctx, o, c, storage.Join(runDir, c.Name), stage)
		if err != nil {
			return nil, err
		}
		models = append(models, m)
		if loss != nil {
			losses = append(losses, *loss)
		}
	}
	if len(losses) > 0 {
		if err := report.LinePlot(ctx, storage.Join(runDir, "loss.png"), "pre-training loss", "step", "loss", losses); err != nil {
			return nil, err
		}
	}
	if !o.NoEval {
		models = append(append([]evaluate.Model(nil), o.References...), models...)
		first := o.Configs[0].Config
		spec := evaluate.Spec{Train: o.EvalTrain, Val: o.EvalVal, Format: first.Data.Format, Protocols: o.Protocols, Device: o.Device,
			Seed: uint64(first.Seed), Linear: eval.DefaultLinearConfig(), Finetune: finetune.DefaultConfig(), Progress: o.Progress,
			Detection: evaluate.DetectionSpec{Train: o.DetTrain, Val: o.DetVal, TrainSplit: "train", ValSplit: "val", Config: detect.DefaultConfig()}}
		notes := append(evaluate.Notes(spec), "kNN: k = 20, T = 0.07 (other k in metrics.json)")
		if err := stage("eval", fmt.Sprintf("%d models × %s", len(models), strings.Join(o.Protocols, ",")), func() (string, error) {
			var err error
			sum.Report, err = evaluate.Report(ctx, models, spec, storage.Join(runDir, "eval"), sum.RunID, notes)
			return "", err
		}); err != nil {
			return nil, err
		}
		if err := evaluate.WriteReport(ctx, runDir, sum.Report); err != nil {
			return nil, err
		}
	}
	if err := jsonfile.Write(ctx, storage.Join(runDir, "stages.json"), sum.Stages); err != nil {
		return nil, err
	}
	sum.Dir = runDir
	if o.Emulator {
		local := filepath.Join(localOut, sum.RunID)
		for _, f := range reportFiles {
			b, err := storage.ReadFile(ctx, storage.Join(runDir, f))
			if err != nil {
				continue // a file this run did not write (no eval, no plot)
			}
			if err := storage.WriteFile(ctx, filepath.Join(local, f), b); err != nil {
				return nil, err
			}
		}
		logf(o.Progress, "storage: report files copied from %s to %s", runDir, local)
		sum.Dir = local
	}
	return sum, nil
}

// pretrain prepares and pre-trains one config under dir and returns the
// trained model and its loss curve (nil when metrics.jsonl is unreadable).
func pretrain(ctx context.Context, o Options, c Config, dir string, stage func(string, string, func() (string, error)) error) (evaluate.Model, *report.Series, error) {
	cfg := c.Config
	pe := o.PrepareEpochs
	if pe <= 0 {
		pe = cfg.Solver.TotalEpochs
	}
	shards := storage.Join(dir, "shards")
	if err := stage("prepare "+c.Name, fmt.Sprintf("%d epochs of views", pe), func() (string, error) {
		ps, err := prepare.Run(ctx, prepare.Options{Config: cfg, Source: o.Source, Out: shards, Epochs: pe, Limit: o.Limit, Progress: o.Progress})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf(", %d samples, %.0f img/s", ps.Samples, ps.ImagesPerSec), nil
	}); err != nil {
		return evaluate.Model{}, nil, err
	}
	var ts *trainer.Summary
	out := storage.Join(dir, "pretrain")
	if err := stage("pretrain "+c.Name, "", func() (string, error) {
		var err error
		ts, err = trainer.Run(ctx, trainer.Options{Config: cfg, ConfigSource: c.Source, Shards: []string{shards}, Out: out, BatchSize: o.BatchSize, Progress: o.Progress})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d epochs × %d it, batch %d, %.1f img/s, final loss %.3f", ts.Epochs, ts.ItersPerEpoch, ts.BatchSize, ts.ImagesPerSec, ts.FinalLoss), nil
	}); err != nil {
		return evaluate.Model{}, nil, err
	}
	m := evaluate.Model{Name: evaluate.ModelName(cfg), Method: cfg.SSLMethod, Setting: evaluate.SettingOf(cfg), Checkpoint: ts.Checkpoint, Config: cfg,
		Training: map[string]float64{"epochs": float64(ts.Epochs), "steps": float64(ts.Steps), "images_per_sec": ts.ImagesPerSec, "seconds": ts.WallSeconds}}
	recs, err := jsonfile.ReadLines[trainer.MetricsRecord](ctx, storage.Join(out, trainer.MetricsFile))
	if err != nil {
		return m, nil, nil
	}
	loss := &report.Series{Name: m.Name}
	for _, r := range recs {
		if r.Kind == "step" {
			loss.X, loss.Y = append(loss.X, float64(r.Step)), append(loss.Y, r.Loss)
		}
	}
	return m, loss, nil
}

// upload copies the local sources into the emulator's bucket and points
// the options at the copies: the pre-training source once, reused by the
// evaluation when it is the same folder.
func upload(ctx context.Context, o *Options) error {
	up := func(dir, name string) (string, error) {
		dst := "gs://" + EmulatorBucket + "/" + name
		n, err := UploadTree(ctx, dir, dst)
		logf(o.Progress, "storage: uploaded %d files of %s to %s", n, dir, dst)
		return dst, err
	}
	local := o.Source
	var err error
	if o.Source, err = up(o.Source, "source"); err != nil {
		return err
	}
	if !o.NoEval {
		if o.EvalTrain == local {
			o.EvalTrain = o.Source
		} else if o.EvalTrain, err = up(o.EvalTrain, "eval-train"); err != nil {
			return err
		}
		if o.EvalVal, err = up(o.EvalVal, "eval-val"); err != nil {
			return err
		}
	}
	o.Out = "gs://" + EmulatorBucket + "/runs"
	return nil
}

// UploadTree copies a local folder's files under dst (a gs:// or other
// storage prefix) and returns how many it copied.
func UploadTree(ctx context.Context, dir, dst string) (int, error) {
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

// WriteStages prints the stage table: wall time, peak RSS and detail of
// every stage, and the total wall time.
func WriteStages(w io.Writer, stages []Stage) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "stage\twall\tpeak RSS\tdetail")
	var total float64
	for _, s := range stages {
		total += s.Seconds
		fmt.Fprintf(tw, "%s\t%s\t%.0f MiB\t%s\n", s.Stage, time.Duration(s.Seconds*float64(time.Second)).Round(100*time.Millisecond).String(), s.PeakRSSMB, s.Detail)
	}
	fmt.Fprintf(tw, "total\t%s\t\t\n", time.Duration(total*float64(time.Second)).Round(time.Second).String())
	return tw.Flush()
}

func logf(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", a...)
	}
}
