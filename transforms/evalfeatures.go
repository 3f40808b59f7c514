package transforms

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/featurefile"
	"github.com/sslight-go/sslight/transforms/source"
)

// StageTransform is the dead-letter stage of an image the evaluation view
// refused (the crop does not fit, say).
const StageTransform = "transform"

// EvalView is the evaluation transform: torchvision's
// Resize(augment.EvalResize(Size)) of the shorter side (bicubic,
// antialiased as PIL), CenterCrop(Size), ToTensor, Normalize(Mean, Std),
// producing a float32 CHW tensor of 3·Size·Size values.
type EvalView struct {
	// Size is the crop side S (the config's GLOBAL_CROP_SIZE: 224 for the
	// ImageNet presets, 28 for Fashion-MNIST).
	Size int
	// Mean and Std are DATA.MEAN and DATA.STD.
	Mean, Std [3]float32
	// PixelLimit refuses images whose header declares more pixels (0:
	// PIL's default), as DATA.PIXEL_LIMIT does in preparation.
	PixelLimit int64
	// DecodeMemoryMB bounds the estimated memory of the decodes running at
	// once in a worker process (0: DefaultDecodeMemory), as the shard
	// builder's does.
	DecodeMemoryMB int
}

// Info returns the view as the features index records it.
func (v EvalView) Info() featurefile.TransformInfo {
	return featurefile.TransformInfo{Resize: augment.EvalResize(v.Size), Crop: v.Size, Mean: v.Mean, Std: v.Std}
}

// Validate checks the size and that every Std is positive.
func (v EvalView) Validate() error {
	if v.Size < 1 || v.Size > augment.MaxViewSize {
		return fmt.Errorf("evaluation view size %d: want 1..%d", v.Size, augment.MaxViewSize)
	}
	if _, err := augment.NewNormalizeLUT(v.Mean, v.Std); err != nil {
		return fmt.Errorf("evaluation view: %w", err)
	}
	return nil
}

// EvalScratch is the reusable memory of one goroutine applying an EvalView.
// The zero value is ready to use; it must not be shared between goroutines.
type EvalScratch struct {
	src, view augment.Image
	rs        augment.Resampler
	lut       *augment.NormalizeLUT
	lutFor    [2][3]float32
}

// ApplyImage writes the evaluation view of a decoded RGB image into dst
// (len ≥ 3·Size·Size).
func (v EvalView) ApplyImage(dst []float32, img *augment.Image, sc *EvalScratch) error {
	if sc.lut == nil || sc.lutFor != [2][3]float32{v.Mean, v.Std} {
		lut, err := augment.NewNormalizeLUT(v.Mean, v.Std)
		if err != nil {
			return err
		}
		sc.lut, sc.lutFor = lut, [2][3]float32{v.Mean, v.Std}
	}
	if err := sc.rs.ResizeCenterCrop(&sc.view, img, augment.EvalResize(v.Size), v.Size); err != nil {
		return err
	}
	return sc.lut.Apply(dst, &sc.view)
}

// ApplyItem reads and decodes one listed item (an object, or a record of an
// IDX file converted to RGB as PIL's convert("RGB") does) and writes its
// evaluation view into dst. On failure it returns the dead-letter stage
// (StageRead, StageDecode, StageTransform) with the error.
func (v EvalView) ApplyItem(ctx context.Context, it source.Item, dst []float32, sc *EvalScratch) (stage string, err error) {
	release, stage, err := loadItem(ctx, it, &sc.src, v.PixelLimit, v.DecodeMemoryMB)
	if err != nil {
		return stage, err
	}
	defer release()
	if err := v.ApplyImage(dst, &sc.src, sc); err != nil {
		return StageTransform, err
	}
	return "", nil
}

// loadItem reads and decodes one listed item into dst as RGB, within the
// process's decode budget of budgetMB MiB (decodeWithin); release gives
// the budget back once dst's pixels have been used.
func loadItem(ctx context.Context, it source.Item, dst *augment.Image, pixelLimit int64, budgetMB int) (release func(), stage string, err error) {
	noop := func() {}
	if it.Index >= 0 {
		ds, err := source.OpenIDX(ctx, it)
		if err != nil {
			return noop, StageRead, err
		}
		if err := ds.RGB(it.Index, dst); err != nil {
			return noop, StageDecode, err
		}
		return noop, "", nil
	}
	data, err := source.ReadItem(ctx, it)
	if err != nil {
		return noop, StageRead, err
	}
	_, release, err = decodeWithin(ctx, dst, data, decode.Options{MaxPixels: pixelLimit}, budgetMB)
	if err != nil {
		return noop, StageDecode, err
	}
	return release, "", nil
}

// LinearTrainView is the training transform of the reference's linear
// evaluation (classification/engines/cls_trainer.py): RandomResizedCrop to
// Size (scale 0.08–1, ratio 3/4–4/3, bicubic), a horizontal flip with
// probability ½, ToTensor and Normalize. The draws of an image in an epoch
// are a pure function of (Seed, key, epoch), as the prepare step's are.
type LinearTrainView struct {
	Size       int
	Mean, Std  [3]float32
	PixelLimit int64
	Seed       uint64
	// DecodeMemoryMB is EvalView's.
	DecodeMemoryMB int
}

// ApplyItem reads and decodes one listed item and writes its augmented
// view for epoch into dst (len ≥ 3·Size·Size). On failure it returns the
// stage (StageRead, StageDecode, StageTransform) with the error.
func (v LinearTrainView) ApplyItem(ctx context.Context, it source.Item, epoch int, dst []float32, sc *EvalScratch) (stage string, err error) {
	if v.Size <= 0 {
		return StageTransform, fmt.Errorf("linear train view: size %d", v.Size)
	}
	release, stage, err := loadItem(ctx, it, &sc.src, v.PixelLimit, v.DecodeMemoryMB)
	if err != nil {
		return stage, err
	}
	defer release()
	if sc.lut == nil || sc.lutFor != [2][3]float32{v.Mean, v.Std} {
		lut, err := augment.NewNormalizeLUT(v.Mean, v.Std)
		if err != nil {
			return StageTransform, err
		}
		sc.lut, sc.lutFor = lut, [2][3]float32{v.Mean, v.Std}
	}
	var rng augment.ViewRNG
	rng.Seed(augment.ViewSeed(augment.ImageSeed(v.Seed, it.Key, epoch), 0))
	box, err := augment.RandomResizedCropParams(sc.src.W, sc.src.H, [2]float64{0.08, 1}, augment.DefaultRatio, &rng)
	if err != nil {
		return StageTransform, err
	}
	flip := rng.Float64() < 0.5
	if err := augment.ResizedCrop(&sc.view, &sc.src, box.Rect, v.Size, v.Size, flip); err != nil {
		return StageTransform, err
	}
	if err := sc.lut.Apply(dst, &sc.view); err != nil {
		return StageTransform, err
	}
	return "", nil
}

// FeatureExtractor turns evaluation views into feature vectors; the
// evaluation pipeline plugs trainer/features' Model in (transforms does not
// import the trainer). Calls come from one goroutine at a time.
type FeatureExtractor interface {
	// Dim is the feature dimension for h×w views.
	Dim(h, w int) int
	// Extract returns the features of images (3×h×w CHW each), row-major.
	Extract(images [][]float32, h, w int) ([]float32, error)
}

// FeatureJob is one group of the feature-extraction pipeline: part Index
// of Parts, with its items.
type FeatureJob struct {
	Index, Parts int
	Items        []source.Item
}

// FeatureBuilder turns a FeatureJob into one written features part
// (sinks/featurefile): a pool of goroutines reads, decodes and transforms the
// items while this goroutine feeds finished views to the extractor in
// batches and collects the rows. It is the plain function under the
// ExtractFeatures DoFn.
type FeatureBuilder struct {
	// Out is the output root; parts go to Out/features/.
	Out string
	// View is the evaluation transform.
	View EvalView
	// Workers is the size of the decode pool (0: 2×GOMAXPROCS, as the
	// shard builder).
	Workers int
	// Batch is how many views go to the extractor at once (0: 64).
	Batch int
	// Metadata is stamped into every part (config hash, model).
	Metadata map[string]string
}

// viewResult is one item's outcome, filled by a worker.
type viewResult struct {
	done chan struct{}
	x    []float32
	dead *deadletter.Record
}

// Build writes the part of job with the features x extracts and returns its
// description (nil when no item gave a view: then no part is written) and
// the dead letters of the items that failed. Rows are in key order. Errors
// are for the part as a whole (the extractor or the output failed); a bad
// item never is one.
func (b *FeatureBuilder) Build(ctx context.Context, job FeatureJob, x FeatureExtractor) (*featurefile.FileInfo, []deadletter.Record, error) {
	if err := b.View.Validate(); err != nil {
		return nil, nil, err
	}
	items := slices.Clone(job.Items)
	slices.SortFunc(items, func(a, b source.Item) int { return strings.Compare(a.Key, b.Key) })
	for i := 1; i < len(items); i++ {
		if items[i].Key == items[i-1].Key {
			return nil, nil, fmt.Errorf("features part %d: item key %q listed twice", job.Index, items[i].Key)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := b.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	batch := b.Batch
	if batch <= 0 {
		batch = 64
	}
	s := b.View.Size
	n := 3 * s * s

	results := make([]viewResult, len(items))
	for i := range results {
		results[i].done = make(chan struct{})
	}
	// At most one batch being extracted plus one being gathered plus what
	// the workers hold is in memory: the consumer releases a slot for every
	// view it has extracted.
	window := make(chan struct{}, 2*batch+2*workers)
	// free recycles view buffers (600 KB each at 224 px) from the consumer
	// back to the workers.
	free := make(chan []float32, cap(window))
	recycle := func(buf []float32) {
		select {
		case free <- buf:
		default:
		}
	}
	next := windowedIndices(ctx, len(items), window)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := &EvalScratch{}
			for i := range next {
				var dst []float32
				select {
				case dst = <-free:
				default:
					dst = make([]float32, n)
				}
				if stage, err := b.View.ApplyItem(ctx, items[i], dst, sc); err != nil {
					recycle(dst)
					results[i].dead = &deadletter.Record{URI: itemURI(items[i]), Key: items[i].Key, Stage: stage, Error: err.Error()}
				} else {
					results[i].x = dst
				}
				close(results[i].done)
			}
		}()
	}
	// Stop the feeder before waiting for the workers, or an early return
	// would leave it blocked on a full window.
	defer func() { cancel(); wg.Wait() }()

	part := &featurefile.Part{Dim: x.Dim(s, s), Metadata: b.Metadata}
	var (
		dead    []deadletter.Record
		pending [][]float32
		pendIdx []int
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		feats, err := x.Extract(pending, s, s)
		if err != nil {
			return fmt.Errorf("features part %d: %w", job.Index, err)
		}
		if len(feats) != len(pending)*part.Dim {
			return fmt.Errorf("features part %d: extractor returned %d values for %d views of dimension %d", job.Index, len(feats), len(pending), part.Dim)
		}
		part.X = append(part.X, feats...)
		for k, i := range pendIdx {
			part.Keys = append(part.Keys, items[i].Key)
			part.Labels = append(part.Labels, int64(items[i].Label))
			recycle(pending[k])
			<-window
		}
		pending, pendIdx = pending[:0], pendIdx[:0]
		return nil
	}
	for i := range results {
		select {
		case <-results[i].done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		r := &results[i]
		if r.dead != nil {
			dead = append(dead, *r.dead)
			<-window
		} else {
			pending, pendIdx = append(pending, r.x), append(pendIdx, i)
			r.x = nil
			if len(pending) == batch {
				if err := flush(); err != nil {
					return nil, nil, err
				}
			}
		}
		Progress.Add(1)
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	if part.Len() == 0 {
		return nil, dead, nil
	}
	fi, err := featurefile.WritePart(ctx, b.Out, featurefile.PartName(job.Index, job.Parts), part)
	if err != nil {
		return nil, nil, err
	}
	return &fi, dead, nil
}

// itemURI names an item in a dead letter: IDX records share one file, so
// the record index is appended as a fragment, as the manifest does.
func itemURI(it source.Item) string {
	if it.Index >= 0 {
		return fmt.Sprintf("%s#%d", it.URI, it.Index)
	}
	return it.URI
}
