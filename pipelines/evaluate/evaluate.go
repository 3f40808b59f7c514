// Package evaluate builds and runs the evaluation pipeline. Its first stage,
// here, is parallel feature extraction: list a labelled data set, turn every
// image into its evaluation view (Resize + CenterCrop + Normalize) and a
// feature vector of a checkpoint's backbone (or of a random-init backbone,
// or the raw pixels, the two baselines), and write the vectors as
// sinks/featurefile parts with an index and a dead-letter file. The protocols
// (trainer/eval) read them back with LoadFeatures.
//
// Shape of the pipeline (only small records cross the shuffle):
//
//	listing.jsonl ─ textio.Read ─ AssignShards (a stable hash → part) ─ GroupByKey
//	   ─ ExtractFeatures (model loaded once per DoFn instance in Setup; a goroutine
//	     pool decodes and transforms, the model extracts in batches; one part per group)
//	   ─ part infos + dead letters ─ CoGroupByKey on one key ─ WriteFeatureIndex
//
// Output under Out:
//
//	features/part-NNNNN-of-MMMMM.safetensors   "features" F32 [n, D], "labels" I64 [n], keys in metadata
//	features.json                              the index (sinks/featurefile.Index), written last
//	dead-letter.jsonl                          every input without a feature vector, with the reason
//	listing.jsonl, summary.json                the listed inputs; counts and timings of the run
//
// Models is the evaluation as a whole, what `sslight eval`, `run`,
// `retrain` and the pre-training monitor call: it extracts every model's
// features and scores them with the paper's protocols (the math is
// trainer/eval's, trainer/finetune's and trainer/detect's), one file per
// concern — knn.go, linear.go (fast and the reference's), semi.go (1% /
// 10% fine-tuning), detection.go (COCO box AP) — and report.go names the
// models and writes the report files and accuracy.png.
package evaluate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/featurefile"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/features"
	"github.com/sslight-go/sslight/transforms"
	"github.com/sslight-go/sslight/transforms/beamfs"
	"github.com/sslight-go/sslight/transforms/source"
)

// Files written next to the features.
const (
	ListingFileName = "listing.jsonl"
	SummaryFileName = "summary.json"
)

// DefaultGroupSize is the number of images per features part when
// Options.GroupSize is 0: 1024 ResNet-50 vectors are 8 MB.
const DefaultGroupSize = 1024

// Options configure one extraction run. Exactly one of Checkpoint,
// RandomInit and RawPixels selects the features.
type Options struct {
	// Config gives the evaluation view (MULTI_VIEWS_TRANSFORMS.
	// GLOBAL_CROP_SIZE, DATA.MEAN, DATA.STD, DATA.PIXEL_LIMIT), the default
	// source format (DATA.FORMAT) and, for RandomInit, the architecture
	// (MODEL, VIT.PATCH_SIZE) and seed (SEED). With a Checkpoint it may be
	// nil: the checkpoint's own training config is used.
	Config *configs.Config
	// Checkpoint is a checkpoint folder (or a training output folder: its
	// newest checkpoint).
	Checkpoint string
	// Weights picks the checkpoint's network: checkpoint.Student ("" too)
	// or checkpoint.Teacher (DINO's EMA teacher, MoCo's key encoder).
	Weights checkpoint.Weights
	// Device is where the models run: DeviceCPU ("" too), DeviceCUDA or
	// DeviceAuto (see PlaceModels).
	Device string
	// RandomInit extracts with a freshly initialised backbone.
	RandomInit bool
	// RawPixels uses the flattened normalised views as features.
	RawPixels bool
	// Source is the data root (local folder or gs:// prefix); Format
	// overrides DATA.FORMAT; Split, SubsetFile and Limit go to the listing.
	Source, Format, Split, SubsetFile string
	Limit                             int
	// Out is the output root.
	Out string
	// GroupSize is the number of images per part (0: DefaultGroupSize).
	GroupSize int
	// Workers is the decode pool size inside each part (0: 2×GOMAXPROCS).
	Workers int
	// BatchSize is the model's batch (0: features.DefaultBatchSize).
	BatchSize int
	// DecodeMemoryMB bounds the estimated memory (from the image headers)
	// of the decodes running at once in each worker process, all parts
	// together: an image waits until it fits, one larger than the whole
	// budget is decoded alone (0: a quarter of the worker's memory).
	DecodeMemoryMB int
	// Progress, when set, receives a progress line every second (only
	// meaningful for in-process runners: Prism, direct).
	Progress io.Writer
}

// Summary is what a run reports (returned and written as summary.json).
type Summary struct {
	Out          string  `json:"out"`
	Index        string  `json:"index"`
	Mode         string  `json:"mode"`
	Checkpoint   string  `json:"checkpoint,omitempty"`
	Weights      string  `json:"weights,omitempty"`
	Arch         string  `json:"arch,omitempty"`
	Source       string  `json:"source"`
	Format       string  `json:"format"`
	Split        string  `json:"split,omitempty"`
	ConfigHash   string  `json:"config_hash"`
	ViewSize     int     `json:"view_size"`
	Dim          int     `json:"dim"`
	Inputs       int64   `json:"inputs"`
	Samples      int64   `json:"samples"`
	DeadLetters  int64   `json:"dead_letters"`
	Parts        int     `json:"parts"`
	BatchSize    int     `json:"batch_size"`
	Workers      int     `json:"goroutines_per_part"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	WallSeconds  float64 `json:"wall_seconds"`      // listing + pipeline
	ImagesPerSec float64 `json:"images_per_second"` // inputs per wall second
	Runner       string  `json:"runner"`
	// Counters are the pipeline's Beam counters (features_written,
	// dead_letters_<stage>, ...) as the runner reported them.
	Counters map[string]int64 `json:"counters,omitempty"`
}

// extractorName is the transforms.RegisterExtractor name of spec-loaded
// trainer/features models.
const extractorName = "sslight/trainer-features"

func init() {
	transforms.RegisterExtractor(extractorName, loadExtractor)
}

// modelSpec is what a worker needs to rebuild the launcher's model.
type modelSpec struct {
	Mode       string        `json:"mode"`
	Checkpoint string        `json:"checkpoint,omitempty"`
	Weights    string        `json:"weights,omitempty"`
	Arch       features.Arch `json:"arch"`
	Seed       uint64        `json:"seed"`
	BatchSize  int           `json:"batch_size"`
	// Device is where the worker runs the model: "cpu" or "cuda".
	Device string `json:"device,omitempty"`
}

// loadModel builds the model a spec describes.
func loadModel(ctx context.Context, s modelSpec) (*features.Model, error) {
	var (
		m   *features.Model
		err error
	)
	switch s.Mode {
	case featurefile.ModeCheckpoint:
		m, err = features.LoadCheckpoint(ctx, s.Checkpoint, checkpoint.Weights(s.Weights))
	case featurefile.ModeRandomInit:
		m, err = features.NewRandomInit(s.Arch, s.Seed)
	case featurefile.ModeRawPixels:
		m = features.NewRawPixels()
	default:
		err = fmt.Errorf("unknown feature mode %q", s.Mode)
	}
	if err != nil {
		return nil, err
	}
	m.BatchSize = s.BatchSize
	return m, nil
}

func loadExtractor(ctx context.Context, spec string) (transforms.FeatureExtractor, error) {
	var s modelSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return nil, fmt.Errorf("model spec %q: %w", spec, err)
	}
	m, err := loadModel(ctx, s)
	if err != nil {
		return nil, err
	}
	return onDevice(ctx, m, s.Device)
}

// Extract lists the source, runs the extraction pipeline and returns the
// summary. The model is loaded and tried on one view before anything is
// listed, so a bad checkpoint fails at once with a clear error.
func Extract(ctx context.Context, opts Options) (*Summary, error) {
	start := time.Now()
	spec, cfg, model, err := resolve(ctx, opts)
	if err != nil {
		return nil, err
	}
	view := transforms.EvalView{Size: cfg.MultiViewsTransforms.GlobalCropSize, PixelLimit: cfg.Data.PixelLimit, DecodeMemoryMB: opts.DecodeMemoryMB}
	view.Mean, view.Std = cfg.Data.MeanStd32()
	if err := view.Validate(); err != nil {
		return nil, fmt.Errorf("evaluate: config: %w", err)
	}
	if spec.BatchSize <= 0 {
		spec.BatchSize = features.DefaultBatchSize(view.Size, view.Size)
	}
	if model == nil {
		if model, err = loadModel(ctx, spec); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	model.BatchSize = spec.BatchSize
	if spec.Device, err = PlaceModels(opts.Device, func(f string, a ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, f+"\n", a...)
		}
	}); err != nil {
		return nil, err
	}
	try, err := onDevice(ctx, model, spec.Device)
	if err != nil {
		return nil, err
	}
	// One forward pass on a blank view proves that the model takes this
	// view size (a ViT's patches, a CNN's strides) on its device before
	// the data is listed; the worker's own copy is built in the DoFn's
	// Setup.
	if _, err := try.Extract([][]float32{make([]float32, 3*view.Size*view.Size)}, view.Size, view.Size); err != nil {
		return nil, fmt.Errorf("evaluate: the model cannot take %d×%d views: %w", view.Size, view.Size, err)
	}
	info := model.Info()
	dim := model.Dim(view.Size, view.Size)
	model.Close()

	format := opts.Format
	if format == "" {
		format = cfg.Data.Format
	}
	listing, err := source.List(ctx, format, opts.Source, source.Options{Split: opts.Split, SubsetFile: opts.SubsetFile, Limit: opts.Limit})
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if len(listing.Items) == 0 && len(listing.Rejected) == 0 {
		return nil, fmt.Errorf("evaluate: %s lists no inputs (format %s)", opts.Source, format)
	}
	listingURI := storage.Join(opts.Out, ListingFileName)
	if err := jsonfile.WriteLines(ctx, listingURI, listing.Items); err != nil {
		return nil, fmt.Errorf("evaluate: write listing: %w", err)
	}
	groupSize := opts.GroupSize
	if groupSize <= 0 {
		groupSize = DefaultGroupSize
	}
	parts := max(1, (len(listing.Items)+groupSize-1)/groupSize)
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("evaluate: model spec: %w", err)
	}
	hash := cfg.Hash()

	p, s := beam.NewPipelineWithRoot()
	lines := textio.Read(s, beamfs.Path(listingURI))
	infos, dead := transforms.ExtractFeatures(s, lines,
		// One "epoch": the part of an item is a stable hash of its key.
		&transforms.AssignShardsFn{Epochs: 1, ShardsPerEpoch: parts},
		&transforms.ExtractFeaturesFn{
			Builder: transforms.FeatureBuilder{Out: opts.Out, View: view, Workers: opts.Workers, Batch: spec.BatchSize,
				Metadata: map[string]string{"config_hash": hash, "mode": info.Mode}},
			Parts: parts, Extractor: extractorName, Spec: string(specJSON),
		})
	transforms.WriteFeatureIndex(s, infos, dead, &transforms.WriteFeatureIndexFn{
		Out: opts.Out,
		Params: transforms.FeatureIndexParams{
			Index: featurefile.Index{Dim: dim, Model: info, Transform: view.Info(), ConfigHash: hash, Classes: listing.Classes,
				Source: featurefile.SourceInfo{Format: listing.Format, Root: listing.Root, Split: opts.Split}},
			Inputs: int64(listing.Inputs()), Rejected: listing.Rejected,
		},
	})

	// Workers in other processes start with their own environment: the
	// emulator and retry policy go along.
	if err := beamfs.ForwardStorageSettings(); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	stop := transforms.StartProgress(opts.Progress, "evaluate: features", "images", listing.Inputs(), start)
	pr, err := beamx.RunWithMetrics(ctx, p)
	stop()
	if err != nil {
		return nil, fmt.Errorf("evaluate: pipeline failed: %w", err)
	}
	ix, err := featurefile.ReadIndex(ctx, opts.Out)
	if err != nil {
		return nil, fmt.Errorf("evaluate: the pipeline finished but its index is unreadable: %w", err)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	wall := time.Since(start).Seconds()
	sum := &Summary{Out: opts.Out, Index: storage.Join(opts.Out, featurefile.IndexFileName), Mode: info.Mode,
		Checkpoint: info.Checkpoint, Weights: info.Weights, Arch: info.Arch, Source: listing.Root, Format: listing.Format, Split: opts.Split,
		ConfigHash: hash, ViewSize: view.Size, Dim: ix.Dim, Inputs: ix.Inputs, Samples: ix.Samples,
		DeadLetters: ix.DeadLetters, Parts: len(ix.Files), BatchSize: spec.BatchSize, Workers: workers,
		GOMAXPROCS: runtime.GOMAXPROCS(0), WallSeconds: wall, Runner: transforms.RunnerName()}
	if wall > 0 {
		sum.ImagesPerSec = float64(ix.Inputs) / wall
	}
	if pr != nil {
		sum.Counters = map[string]int64{}
		for _, c := range pr.Metrics().AllMetrics().Counters() {
			if c.Key.Namespace == transforms.MetricsNamespace {
				sum.Counters[c.Key.Name] += c.Result()
			}
		}
	}
	if err := jsonfile.Write(ctx, storage.Join(opts.Out, SummaryFileName), sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// resolve checks the options and returns the model spec and the config
// the evaluation view comes from, and the model when reading the config
// meant loading it.
func resolve(ctx context.Context, opts Options) (modelSpec, *configs.Config, *features.Model, error) {
	modes := 0
	for _, on := range []bool{opts.Checkpoint != "", opts.RandomInit, opts.RawPixels} {
		if on {
			modes++
		}
	}
	switch {
	case modes != 1:
		return modelSpec{}, nil, nil, errors.New("evaluate: choose exactly one of a checkpoint, random init and raw pixels")
	case opts.Source == "":
		return modelSpec{}, nil, nil, errors.New("evaluate: no source: pass a local folder or gs://bucket/prefix")
	case opts.Out == "":
		return modelSpec{}, nil, nil, errors.New("evaluate: no output folder")
	case opts.Weights.OrStudent() != checkpoint.Student && opts.Checkpoint == "":
		return modelSpec{}, nil, nil, fmt.Errorf("evaluate: weights %s: only a checkpoint has a teacher", opts.Weights)
	}
	if _, err := checkpoint.ParseWeights(string(opts.Weights)); err != nil {
		return modelSpec{}, nil, nil, fmt.Errorf("evaluate: %w", err)
	}
	spec := modelSpec{BatchSize: opts.BatchSize}
	cfg := opts.Config
	var model *features.Model
	switch {
	case opts.Checkpoint != "":
		spec.Mode, spec.Checkpoint, spec.Weights = featurefile.ModeCheckpoint, opts.Checkpoint, string(opts.Weights.OrStudent())
		if cfg == nil {
			// The view follows the training config unless told otherwise.
			m, err := features.LoadCheckpoint(ctx, opts.Checkpoint, opts.Weights)
			if err != nil {
				return modelSpec{}, nil, nil, fmt.Errorf("evaluate: %w", err)
			}
			if cfg, err = configs.Parse(m.Meta().Config, m.Dir()+" meta.json config"); err != nil {
				return modelSpec{}, nil, nil, fmt.Errorf("evaluate: checkpoint %s: its config: %w", m.Dir(), err)
			}
			model = m
		}
	case opts.RandomInit:
		if cfg == nil {
			return modelSpec{}, nil, nil, errors.New("evaluate: random init needs a config (MODEL gives the architecture)")
		}
		spec.Mode, spec.Seed = featurefile.ModeRandomInit, uint64(cfg.Seed)
		spec.Arch = features.Arch{Name: cfg.Model.BackboneArch, Width: cfg.Model.Width,
			SmallImageStem: cfg.Model.SmallImageStem, PatchSize: cfg.ViT.PatchSize}
	default:
		if cfg == nil {
			return modelSpec{}, nil, nil, errors.New("evaluate: raw pixels need a config (the view size, mean and std)")
		}
		spec.Mode = featurefile.ModeRawPixels
	}
	return spec, cfg, model, nil
}

// LoadFeatures reads a run's features back, sorted by key (a deterministic
// order whatever the number of parts or workers): the dimension, the
// row-major [n, dim] matrix, the labels (-1 for unlabelled) and the source
// keys. Parts are checked against the index (size, CRC32C, counts).
func LoadFeatures(ctx context.Context, out string) (dim int, X []float32, labels []int, keys []string, err error) {
	all, _, err := featurefile.ReadAll(ctx, out)
	if err != nil {
		return 0, nil, nil, nil, err
	}
	labels = make([]int, len(all.Labels))
	for i, l := range all.Labels {
		labels[i] = int(l)
	}
	return all.Dim, all.X, labels, all.Keys, nil
}
