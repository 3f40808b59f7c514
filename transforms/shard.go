package transforms

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/transforms/source"
)

// Dead-letter stages written by the shard builder (the listing adds its own,
// see package source).
const (
	StageRead    = "read"    // the object could not be read (gone, permission, I/O)
	StageDecode  = "decode"  // not an image, truncated, corrupt, too large, unsupported
	StageAugment = "augment" // the multi-crop policy refused the image
)

// ShardJob is one group of the preparation pipeline: the items of one shard
// of one epoch.
type ShardJob struct {
	Epoch, Index int
	Items        []source.Item
}

// ShardBuilder turns a ShardJob into one written shard: it reads, decodes
// and multi-crops every item with a pool of goroutines and writes the
// samples in a deterministic order (a per-epoch shuffle) through
// shard.Writer. It is the plain function under the WriteShards DoFn.
type ShardBuilder struct {
	// Out is the output root (local folder, gs:// or memfs:// prefix).
	Out string
	// ConfigHash names the shards and is stamped into every sample.
	ConfigHash string
	// Seed is the global seed of every random draw.
	Seed uint64
	// Policy is the multi-crop policy of the configuration.
	Policy augment.MultiCropPolicy
	// PixelLimit refuses images whose header declares more pixels (0: PIL's
	// default).
	PixelLimit int64
	// Workers is the size of the goroutine pool (0: 2×GOMAXPROCS).
	Workers int
	// Classes names the labels (may be empty).
	Classes []string
	// Emit is what the shards hold: manifest.EmitViews ("" too), the
	// views of the job's epoch, or manifest.EmitImages, the decoded images
	// themselves (ImageSize then must be positive), from which the trainer
	// renders every epoch's views.
	Emit string
	// ImageSize, when positive, shrinks every decoded image whose shorter
	// side is longer to that shorter side (augment.ShrinkShorterSide)
	// before views are cut from it or it is stored: the same pixels in
	// both modes, so the views agree byte for byte.
	ImageSize int
	// DecodeMemoryMB bounds the estimated memory of the decodes running at
	// once in a worker process, all its shards together (0: a quarter of
	// the worker's memory, DefaultDecodeMemory).
	DecodeMemoryMB int
}

// SampleMeta is the <key>.json member of every sample: where the sample
// came from and every random choice that made its views, so it can be
// audited and replayed (augment.Replay).
type SampleMeta struct {
	Key        string               `json:"key"`
	SourceKey  string               `json:"source_key"`
	URI        string               `json:"uri"`
	Label      int                  `json:"label"`
	Class      string               `json:"class,omitempty"`
	Epoch      int                  `json:"epoch"`
	Shard      int                  `json:"shard"`
	Seed       uint64               `json:"seed"`
	ConfigHash string               `json:"config_hash"`
	Width      int                  `json:"width"`  // decoded source image
	Height     int                  `json:"height"` // decoded source image
	Format     string               `json:"format"` // jpeg, png, ..., idx
	Mode       string               `json:"mode,omitempty"`
	Views      []augment.ViewParams `json:"views"`
	Meta       json.RawMessage      `json:"meta,omitempty"` // format-specific (COCO annotations)

	// ImageSize is the shorter side the image was shrunk to first (the
	// builder's ImageSize, when it shrank it); ImageWidth and ImageHeight
	// are then the shrunk image's size, in whose pixels the crop boxes of
	// Views are.
	ImageSize   int `json:"image_size,omitempty"`
	ImageWidth  int `json:"image_width,omitempty"`
	ImageHeight int `json:"image_height,omitempty"`
}

// result is one item's outcome, filled by a worker.
type result struct {
	done   chan struct{}
	sample *shard.Sample
	dead   *deadletter.Record
}

// workerState is the reusable memory of one worker goroutine.
type workerState struct {
	src, small augment.Image // decoded; shrunk to ImageSize
	rs         augment.Resampler
	views      augment.MultiCropViews
}

// Build writes the shard of job and returns its description (nil when no
// item produced a sample: then no shard is written) and the dead letters of
// the items that failed. Errors are for the shard as a whole (the output
// cannot be written); a bad item never is one.
func (b *ShardBuilder) Build(ctx context.Context, job ShardJob) (*shard.Info, []deadletter.Record, error) {
	items := slices.Clone(job.Items)
	// The in-shard order is a per-epoch shuffle, independent of the order
	// the runner delivered the items in.
	slices.SortFunc(items, func(x, y source.Item) int {
		return cmp.Or(cmp.Compare(sampleHash(b.Seed, job.Epoch, x.Key), sampleHash(b.Seed, job.Epoch, y.Key)),
			cmp.Compare(x.Key, y.Key))
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	workers := b.Workers
	if workers <= 0 {
		// Two goroutines per P: decode and the crop kernels run as long cgo
		// calls, and a goroutine coming back from one may find its P taken;
		// spare runnable workers fill that gap. On 2 cores
		// BenchmarkBuildShard went from 318 to 333 images/s (1.76x → 1.84x
		// of one core); the whole pipeline's figure did not move beyond noise.
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	results := make([]result, len(items))
	for i := range results {
		results[i].done = make(chan struct{})
	}
	// At most 8×workers samples (about 5 MB each worker at the SSLight
	// sizes) are in memory: the writer (this goroutine) releases a slot
	// each time it consumes the next sample in order. A deep window keeps
	// the workers busy while the writer waits for a slow image.
	window := make(chan struct{}, 8*workers)
	next := windowedIndices(ctx, len(items), window)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &workerState{}
			for i := range next {
				results[i].sample, results[i].dead = b.makeSample(ctx, items[i], job, st)
				close(results[i].done)
			}
		}()
	}
	defer wg.Wait()

	var (
		w    *shard.Writer
		dead []deadletter.Record
	)
	abort := func(err error) (*shard.Info, []deadletter.Record, error) {
		cancel()
		if w != nil {
			_ = w.Abort()
		}
		return nil, nil, err
	}
	for i := range results {
		select {
		case <-results[i].done:
		case <-ctx.Done():
			return abort(ctx.Err())
		}
		r := &results[i]
		if r.sample == nil && r.dead == nil { // the worker gave up: ctx is done
			return abort(ctx.Err())
		}
		if r.dead != nil {
			dead = append(dead, *r.dead)
		} else {
			if w == nil {
				var err error
				if w, err = shard.Create(ctx, b.Out, b.ConfigHash, job.Epoch, job.Index); err != nil {
					return abort(err)
				}
			}
			if err := w.Add(r.sample); err != nil {
				return abort(fmt.Errorf("shard %d of epoch %d: sample %s: %w", job.Index, job.Epoch, items[i].Key, err))
			}
		}
		if r.sample != nil {
			pixPool.Put(&r.sample.Global.Pix)
			pixPool.Put(&r.sample.Local.Pix)
			pixPool.Put(&r.sample.Image.Pix)
			r.sample = nil
		}
		Progress.Add(1)
		<-window
	}
	if w == nil {
		return nil, dead, nil
	}
	info, err := w.Close()
	if err != nil {
		return abort(err)
	}
	return &info, dead, nil
}

// makeSample reads, decodes and multi-crops one item.
func (b *ShardBuilder) makeSample(ctx context.Context, it source.Item, job ShardJob, st *workerState) (*shard.Sample, *deadletter.Record) {
	if ctx.Err() != nil {
		return nil, nil
	}
	fail := func(stage string, err error) (*shard.Sample, *deadletter.Record) {
		return nil, &deadletter.Record{URI: it.URI, Key: it.Key, Stage: stage, Error: err.Error(), Epoch: deadletter.Epoch(job.Epoch)}
	}
	meta := SampleMeta{
		Key: SampleKey(it.Key), SourceKey: it.Key, URI: it.URI, Label: it.Label,
		Epoch: job.Epoch, Shard: job.Index, Seed: b.Seed, ConfigHash: b.ConfigHash, Meta: it.Meta,
	}
	if it.Label >= 0 && it.Label < len(b.Classes) {
		meta.Class = b.Classes[it.Label]
	}
	if it.Index >= 0 {
		ds, err := source.OpenIDX(ctx, it)
		if err != nil {
			return fail(StageRead, err)
		}
		if err := ds.RGB(it.Index, &st.src); err != nil {
			return fail(StageDecode, err)
		}
		meta.Format, meta.Mode = "idx", "L"
	} else {
		data, err := source.ReadItem(ctx, it)
		if err != nil {
			return fail(StageRead, err)
		}
		info, release, err := decodeWithin(ctx, &st.src, data, decode.Options{MaxPixels: b.PixelLimit}, b.DecodeMemoryMB)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil // the shard is being abandoned
			}
			return fail(StageDecode, err)
		}
		defer release()
		meta.Format, meta.Mode = info.Format, info.Mode
	}
	meta.Width, meta.Height = st.src.W, st.src.H
	src, err := b.shrink(st, &meta)
	if err != nil {
		return fail(StageAugment, err)
	}
	if b.Emit == manifest.EmitImages {
		return imageSample(src, &meta), nil
	}
	if err := b.Policy.Apply(src, b.Seed, it.Key, job.Epoch, &st.views); err != nil {
		return fail(StageAugment, err)
	}
	meta.Views = slices.Clone(st.views.Params)
	mj, err := json.Marshal(&meta)
	if err != nil {
		panic(fmt.Sprintf("transforms: marshal sample metadata: %v", err)) // all fields are plain data
	}
	return &shard.Sample{
		Key:    meta.Key,
		Meta:   mj,
		Global: stack(st.views.Global()),
		Local:  stack(st.views.Local()),
	}, nil
}

// pixPool recycles the stacked view arrays (about 600 KB a sample at the
// SSLight sizes): the writer returns them once the sample is in the shard,
// so a shard does not allocate per sample.
var pixPool = sync.Pool{New: func() any { return new([]uint8) }}

// stack copies equally sized views into one [N,H,W,3] array taken from
// pixPool.
func stack(views []augment.Image) shard.Views {
	if len(views) == 0 {
		return shard.Views{}
	}
	h, w := views[0].H, views[0].W
	buf := pixPool.Get().(*[]uint8)
	pix := (*buf)[:0]
	for i := range views {
		pix = append(pix, views[i].Tight()...)
	}
	return shard.Views{Count: len(views), Height: h, Width: w, Pix: pix}
}

// windowedIndices sends 0..n-1 in order on the returned channel, each only
// after taking a slot of window (the consumer frees slots as it finishes
// items in order), until ctx is done; the channel is closed at the end. It
// bounds how many items a worker pool holds at once.
func windowedIndices(ctx context.Context, n int, window chan struct{}) <-chan int {
	next := make(chan int)
	go func() {
		defer close(next)
		for i := 0; i < n; i++ {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	return next
}
