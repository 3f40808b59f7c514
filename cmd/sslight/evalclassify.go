package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/trainer/features"
	"github.com/sslight-go/sslight/trainer/finetune"
	"github.com/sslight-go/sslight/transforms"
	"github.com/sslight-go/sslight/transforms/source"
)

// Classification protocols `sslight eval` runs.
const (
	protoKNN    = "knn"
	protoLinear = "linear"
	protoSemi1  = "semi1"
	protoSemi10 = "semi10"
)

var allProtocols = []string{protoKNN, protoLinear, protoSemi1, protoSemi10, protoDetection}

// Linear protocol modes (--linear-mode).
const (
	linearFast      = "fast"
	linearReference = "reference"
)

// evalModel is one model to score.
type evalModel struct {
	Name, Method, Setting string
	Checkpoint            string          // a checkpoint folder
	RandomInit            bool            // Config's architecture, freshly initialised
	RawPixels             bool            // the normalised pixels themselves
	Config                *configs.Config // view/arch config (the checkpoint's own when nil)
	Training              map[string]float64
}

// evalSpec is what every model is scored on.
type evalSpec struct {
	Train, Val           string // sources
	Format               string
	TrainSplit, ValSplit string
	Protocols            []string
	Seed                 uint64
	Linear               eval.LinearConfig
	LinearMode           string // linearFast ("" too) or linearReference
	RefLinear            eval.ReferenceLinearConfig
	Finetune             finetune.Config
	// SemiLists are the subset lists (--semi1-list, --semi10-list) by
	// protocol: the reference's semi_1percent.txt / semi_10percent.txt
	// format; a protocol without one takes a class-stratified subset.
	SemiLists map[string]string
	Detection detectSpec // the detection protocol's sets and settings
	Progress  io.Writer
}

// slug makes a folder name of a model name.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	return strings.Trim(b.String(), "-")
}

// checkpointConfig returns the training config a checkpoint recorded.
func checkpointConfig(ctx context.Context, dir string) (*configs.Config, *checkpoint.Meta, error) {
	_, meta, err := resolveCheckpoint(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := configs.Parse(meta.Config, "checkpoint config")
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint config: %w", err)
	}
	return cfg, meta, nil
}

// resolveCheckpoint accepts a checkpoint folder or a training output
// folder (its newest checkpoint) and returns the folder and its meta.
func resolveCheckpoint(ctx context.Context, dir string) (string, *checkpoint.Meta, error) {
	dir = strings.TrimSuffix(dir, "/")
	var meta checkpoint.Meta
	if ok, _ := storage.Exists(ctx, storage.Join(dir, checkpoint.MetaFile)); !ok {
		d, m, err := checkpoint.Latest(ctx, dir)
		if err != nil {
			return "", nil, err
		}
		if m == nil {
			return "", nil, fmt.Errorf("%s holds no checkpoint (no meta.json, no checkpoints/step-*/meta.json)", dir)
		}
		return d, m, nil
	}
	if err := readJSON(ctx, storage.Join(dir, checkpoint.MetaFile), &meta); err != nil {
		return "", nil, err
	}
	return dir, &meta, nil
}

// evaluateModels extracts features for every model, runs the protocols
// and returns the report rows. Sources are listed first so a label set
// that does not match, or an empty validation set, fails before any long
// work.
func evaluateModels(ctx context.Context, models []evalModel, spec evalSpec, out string) ([]report.Row, error) {
	if len(models) == 0 {
		return nil, errors.New("nothing to evaluate")
	}
	for _, p := range spec.Protocols {
		if !slices.Contains(allProtocols, p) {
			return nil, fmt.Errorf("unknown protocol %q (have %s)", p, strings.Join(allProtocols, ", "))
		}
	}
	if err := checkCheckpoints(ctx, models); err != nil {
		return nil, err
	}
	viewCfg := models[0].Config
	if viewCfg == nil {
		c, _, err := checkpointConfig(ctx, models[0].Checkpoint)
		if err != nil {
			return nil, err
		}
		viewCfg = c
	}
	format := spec.Format
	if format == "" {
		format = viewCfg.Data.Format
	}
	// Detection alone needs no classification sources; its own sets are
	// loaded (and checked) before any model is scored.
	det, err := prepareDetection(ctx, spec, viewCfg)
	if err != nil {
		return nil, err
	}
	if !hasClassification(spec.Protocols) {
		return detectionOnly(ctx, models, spec, out, det)
	}
	trainList, err := source.List(ctx, format, spec.Train, source.Options{Split: spec.TrainSplit})
	if err != nil {
		return nil, fmt.Errorf("--train: %w", err)
	}
	valList, err := source.List(ctx, format, spec.Val, source.Options{Split: spec.ValSplit})
	if err != nil {
		return nil, fmt.Errorf("--val: %w", err)
	}
	switch {
	case len(trainList.Items) == 0:
		return nil, fmt.Errorf("--train %s lists no images", spec.Train)
	case len(valList.Items) == 0:
		return nil, fmt.Errorf("--val %s lists no images: an empty validation set scores nothing", spec.Val)
	case len(trainList.Classes) == 0:
		return nil, fmt.Errorf("--train %s has no class labels (the %s layout gives none); classification protocols need labelled data", spec.Train, format)
	case !slices.Equal(trainList.Classes, valList.Classes):
		return nil, fmt.Errorf("the label sets do not match: --train has classes %s, --val %s", clip(trainList.Classes), clip(valList.Classes))
	}
	classes := len(trainList.Classes)
	// A subset list that does not fit the training set fails now, not
	// after the first model's features.
	for p, frac := range map[string]float64{protoSemi1: 0.01, protoSemi10: 0.10} {
		if slices.Contains(spec.Protocols, p) && spec.SemiLists[p] != "" {
			if _, _, err := semiSubset(ctx, spec, trainList, classes, frac); err != nil {
				return nil, err
			}
		}
	}
	var rows []report.Row
	for _, m := range models {
		row, err := evaluateModel(ctx, m, spec, format, out, trainList, valList, classes, det)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		rows = append(rows, *row)
	}
	return rows, nil
}

// checkCheckpoints loads every checkpoint strictly (architecture, tensor
// names and shapes) so that a broken second checkpoint fails the command
// before the first one's features are extracted.
func checkCheckpoints(ctx context.Context, models []evalModel) error {
	for _, m := range models {
		if m.Checkpoint == "" || m.RandomInit || m.RawPixels {
			continue
		}
		fm, err := features.LoadCheckpoint(ctx, m.Checkpoint)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		fm.Close()
	}
	return nil
}

func clip(s []string) string {
	if len(s) > 6 {
		return fmt.Sprintf("[%s … %d in all]", strings.Join(s[:6], " "), len(s))
	}
	return fmt.Sprint(s)
}

func evaluateModel(ctx context.Context, m evalModel, spec evalSpec, format, out string, trainList, valList *source.Listing, classes int, det *detectionData) (*report.Row, error) {
	row := &report.Row{Name: m.Name, Method: m.Method, Setting: m.Setting, Dataset: datasetName(m, spec),
		Metrics: map[string]float64{}, Protocols: map[string]string{}, Seconds: map[string]float64{}, Training: m.Training}
	dir := storage.Join(out, "features", slug(m.Name))
	if spec.Progress != nil {
		fmt.Fprintf(spec.Progress, "eval %s: extracting features\n", m.Name)
	}
	extract := func(src, split, sub string) (eval.Features, *evaluate.Summary, error) {
		o := evaluate.Options{Config: m.Config, Checkpoint: m.Checkpoint, RandomInit: m.RandomInit, RawPixels: m.RawPixels,
			Source: src, Format: format, Split: split, Out: storage.Join(dir, sub), Progress: spec.Progress}
		sum, err := evaluate.Extract(ctx, o)
		if err != nil {
			return eval.Features{}, nil, err
		}
		dim, x, labels, _, err := evaluate.LoadFeatures(ctx, o.Out)
		if err != nil {
			return eval.Features{}, nil, err
		}
		return eval.Features{Dim: dim, X: x, Labels: labels}, sum, nil
	}
	t0 := time.Now()
	trainF, ts, err := extract(spec.Train, spec.TrainSplit, "train")
	if err != nil {
		return nil, err
	}
	valF, vs, err := extract(spec.Val, spec.ValSplit, "val")
	if err != nil {
		return nil, err
	}
	row.Seconds["extract"] = time.Since(t0).Seconds()
	row.Training = mergeFloat(row.Training, map[string]float64{"extract_images_per_sec": float64(ts.Samples+vs.Samples) / row.Seconds["extract"]})
	row.Arch, row.ConfigHash = ts.Arch, ts.ConfigHash
	if m.Checkpoint != "" {
		row.Checkpoint = ts.Checkpoint
	}
	if ts.DeadLetters+vs.DeadLetters > 0 {
		row.Protocols["dead_letters"] = fmt.Sprintf("%d train and %d validation images could not be used (see %s)", ts.DeadLetters, vs.DeadLetters, dir)
	}
	for _, p := range spec.Protocols {
		t := time.Now()
		switch p {
		case protoKNN:
			res, err := eval.KNN(trainF, valF, classes, eval.DefaultKs(), eval.DefaultKNNTemperature)
			if err != nil {
				return nil, err
			}
			var desc []string
			for _, r := range res {
				desc = append(desc, fmt.Sprintf("k=%d %.2f/%.2f", r.K, r.Top1, r.Top5))
				if r.K == 20 || (len(res) == 1) {
					row.Metrics["knn_top1"] = r.Top1
					if r.HasTop5 {
						row.Metrics["knn_top5"] = r.Top5
					}
				}
			}
			row.Protocols[protoKNN] = fmt.Sprintf("DINO weighted kNN on L2-normalised features, T=%.2f, %d train / %d val images; table shows k=20; top-1/top-5 by k: %s",
				eval.DefaultKNNTemperature, trainF.Len(), valF.Len(), strings.Join(desc, ", "))
		case protoLinear:
			if spec.LinearMode == linearReference {
				res, desc, err := referenceLinear(ctx, m, spec, trainList, valF, classes)
				if err != nil {
					return nil, err
				}
				row.Metrics["linear_top1"] = res.Top1
				if res.HasTop5 {
					row.Metrics["linear_top5"] = res.Top5
				}
				row.Protocols[protoLinear] = desc
				break
			}
			cfg := spec.Linear
			cfg.Seed = spec.Seed
			res, err := eval.Linear(trainF, valF, classes, cfg)
			if err != nil {
				return nil, err
			}
			row.Metrics["linear_top1"] = res.Top1
			if res.HasTop5 {
				row.Metrics["linear_top5"] = res.Top5
			}
			row.Protocols[protoLinear] = fmt.Sprintf("fast mode: linear classifier on frozen precomputed features (standardised=%v), SGD momentum %.1f, lr %g cosine, batch %d, %d epochs, wd %g",
				cfg.Standardize, cfg.Momentum, cfg.LR, cfg.BatchSize, cfg.Epochs, cfg.WeightDecay)
		case protoSemi1, protoSemi10:
			if m.RawPixels {
				continue // no backbone to fine-tune
			}
			frac := 0.01
			if p == protoSemi10 {
				frac = 0.10
			}
			res, desc, err := semiSupervised(ctx, m, spec, trainList, valList, classes, frac)
			if err != nil {
				return nil, err
			}
			row.Metrics[p+"_top1"] = res.Top1
			if res.HasTop5 {
				row.Metrics[p+"_top5"] = res.Top5
			}
			row.Protocols[p] = desc
		case protoDetection:
			if m.RawPixels {
				continue // no backbone to put a detector on
			}
			if err := detectionProtocol(ctx, m, spec, det, out, row); err != nil {
				return nil, err
			}
		}
		row.Seconds[p] = time.Since(t).Seconds()
		if spec.Progress != nil {
			fmt.Fprintf(spec.Progress, "eval %s: %s done in %s\n", m.Name, p, time.Since(t).Round(time.Millisecond))
		}
	}
	return row, nil
}

func datasetName(m evalModel, spec evalSpec) string {
	if m.Config != nil && m.Config.Train.Dataset != "" {
		return m.Config.Train.Dataset
	}
	return spec.Train
}

func mergeFloat(a, b map[string]float64) map[string]float64 {
	if a == nil {
		a = map[string]float64{}
	}
	for k, v := range b {
		a[k] = v
	}
	return a
}

// semiSupervised fine-tunes the model's backbone with a linear head on a
// class-stratified fraction of the train labels and scores the whole
// validation set.
func semiSupervised(ctx context.Context, m evalModel, spec evalSpec, trainList, valList *source.Listing, classes int, frac float64) (*finetune.Result, string, error) {
	cfg := m.Config
	var bb backbone.Backbone
	var err error
	if m.Checkpoint != "" {
		var meta *checkpoint.Meta
		var dir string
		if dir, meta, err = resolveCheckpoint(ctx, m.Checkpoint); err != nil {
			return nil, "", err
		}
		if cfg, err = configs.Parse(meta.Config, "checkpoint config"); err != nil {
			return nil, "", err
		}
		if bb, err = backbone.New(meta.Arch, backbone.Options{Width: meta.Width, SmallImageStem: meta.SmallImageStem, PatchSize: meta.PatchSize}); err != nil {
			return nil, "", err
		}
		f, err := readSafetensors(ctx, storage.Join(dir, checkpoint.BackboneFile))
		if err != nil {
			return nil, "", err
		}
		if err := backbone.LoadStateDict(bb, f); err != nil {
			return nil, "", err
		}
	} else {
		if bb, err = backbone.New(cfg.Model.BackboneArch, backbone.Options{Seed: uint64(cfg.Seed), Width: cfg.Model.Width,
			SmallImageStem: cfg.Model.SmallImageStem, PatchSize: cfg.ViT.PatchSize}); err != nil {
			return nil, "", err
		}
	}
	idx, how, err := semiSubset(ctx, spec, trainList, classes, frac)
	if err != nil {
		return nil, "", err
	}
	view := transforms.EvalView{Size: cfg.MultiViewsTransforms.GlobalCropSize, Mean: f32x3(cfg.Data.Mean), Std: f32x3(cfg.Data.Std), PixelLimit: cfg.Data.PixelLimit}
	sub := make([]source.Item, len(idx))
	for i, j := range idx {
		sub[i] = trainList.Items[j]
	}
	train, err := loadViews(ctx, view, sub)
	if err != nil {
		return nil, "", err
	}
	val, err := loadViews(ctx, view, valList.Items)
	if err != nil {
		return nil, "", err
	}
	ft := spec.Finetune
	ft.Seed = spec.Seed
	res, err := finetune.Run(bb, train, val, classes, ft)
	if err != nil {
		return nil, "", err
	}
	desc := fmt.Sprintf("fine-tune backbone + linear head on %d labelled images (%.0f%%, %s): SGD momentum %.1f, lr %g cosine, batch %d, %d epochs, wd %g, flips=%v; scored on %d validation images",
		train.N, 100*frac, how, ft.Momentum, ft.LR, ft.BatchSize, ft.Epochs, ft.WeightDecay, ft.Flip, val.N)
	return res, desc, nil
}

// semiSubset picks the labelled training images of a semi-supervised
// protocol: the names of its subset list when one was given, matched on
// the listed items' file names, otherwise a class-stratified fraction.
func semiSubset(ctx context.Context, spec evalSpec, trainList *source.Listing, classes int, frac float64) ([]int, string, error) {
	proto := protoSemi1
	if frac > 0.05 {
		proto = protoSemi10
	}
	if list := spec.SemiLists[proto]; list != "" {
		raw, err := storage.ReadFile(ctx, list)
		if err != nil {
			return nil, "", fmt.Errorf("%s subset list: %w", proto, err)
		}
		names, err := eval.ParseSubsetList(bytes.NewReader(raw))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", list, err)
		}
		paths := make([]string, len(trainList.Items))
		for i, it := range trainList.Items {
			paths[i] = it.Key
		}
		idx, err := eval.MatchSubset(names, paths)
		if err != nil {
			return nil, "", fmt.Errorf("%s against --train %s: %w", list, spec.Train, err)
		}
		return idx, "the images " + list + " names", nil
	}
	labels := make([]int, len(trainList.Items))
	for i, it := range trainList.Items {
		labels[i] = it.Label
	}
	idx, err := eval.StratifiedSubset(labels, classes, frac, spec.Seed)
	if err != nil {
		return nil, "", err
	}
	return idx, fmt.Sprintf("class-stratified, seed %d", spec.Seed), nil
}

func f32x3(v []float64) [3]float32 {
	var out [3]float32
	for i := range out {
		if len(v) > 0 {
			out[i] = float32(v[min(i, len(v)-1)])
		}
	}
	return out
}

// loadViews applies the evaluation view to items in parallel; an image
// that cannot be used is an error here (the extraction pipeline already
// dead-letters and counts them for the feature protocols).
func loadViews(ctx context.Context, view transforms.EvalView, items []source.Item) (finetune.Images, error) {
	s := view.Size
	n := 3 * s * s
	im := finetune.Images{N: len(items), H: s, W: s, X: make([]float32, len(items)*n), Labels: make([]int, len(items))}
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for w := range errs {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var sc transforms.EvalScratch
			for i := w; i < len(items); i += len(errs) {
				if stage, err := view.ApplyItem(ctx, items[i], im.X[i*n:(i+1)*n], &sc); err != nil {
					errs[w] = fmt.Errorf("%s: %s: %w", items[i].URI, stage, err)
					return
				}
				im.Labels[i] = items[i].Label
			}
		}(w)
	}
	wg.Wait()
	return im, errors.Join(errs...)
}

func readSafetensors(ctx context.Context, uri string) (*safetensors.File, error) {
	b, err := storage.ReadFile(ctx, uri)
	if err != nil {
		return nil, err
	}
	return safetensors.Decode(b)
}

func readJSON(ctx context.Context, uri string, v any) error {
	return jsonfile.Read(ctx, uri, v)
}

// evaluateCheckpoint scores one checkpoint with kNN and the linear probe
// (sslight retrain's evaluation) and returns the metrics.
func evaluateCheckpoint(ctx context.Context, cfg *configs.Config, ckpt, train, val, out string) (map[string]float64, error) {
	spec := evalSpec{Train: train, Val: val, Protocols: []string{protoKNN, protoLinear}, Seed: uint64(cfg.Seed),
		Linear: eval.DefaultLinearConfig(), Progress: os.Stderr}
	rows, err := evaluateModels(ctx, []evalModel{{Name: "checkpoint", Checkpoint: ckpt, Config: cfg}}, spec, out)
	if err != nil {
		return nil, err
	}
	return rows[0].Metrics, nil
}

func storageJoinState(state, elem string) string { return storage.Join(state, elem) }
