package evaluate

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/buildinfo"
	"github.com/sslight-go/sslight/internal/procstat"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// Report scores models on spec (as Models does) and returns the report
// with its setup: the software, the machine, the data as listed, each
// checkpoint's pre-training from its meta.json. runID names the run.
func Report(ctx context.Context, models []Model, spec Spec, out, runID string, notes []string) (*report.Report, error) {
	rows, data, err := score(ctx, models, spec, out)
	if err != nil {
		return nil, err
	}
	rep := &report.Report{RunID: runID, Created: time.Now().UTC().Format(time.RFC3339), Dataset: rows[0].Dataset, Rows: rows, Notes: notes,
		Setup: &report.Setup{Software: buildinfo.Read().String(), Seed: spec.Seed,
			Machine: report.Machine{CPU: procstat.CPUModel(), Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Device: "cpu"}}}
	if data != nil {
		rep.Setup.Train = report.Source{URI: spec.Train, Format: data.format, Split: spec.TrainSplit, Images: len(data.train.Items), Classes: data.classes}
		rep.Setup.Val = report.Source{URI: spec.Val, Format: data.format, Split: spec.ValSplit, Images: len(data.val.Items), Classes: len(data.val.Classes)}
	} else {
		rep.Setup.Train = report.Source{URI: spec.Detection.Train, Format: "coco", Split: spec.Detection.TrainSplit}
		rep.Setup.Val = report.Source{URI: spec.Detection.Val, Format: "coco", Split: spec.Detection.ValSplit}
	}
	return rep, nil
}

// DatasetName names a data set after the source it was read from, not a
// config's TRAIN.DATASET: the root's last folder, with its parent when
// the last one only names a split (runs/bucket/fashion-mnist/train →
// "fashion-mnist/train"; /usr/share/datasets/fashion-mnist → "fashion-mnist").
func DatasetName(root string) string {
	r := strings.TrimRight(root, "/")
	if storage.IsLocal(r) {
		r = filepath.ToSlash(filepath.Clean(r))
	} else if i := strings.Index(r, "://"); i >= 0 {
		r = r[i+3:]
	}
	base, parent := path.Base(r), path.Base(path.Dir(r))
	switch strings.ToLower(base) {
	case "train", "val", "valid", "validation", "test", "t10k", "training", "images", "train2017", "val2017":
		if parent != "." && parent != "/" && parent != "" {
			return parent + "/" + base
		}
	}
	if base == "." || base == "/" || base == "" {
		return root
	}
	return base
}

// describeModel fills a row's backbone description and, for a checkpoint,
// its pre-training from the checkpoint's meta.json.
func describeModel(ctx context.Context, m Model, row *report.Row) error {
	switch {
	case m.RawPixels:
		return nil
	case m.RandomInit:
		row.Backbone, row.Seed = backboneOf(m.Config), m.Config.Seed
		return nil
	}
	_, meta, err := checkpoint.Resolve(ctx, m.Checkpoint)
	if err != nil {
		return err
	}
	row.Backbone = checkpoint.Describe(meta.Arch, meta.BackboneOptions())
	p := &report.Pretraining{Config: meta.ConfigSource, ConfigHash: meta.ConfigHash, Method: meta.Method, Backbone: row.Backbone,
		Epochs: meta.Epochs, ItersPerEpoch: meta.ItersPerEpoch, BatchSize: meta.BatchSize, Steps: meta.Step, ImagesSeen: meta.ImagesSeen, Seed: meta.Seed}
	if cfg, err := meta.ParseConfig(); err == nil {
		p.Views = viewsOf(cfg)
	}
	row.Pretraining = p
	return nil
}

func backboneOf(cfg *configs.Config) string {
	return checkpoint.Describe(cfg.Model.BackboneArch, backbone.Options{Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem, PatchSize: cfg.ViT.PatchSize})
}

// viewsOf spells a config's multi-crop views: "2×28 + 6×16 px".
func viewsOf(cfg *configs.Config) string {
	mv := cfg.MultiViewsTransforms
	g, l := 2, mv.LocalCropsNumber
	if len(mv.NmbCrops) == 2 {
		g, l = mv.NmbCrops[0], mv.NmbCrops[1]
	}
	return fmt.Sprintf("%d×%d + %d×%d px", g, mv.GlobalCropSize, l, mv.LocalCropSize)
}
