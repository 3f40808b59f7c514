// Package prepare builds and runs the preparation pipeline: list a data set
// in object storage or a local folder, decode every image, draw its
// multi-crop views for every epoch and write them as training shards with a
// manifest and a dead-letter file — or, with Options.Emit images, write
// every decoded image once (shrunk to Options.ImageSize) for the trainer to
// render the views from.
//
// Shape of the pipeline (only small records cross the shuffle):
//
//	listing.jsonl ─ textio.Read ─ AssignShards (key per epoch) ─ GroupByKey
//	   ─ WriteShards (decode + multi-crop with a goroutine pool, one shard per group)
//	   ─ shard infos + dead letters ─ CoGroupByKey on one key ─ WriteManifest
package prepare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/transforms"
	"github.com/sslight-go/sslight/transforms/beamfs"
	"github.com/sslight-go/sslight/transforms/source"
)

// Options configure one preparation run.
type Options struct {
	// Config is the validated SSLight-schema configuration; its
	// MULTI_VIEWS_TRANSFORMS section is the multi-crop policy, SEED the
	// seed, DATA.FORMAT the source layout, DATA.PIXEL_LIMIT and
	// DATA.SHARD_SIZE_MB the limits.
	Config *configs.Config
	// Source is the data root (local folder or gs:// prefix).
	Source string
	// Out is the output root.
	Out string
	// Split and SubsetFile are passed to the source listing.
	Split, SubsetFile string
	// Epochs is the number of epochs of views to prepare (≥ 1).
	Epochs int
	// Limit keeps only the first Limit listed inputs (0: all).
	Limit int
	// Workers is the goroutine pool size inside each shard (0: 2×GOMAXPROCS).
	Workers int
	// Overwrite allows Out to hold a manifest of another configuration.
	Overwrite bool
	// Emit is what the shards hold: manifest.EmitViews ("" too), every
	// epoch's multi-crop views, or manifest.EmitImages, the decoded images
	// once (Epochs must be 1), from which the trainer's loader renders
	// each epoch's views itself.
	Emit string
	// ImageSize shrinks every decoded image whose shorter side is longer
	// to that shorter side before views are cut or it is stored. Views
	// default to 0 (full size, as the reference crops); images to
	// transforms.DefaultImageSize (GLOBAL_CROP_SIZE × 256/224). Views and
	// images prepared with the same ImageSize give byte-identical views.
	ImageSize int
	// DecodeMemoryMB bounds the estimated memory of the decodes running at
	// once in each worker process (0: a quarter of the worker's memory).
	DecodeMemoryMB int
	// Listing, when set, is used instead of listing Source (sslight
	// retrain lists once, keeps the new and changed objects, and prepares
	// only those). Source still names the root in the summary.
	Listing *source.Listing
	// Progress, when set, receives a progress line with ETA every second
	// (only meaningful for in-process runners: Prism, direct).
	Progress io.Writer
}

// Summary is what a run reports (printed and written as summary.json).
type Summary struct {
	Source       string  `json:"source"`
	Format       string  `json:"format"`
	Out          string  `json:"out"`
	Manifest     string  `json:"manifest"`
	ConfigHash   string  `json:"config_hash"`
	Seed         uint64  `json:"seed"`
	Epochs       int     `json:"epochs"`
	Inputs       int     `json:"inputs"`       // per epoch
	Samples      int     `json:"samples"`      // all epochs
	DeadLetters  int     `json:"dead_letters"` // all epochs (item-level)
	Annotations  int     `json:"annotations_rejected,omitempty"`
	Shards       int     `json:"shards"`            // all epochs
	Bytes        int64   `json:"bytes"`             // all shards
	WallSeconds  float64 `json:"wall_seconds"`      // listing + pipeline
	ImagesPerSec float64 `json:"images_per_second"` // samples+dead per wall second
	Runner       string  `json:"runner"`
	// Counters are the pipeline's Beam counters (samples_written,
	// dead_letters_<stage>, ...) as the runner reported them.
	Counters    map[string]int64 `json:"counters,omitempty"`
	Parallelism int              `json:"goroutines_per_shard"`
	// Emit and ImageSize are what the shards hold (see Options).
	Emit      string `json:"emit"`
	ImageSize int    `json:"image_size,omitempty"`
	// TemporariesRemoved counts the stale temporaries of killed runs
	// removed from Out at start (storage.CleanTemporaries).
	TemporariesRemoved int `json:"temporaries_removed,omitempty"`
}

// Run lists the source, runs the pipeline and returns the summary.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	start := time.Now()
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("prepare: no config")
	}
	if opts.Source == "" {
		return nil, errors.New("prepare: no source: pass --source (a local folder or gs://bucket/prefix)")
	}
	if opts.Out == "" {
		return nil, errors.New("prepare: no output: pass --out")
	}
	if opts.Epochs < 1 {
		return nil, fmt.Errorf("prepare: --epochs %d: want at least 1", opts.Epochs)
	}
	policy, err := transforms.PolicyFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("prepare: multi-crop policy: %w", err)
	}
	emit, imageSize, err := resolveEmit(opts, transforms.DefaultImageSize(policy))
	if err != nil {
		return nil, err
	}
	hash := transforms.ShardsConfigHash(cfg.Hash(), emit, imageSize)
	seed := uint64(cfg.Seed)
	manifestURI := storage.Join(opts.Out, manifest.FileName)
	if err := checkOutput(ctx, manifestURI, hash, opts.Overwrite); err != nil {
		return nil, err
	}
	// A run killed earlier (kill -9, a lost worker) may have left local
	// temporaries behind; the age bound spares a live run's.
	cleaned, err := storage.CleanTemporaries(ctx, opts.Out, storage.StaleTemporaryAge)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}

	listing := opts.Listing
	if listing == nil {
		if listing, err = source.List(ctx, cfg.Data.Format, opts.Source, source.Options{
			Split: opts.Split, SubsetFile: opts.SubsetFile, Limit: opts.Limit,
		}); err != nil {
			return nil, err
		}
	}
	if len(listing.Items) == 0 && len(listing.Rejected) == 0 {
		return nil, fmt.Errorf("prepare: %s lists no inputs (format %s)", opts.Source, cfg.Data.Format)
	}
	listingURI := storage.Join(opts.Out, ListingFileName)
	if err := jsonfile.WriteLines(ctx, listingURI, listing.Items); err != nil {
		return nil, fmt.Errorf("prepare: write listing: %w", err)
	}
	sampleBytes := transforms.SampleBytes(policy)
	if emit == manifest.EmitImages {
		sampleBytes = transforms.ImageSampleBytes(imageSize)
	}
	shardsPerEpoch := transforms.ShardsPerEpoch(len(listing.Items), sampleBytes, int64(cfg.Data.ShardSizeMB)<<20)
	workers := opts.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}

	p, s := beam.NewPipelineWithRoot()
	lines := textio.Read(s, beamfs.Path(listingURI))
	infos, dead := transforms.MultiCropShards(s, lines,
		&transforms.AssignShardsFn{Epochs: opts.Epochs, ShardsPerEpoch: shardsPerEpoch, Seed: seed},
		&transforms.WriteShardsFn{Builder: transforms.ShardBuilder{
			Out: opts.Out, ConfigHash: hash, Seed: seed, Policy: policy,
			PixelLimit: cfg.Data.PixelLimit, Workers: opts.Workers, Classes: listing.Classes,
			Emit: emit, ImageSize: imageSize, DecodeMemoryMB: opts.DecodeMemoryMB,
		}})
	transforms.WriteManifest(s, infos, dead, &transforms.WriteManifestFn{
		Out: opts.Out, ListingURI: listingURI,
		Params: transforms.ManifestParams{
			ConfigHash: hash, ConfigJSON: string(cfg.CanonicalJSON()), Seed: seed, Epochs: opts.Epochs,
			Format: listing.Format, Root: listing.Root, Classes: listing.Classes, Rejected: listing.Rejected,
			Emit: manifestEmit(emit), ImageSize: imageSize,
		},
	})

	// Workers in other processes (Dataflow, Flink, a job server) start
	// with their own environment: the emulator and retry policy go along.
	if err := beamfs.ForwardStorageSettings(); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	stop := transforms.StartProgress(opts.Progress, "prepare", "images·epochs", opts.Epochs*len(listing.Items), start)
	pr, err := beamx.RunWithMetrics(ctx, p)
	stop()
	if err != nil {
		return nil, fmt.Errorf("prepare: pipeline failed: %w", err)
	}

	m, err := manifest.Read(ctx, manifestURI)
	if err != nil {
		return nil, fmt.Errorf("prepare: the pipeline finished but its manifest is unreadable: %w", err)
	}
	wall := time.Since(start).Seconds()
	sum := &Summary{
		Source: listing.Root, Format: listing.Format, Out: opts.Out, Manifest: manifestURI,
		ConfigHash: hash, Seed: seed, Epochs: opts.Epochs, Inputs: listing.Inputs(),
		Shards: len(m.Shards), WallSeconds: wall, Runner: transforms.RunnerName(), Parallelism: workers,
		TemporariesRemoved: len(cleaned), Emit: emit, ImageSize: imageSize,
	}
	for _, sh := range m.Shards {
		sum.Samples += sh.Samples
		sum.Bytes += sh.Bytes
	}
	for _, e := range m.EpochCounts {
		sum.DeadLetters += int(e.Dead)
	}
	sum.Annotations = int(m.AnnotationRejections)
	if pr != nil {
		sum.Counters = map[string]int64{}
		for _, c := range pr.Metrics().AllMetrics().Counters() {
			if c.Key.Namespace == transforms.MetricsNamespace {
				sum.Counters[c.Key.Name] += c.Result()
			}
		}
	}
	if wall > 0 {
		sum.ImagesPerSec = float64(sum.Samples+sum.DeadLetters) / wall
	}
	if err := jsonfile.Write(ctx, storage.Join(opts.Out, SummaryFileName), sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// Files written next to the shards.
const (
	ListingFileName = "listing.jsonl"
	SummaryFileName = "summary.json"
)

// checkOutput refuses to mix two configurations' shards under one root.
func checkOutput(ctx context.Context, manifestURI, hash string, overwrite bool) error {
	ok, err := storage.Exists(ctx, manifestURI)
	if err != nil || !ok || overwrite {
		return err
	}
	m, err := manifest.Read(ctx, manifestURI)
	if err != nil {
		return fmt.Errorf("prepare: %s exists but cannot be read (%v); pass --overwrite to replace it", manifestURI, err)
	}
	if m.ConfigHash != hash {
		return fmt.Errorf("prepare: %s holds shards of config %.12s…, not this config (%.12s…): "+
			"choose another --out, or pass --overwrite", manifestURI, m.ConfigHash, hash)
	}
	return nil
}

// resolveEmit checks what the options ask the shards to hold and returns
// it (EmitViews or EmitImages) with the image size that applies
// (defaultSize for images when none is given).
func resolveEmit(opts Options, defaultSize int) (emit string, imageSize int, err error) {
	emit, imageSize = opts.Emit, opts.ImageSize
	if emit == "" {
		emit = manifest.EmitViews
	}
	switch {
	case emit != manifest.EmitViews && emit != manifest.EmitImages:
		return "", 0, fmt.Errorf("prepare: --emit %q: want %s (pre-rendered multi-crop views) or %s (decoded images the trainer renders views from)",
			opts.Emit, manifest.EmitViews, manifest.EmitImages)
	case imageSize < 0 || imageSize > 1<<16:
		return "", 0, fmt.Errorf("prepare: --image-size %d: want a shorter side in pixels, or 0", imageSize)
	case emit == manifest.EmitImages && opts.Epochs != 1:
		return "", 0, fmt.Errorf("prepare: --emit images writes the images once and the trainer renders every epoch's views from them: --epochs %d does not apply (leave it at 1)", opts.Epochs)
	case emit == manifest.EmitImages && imageSize == 0:
		imageSize = defaultSize
	}
	return emit, imageSize, nil
}

// manifestEmit is what the manifest records: nothing for views, which is
// what a manifest without the field has always meant.
func manifestEmit(emit string) string {
	if emit == manifest.EmitImages {
		return emit
	}
	return ""
}
