package evaluate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/detect"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/trainer/features"
	"github.com/sslight-go/sslight/trainer/finetune"
	"github.com/sslight-go/sslight/transforms/source"
)

// The protocols Models runs (Spec.Protocols).
const (
	// ProtocolKNN is DINO's weighted kNN on the extracted features.
	ProtocolKNN = "knn"
	// ProtocolLinear is the linear probe (Spec.LinearMode says which).
	ProtocolLinear = "linear"
	// ProtocolSemi1 and ProtocolSemi10 fine-tune the backbone on 1% or 10%
	// of the training labels.
	ProtocolSemi1  = "semi1"
	ProtocolSemi10 = "semi10"
	// ProtocolDetection fine-tunes a detector on a COCO-format set.
	ProtocolDetection = "detection"
)

// Protocols lists every protocol, in the order a report shows them.
var Protocols = []string{ProtocolKNN, ProtocolLinear, ProtocolSemi1, ProtocolSemi10, ProtocolDetection}

// Linear protocol modes (Spec.LinearMode).
const (
	// LinearFast trains a linear classifier on the frozen precomputed
	// features.
	LinearFast = "fast"
	// LinearReference is the reference's protocol: augmented training
	// images through the frozen backbone every epoch.
	LinearReference = "reference"
)

// Model is one model to score: a checkpoint, or one of the paper's two
// reference rows (RandomInit, RawPixels).
type Model struct {
	// Name is the report's row name ("DINO + SSLight"); Method and Setting
	// go to the row as they are (report.Setting*).
	Name, Method, Setting string
	// Checkpoint is a checkpoint folder or a training output folder (its
	// newest checkpoint).
	Checkpoint string
	// Weights picks the checkpoint's network every protocol uses:
	// checkpoint.Student ("" too) or checkpoint.Teacher (DINO's EMA
	// teacher, MoCo's key encoder; SwAV has none).
	Weights checkpoint.Weights
	// RandomInit scores Config's architecture freshly initialised (seed
	// SEED); RawPixels the normalised pixels themselves.
	RandomInit bool
	RawPixels  bool
	// Config gives the views and, for RandomInit, the architecture; with a
	// Checkpoint it may be nil (the checkpoint's own training config).
	Config *configs.Config
	// Training describes the pre-training, copied to the row.
	Training map[string]float64
}

// Spec is what every model is scored on. Error messages name the sources
// by `sslight eval`'s flags (--train, --val, --det-train, …).
type Spec struct {
	// Train and Val are the labelled classification sources, listed in
	// Format (default: the first model's DATA.FORMAT) with their splits.
	Train, Val           string
	Format               string
	TrainSplit, ValSplit string
	// Protocols are the protocols to run (Protocols' names).
	Protocols []string
	// Seed seeds subsets, shuffles and the classifiers.
	Seed uint64
	// LinearMode picks the linear protocol: LinearFast ("" too) with
	// Linear, or LinearReference with RefLinear (SetLinear sets both).
	Linear     eval.LinearConfig
	LinearMode string
	RefLinear  eval.ReferenceLinearConfig
	// Finetune configures the semi-supervised protocols.
	Finetune finetune.Config
	// SemiLists are subset lists by protocol (ProtocolSemi1, ProtocolSemi10)
	// in the reference's semi_1percent.txt / semi_10percent.txt format; a
	// protocol without one takes a class-stratified subset.
	SemiLists map[string]string
	// Detection is the detection protocol's sets and settings.
	Detection DetectionSpec
	// DecodeMemoryMB bounds the estimated memory of the decodes running at
	// once in a process (0: a quarter of its memory); see
	// Options.DecodeMemoryMB.
	DecodeMemoryMB int
	// Device is where the feature extraction runs its models
	// (Options.Device); the in-memory protocols (fine-tuning, detection)
	// train on the CPU.
	Device string
	// Progress, when set, receives a line per protocol and model.
	Progress io.Writer
}

// DetectionSpec is what the detection protocol runs on.
type DetectionSpec struct {
	// Train and Val are COCO-format roots, TrainSplit and ValSplit their
	// splits (annotations/instances_<split>.json and <split>/).
	Train, Val           string
	TrainSplit, ValSplit string
	// Size is the square input size; 0 takes the first training image's
	// width (the generator's canvases are all one size).
	Size   int
	Config detect.Config
}

// CheckProtocols refuses a protocol name Models does not know.
func CheckProtocols(protocols []string) error {
	for _, p := range protocols {
		if !slices.Contains(Protocols, p) {
			return fmt.Errorf("unknown protocol %q (have %s)", p, strings.Join(Protocols, ", "))
		}
	}
	return nil
}

// HasClassification says whether protocols asks for any protocol that
// needs extracted features and labelled classification sources.
func HasClassification(protocols []string) bool {
	return slices.ContainsFunc(protocols, func(p string) bool { return p != ProtocolDetection })
}

// CheckpointModel is the model of a checkpoint folder (or training
// output folder), named and classified after the training config it
// recorded.
func CheckpointModel(ctx context.Context, dir string) (Model, error) {
	_, meta, err := checkpoint.Resolve(ctx, dir)
	if err != nil {
		return Model{}, err
	}
	cfg, err := meta.ParseConfig()
	if err != nil {
		return Model{}, err
	}
	return Model{Name: ModelName(cfg), Method: meta.Method, Setting: SettingOf(cfg), Checkpoint: dir, Config: cfg}, nil
}

// WithWeights returns m scoring the checkpoint's network w; a teacher's
// row is named "<name> (teacher)", so that its features, detections and
// table row stay apart from the student's.
func (m Model) WithWeights(w checkpoint.Weights) Model {
	m.Weights = w.OrStudent()
	if m.Weights == checkpoint.Teacher && !strings.HasSuffix(m.Name, " (teacher)") {
		m.Name += " (teacher)"
	}
	return m
}

// RawPixelsModel is the raw-pixel reference row, with cfg's views.
func RawPixelsModel(cfg *configs.Config) Model {
	return Model{Name: "raw pixels", Setting: report.SettingRawPixels, RawPixels: true, Config: cfg}
}

// RandomInitModel is the random-init reference row: cfg's architecture
// initialised with its SEED.
func RandomInitModel(cfg *configs.Config) Model {
	return Model{Name: "random init", Setting: report.SettingRandomInit, RandomInit: true, Config: cfg}
}

// FeaturesDir is where Models writes a model's extracted features
// (train/ and val/, each an Extract output) under out.
func FeaturesDir(out, model string) string { return storage.Join(out, "features", slug(model)) }

// DetectionsFile is where Models writes a model's validation detections
// (a COCO result list) under out.
func DetectionsFile(out, model string) string {
	return storage.Join(out, "detection", slug(model), "detections.json")
}

// Models extracts features for every model, runs the protocols and returns
// one report row per model (the raw-pixel row is left out of a
// detection-only run: it has no backbone). Everything that can be checked
// before the long work is: the protocol names, every checkpoint (loaded
// strictly), the sources (a label set that does not match, an empty
// validation set, unlabelled data), the subset lists and the detection
// sets.
func Models(ctx context.Context, models []Model, spec Spec, out string) ([]report.Row, error) {
	rows, _, err := score(ctx, models, spec, out)
	return rows, err
}

// score is Models, also returning the listed classification sources (nil
// for detection alone).
func score(ctx context.Context, models []Model, spec Spec, out string) ([]report.Row, *classificationData, error) {
	if len(models) == 0 {
		return nil, nil, errors.New("nothing to evaluate")
	}
	if err := CheckProtocols(spec.Protocols); err != nil {
		return nil, nil, err
	}
	if err := checkCheckpoints(ctx, models); err != nil {
		return nil, nil, err
	}
	viewCfg, err := modelConfig(ctx, models[0])
	if err != nil {
		return nil, nil, err
	}
	format := spec.Format
	if format == "" {
		format = viewCfg.Data.Format
	}
	if HasClassification(spec.Protocols) && format == source.FormatFolder {
		return nil, nil, fmt.Errorf("--train %s has no class labels (the folder layout gives none), and the classification protocols (%s) need labelled --train and --val sets "+
			"(imagenet, idx or coco layout); to embed unlabelled images, and see each one's nearest neighbours, run `sslight embed --checkpoint CKPT --source %s --out URI --nearest 5`",
			spec.Train, strings.Join(classificationProtocols(spec.Protocols), ", "), spec.Train)
	}
	// Detection alone needs no classification sources; its own sets are
	// loaded (and checked) before any model is scored.
	det, err := prepareDetection(ctx, spec, viewCfg)
	if err != nil {
		return nil, nil, err
	}
	if !HasClassification(spec.Protocols) {
		rows, err := detectionOnly(ctx, models, spec, out, det)
		return rows, nil, err
	}
	trainList, err := source.List(ctx, format, spec.Train, source.Options{Split: spec.TrainSplit})
	if err != nil {
		return nil, nil, fmt.Errorf("--train: %w", err)
	}
	valList, err := source.List(ctx, format, spec.Val, source.Options{Split: spec.ValSplit})
	if err != nil {
		return nil, nil, fmt.Errorf("--val: %w", err)
	}
	switch {
	case len(trainList.Items) == 0:
		return nil, nil, fmt.Errorf("--train %s lists no images", spec.Train)
	case len(valList.Items) == 0:
		return nil, nil, fmt.Errorf("--val %s lists no images: an empty validation set scores nothing", spec.Val)
	case len(trainList.Classes) == 0:
		return nil, nil, fmt.Errorf("--train %s has no class labels (the %s layout gives none); classification protocols need labelled data (for unlabelled images: `sslight embed`)", spec.Train, format)
	case !slices.Equal(trainList.Classes, valList.Classes):
		return nil, nil, fmt.Errorf("the label sets do not match: --train has classes %s, --val %s", clip(trainList.Classes), clip(valList.Classes))
	}
	data := &classificationData{format: format, train: trainList, val: valList, classes: len(trainList.Classes)}
	if slices.Contains(spec.Protocols, ProtocolKNN) {
		if err := checkKNNLabels(itemLabels(trainList.Items), itemLabels(valList.Items), trainList.Classes, spec.Train); err != nil {
			return nil, nil, err
		}
	}
	// A subset list that does not fit the training set fails now, not
	// after the first model's features.
	for _, p := range []string{ProtocolSemi1, ProtocolSemi10} {
		if slices.Contains(spec.Protocols, p) && spec.SemiLists[p] != "" {
			if _, _, err := semiSubset(ctx, spec, data, p); err != nil {
				return nil, nil, err
			}
		}
	}
	var rows []report.Row
	for _, m := range models {
		row, err := evaluateModel(ctx, m, spec, out, data, det)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		rows = append(rows, *row)
	}
	return rows, data, nil
}

// classificationData are the listed classification sources, shared by
// every model.
type classificationData struct {
	format     string
	train, val *source.Listing
	classes    int
}

// modelConfig is the config a model's views follow: its own, or its
// checkpoint's training config.
func modelConfig(ctx context.Context, m Model) (*configs.Config, error) {
	if m.Config != nil {
		return m.Config, nil
	}
	_, meta, err := checkpoint.Resolve(ctx, m.Checkpoint)
	if err != nil {
		return nil, err
	}
	return meta.ParseConfig()
}

// checkCheckpoints loads every checkpoint strictly (architecture, tensor
// names and shapes) so that a broken second checkpoint fails the run
// before the first one's features are extracted.
func checkCheckpoints(ctx context.Context, models []Model) error {
	for _, m := range models {
		if m.Checkpoint == "" || m.RandomInit || m.RawPixels {
			continue
		}
		if _, err := checkpoint.LoadBackbone(ctx, m.Checkpoint, m.Weights); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
	}
	return nil
}

// newRow starts a model's report row.
func newRow(m Model, dataset string) *report.Row {
	row := &report.Row{Name: m.Name, Method: m.Method, Setting: m.Setting, Dataset: dataset,
		Metrics: map[string]float64{}, Protocols: map[string]string{}, Seconds: map[string]float64{}, Training: maps.Clone(m.Training)}
	if m.Checkpoint != "" && !m.RandomInit && !m.RawPixels {
		row.Weights = string(m.Weights.OrStudent())
	}
	return row
}

// evaluateModel extracts one model's features and runs every protocol on
// them.
func evaluateModel(ctx context.Context, m Model, spec Spec, out string, data *classificationData, det *detectionData) (*report.Row, error) {
	row := newRow(m, DatasetName(data.train.Root))
	if err := describeModel(ctx, m, row); err != nil {
		return nil, err
	}
	dir := FeaturesDir(out, m.Name)
	logf(spec.Progress, "eval %s: extracting features", m.Name)
	extract := func(src, split, sub string) (eval.Features, *Summary, error) {
		o := Options{Config: m.Config, Checkpoint: m.Checkpoint, Weights: m.Weights, RandomInit: m.RandomInit, RawPixels: m.RawPixels,
			Source: src, Format: data.format, Split: split, Out: storage.Join(dir, sub), Progress: spec.Progress,
			DecodeMemoryMB: spec.DecodeMemoryMB, Device: spec.Device}
		sum, err := Extract(ctx, o)
		if err != nil {
			return eval.Features{}, nil, err
		}
		dim, x, labels, _, err := LoadFeatures(ctx, o.Out)
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
	if row.Training == nil {
		row.Training = map[string]float64{}
	}
	row.Training["extract_images_per_sec"] = float64(ts.Samples+vs.Samples) / row.Seconds["extract"]
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
		case ProtocolKNN:
			if err := knnProtocol(trainF, valF, data.train.Classes, spec.Train, row); err != nil {
				return nil, err
			}
		case ProtocolLinear:
			if err := linearProtocol(ctx, m, spec, data, trainF, valF, row); err != nil {
				return nil, err
			}
		case ProtocolSemi1, ProtocolSemi10:
			if m.RawPixels {
				continue // no backbone to fine-tune
			}
			if err := semiProtocol(ctx, m, spec, data, p, row); err != nil {
				return nil, err
			}
		case ProtocolDetection:
			if m.RawPixels {
				continue // no backbone to put a detector on
			}
			if err := detectionProtocol(ctx, m, spec, det, out, row); err != nil {
				return nil, err
			}
		}
		row.Seconds[p] = time.Since(t).Seconds()
		logf(spec.Progress, "eval %s: %s done in %s", m.Name, p, time.Since(t).Round(time.Millisecond))
	}
	return row, nil
}

// modelBackbone returns the backbone a protocol fine-tunes and the config
// its views follow: a checkpoint's student or teacher (m.Weights), loaded
// strictly, with the checkpoint's training config (ck says which
// checkpoint), or the model config's architecture freshly initialised (ck
// nil).
func modelBackbone(ctx context.Context, m Model) (bb backbone.Backbone, cfg *configs.Config, ck *checkpoint.Backbone, err error) {
	if m.Checkpoint == "" {
		cfg = m.Config
		bb, err = backbone.New(cfg.Model.BackboneArch, backbone.Options{Seed: uint64(cfg.Seed), Width: cfg.Model.Width,
			SmallImageStem: cfg.Model.SmallImageStem, PatchSize: cfg.ViT.PatchSize})
		return bb, cfg, nil, err
	}
	if ck, err = checkpoint.LoadBackbone(ctx, m.Checkpoint, m.Weights); err != nil {
		return nil, nil, nil, err
	}
	if cfg, err = ck.Meta.ParseConfig(); err != nil {
		return nil, nil, nil, err
	}
	return ck.Net, cfg, ck, nil
}

// featureModel builds the feature extractor of one model and the config
// its views follow.
func featureModel(ctx context.Context, m Model) (*features.Model, *configs.Config, error) {
	cfg := m.Config
	switch {
	case m.RawPixels:
		return features.NewRawPixels(), cfg, nil
	case m.RandomInit:
		arch := features.Arch{Name: cfg.Model.BackboneArch, Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem, PatchSize: cfg.ViT.PatchSize}
		fm, err := features.NewRandomInit(arch, uint64(cfg.Seed))
		return fm, cfg, err
	}
	fm, err := features.LoadCheckpoint(ctx, m.Checkpoint, m.Weights)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		if cfg, err = fm.Meta().ParseConfig(); err != nil {
			return nil, nil, err
		}
	}
	return fm, cfg, nil
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

// clip shortens a long list for a message.
func clip(s []string) string {
	if len(s) > 6 {
		return fmt.Sprintf("[%s … %d in all]", strings.Join(s[:6], " "), len(s))
	}
	return fmt.Sprint(s)
}

func logf(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", a...)
	}
}
