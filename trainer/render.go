package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/multicrop"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/shard"
)

// renderPool renders the views of image samples (prepare --emit images)
// as prepare --emit views would have: the preparation's multi-crop policy
// and seed, keyed by (seed, source key, training epoch, view), so the
// views are byte for byte those of a views shard of that epoch prepared
// with the same --image-size. Its goroutines also normalise every sample,
// views or image, into its slot of the batch.
type renderPool struct {
	policy  augment.MultiCropPolicy
	seed    uint64
	workers int
}

// isImages reports whether the root's shards hold images.
func (r *root) isImages() bool { return r.man.Emit == manifest.EmitImages }

// preparedEpochs is how many training epochs the root can serve before
// they repeat: its prepared epochs of views, or every epoch of the run
// for images, whose views are rendered afresh each epoch.
func (r *root) preparedEpochs(runEpochs int) int {
	if r.isImages() {
		return runEpochs
	}
	return r.man.Epochs
}

// newRenderPool returns the pool for the roots, or nil when none holds
// images. Image roots must agree on the policy and seed their views come
// from (they do unless --allow-config-mismatch let them differ), and the
// policy's views must have the geometry the model takes.
func newRenderPool(roots []*root, geo Geometry, workers int) (*renderPool, error) {
	var pool *renderPool
	var first string
	for _, r := range roots {
		if !r.isImages() {
			continue
		}
		cfg, err := configs.Parse(r.man.Config, "manifest config")
		if err != nil {
			return nil, fmt.Errorf("%s: the manifest's config does not parse: %w", r.uri, err)
		}
		pol, err := multicrop.FromConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: the manifest's multi-crop policy: %w", r.uri, err)
		}
		p := &renderPool{policy: pol, seed: uint64(r.man.Seed), workers: workers}
		if pool == nil {
			pool, first = p, r.uri
			continue
		}
		if p.policy != pool.policy || p.seed != pool.seed {
			return nil, fmt.Errorf("the image shards under %s and %s were prepared with different multi-crop settings or seeds: train on one, or prepare them alike", first, r.uri)
		}
	}
	if pool == nil {
		return nil, nil
	}
	if pool.workers <= 0 {
		pool.workers = runtime.GOMAXPROCS(0)
	}
	p := &pool.policy
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", first, err)
	}
	if geo.G != 2 || p.GlobalSize != geo.GH || p.GlobalSize != geo.GW || p.NumLocal != geo.L || (geo.L > 0 && (p.LocalSize != geo.LH || p.LocalSize != geo.LW)) {
		return nil, fmt.Errorf("the image shards under %s render 2×%d px + %d×%d px views, the model takes %d×%dx%d + %d×%dx%d",
			first, p.GlobalSize, p.NumLocal, p.LocalSize, geo.G, geo.GH, geo.GW, geo.L, geo.LH, geo.LW)
	}
	return pool, nil
}

// imageMeta is the part of an image sample's JSON the renderer needs.
type imageMeta struct {
	SourceKey string `json:"source_key"`
}

// render makes the views of image sample s for epoch into mv.
func (p *renderPool) render(s *shard.Sample, epoch int, mv *augment.MultiCropViews) error {
	var m imageMeta
	if err := json.Unmarshal(s.Meta, &m); err != nil {
		return fmt.Errorf("image sample %s: metadata: %w", s.Key, err)
	}
	if m.SourceKey == "" {
		return fmt.Errorf("image sample %s: metadata has no source_key, the key its views are drawn for", s.Key)
	}
	img := &augment.Image{Pix: s.Image.Pix, W: s.Image.Width, H: s.Image.Height, Stride: 3 * s.Image.Width}
	if err := p.policy.Apply(img, p.seed, m.SourceKey, epoch, mv); err != nil {
		return fmt.Errorf("image sample %s: %w", s.Key, err)
	}
	return nil
}

// checkSample is Geometry.check for views samples; an image sample only
// needs pixels, its views get the policy's geometry.
func (g Geometry) checkSample(s *shard.Sample) error {
	if s.IsImage() {
		if s.Image.Width < 1 || s.Image.Height < 1 || len(s.Image.Pix) != 3*s.Image.Width*s.Image.Height {
			return fmt.Errorf("image sample %s is %dx%d with %d bytes", s.Key, s.Image.Width, s.Image.Height, len(s.Image.Pix))
		}
		return nil
	}
	return g.check(s)
}

// pendingBatch is a batch whose slots the pool is filling.
type pendingBatch struct {
	batch *Batch
	done  sync.WaitGroup // one per slot
	mu    sync.Mutex
	err   error // the first slot that failed
}

func (pb *pendingBatch) fail(err error) {
	pb.mu.Lock()
	if pb.err == nil {
		pb.err = err
	}
	pb.mu.Unlock()
}

// slotJob is one sample bound for slot i of a pending batch.
type slotJob struct {
	s     shard.Sample
	label int
	pb    *pendingBatch
	i     int
}

// pooledEpoch is loader.epoch for runs with image shards: the samples
// come in the same order (readEpoch), batch by batch, but a pool of
// l.pool.workers goroutines renders and normalises them into their
// slots. Memory stays bounded: at most two batches are being filled (the
// one the reader is assigning and the one before, which the sender waits
// for) plus the two out holds, and 2×workers samples wait for a worker.
func (l *loader) pooledEpoch(ctx context.Context, shards []shard.Info, seed uint64, epoch, buf, skip, iters int, exclude func(string, string) bool, skipBad bool) <-chan loaded {
	out := make(chan loaded, 2)
	ctx, cancel := context.WithCancel(ctx)
	send := func(x loaded) bool {
		select {
		case out <- x:
			return true
		case <-ctx.Done():
			return false
		}
	}
	g, n := l.geo, l.batch
	gv, lv := 3*g.GH*g.GW, 3*g.LH*g.LW
	jobs := make(chan slotJob, 2*l.pool.workers)
	var workers sync.WaitGroup
	for w := 0; w < l.pool.workers; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			var mv augment.MultiCropViews
			for j := range jobs {
				if ctx.Err() == nil {
					if err := l.fillSlot(&j, epoch, &mv, gv, lv); err != nil {
						j.pb.fail(err)
					}
				}
				j.pb.done.Done()
			}
		}()
	}
	// The sender hands finished batches to the step in order.
	ready := make(chan *pendingBatch, 1)
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		for pb := range ready {
			pb.done.Wait()
			if ctx.Err() != nil {
				continue
			}
			if pb.err != nil {
				send(loaded{err: pb.err})
				cancel() // stops the reader; the batches behind are dropped
				continue
			}
			t := time.Now()
			send(loaded{batch: pb.batch})
			l.clock.loaderWaited(t)
		}
	}()
	go func() {
		defer func() {
			close(jobs)
			close(ready)
			workers.Wait()
			sender.Wait()
			cancel()
			close(out)
		}()
		var bad *badShards
		if skipBad {
			bad = &badShards{check: g.checkSample, skip: func(uri string, err error) error {
				if !send(loaded{skipped: &SkippedShard{Epoch: epoch, Shard: uri, Error: err.Error()}}) {
					return ctx.Err()
				}
				return nil
			}}
		}
		var cur *pendingBatch
		fill, index := 0, 0
		err := readEpoch(ctx, shards, seed, epoch, buf, exclude, bad, func(s shard.Sample, label int) bool {
			if index >= iters {
				return false
			}
			if err := g.checkSample(&s); err != nil {
				send(loaded{err: err})
				return false
			}
			if index >= skip {
				if cur == nil {
					cur = &pendingBatch{batch: l.newBatch()}
					cur.done.Add(n)
				}
				select {
				case jobs <- slotJob{s: s, label: label, pb: cur, i: fill}:
				case <-ctx.Done():
					return false
				}
			}
			fill++
			if fill == n {
				if index >= skip {
					select {
					case ready <- cur:
					case <-ctx.Done():
						return false
					}
					cur = nil
				}
				fill = 0
				index++
			}
			return true
		})
		if err != nil {
			send(loaded{err: err})
		}
	}()
	return out
}

// fillSlot renders (image samples) and normalises sample j into its slot.
func (l *loader) fillSlot(j *slotJob, epoch int, mv *augment.MultiCropViews, gv, lv int) error {
	g, n, b, i := l.geo, l.batch, j.pb.batch, j.i
	global := func(v int) []uint8 { return j.s.Global.Pix[v*gv : (v+1)*gv] }
	local := func(v int) []uint8 { return j.s.Local.Pix[v*lv : (v+1)*lv] }
	if j.s.IsImage() {
		if err := l.pool.render(&j.s, epoch, mv); err != nil {
			return err
		}
		// The rendered views are tight images of their own: no copy.
		global = func(v int) []uint8 { return mv.Views[v].Tight() }
		local = func(v int) []uint8 { return mv.Views[2+v].Tight() }
	}
	for v := 0; v < g.G; v++ {
		l.norm.View(b.Global[(v*n+i)*gv:(v*n+i+1)*gv], global(v), g.GH, g.GW)
	}
	for v := 0; v < g.L; v++ {
		l.norm.View(b.Local[(v*n+i)*lv:(v*n+i+1)*lv], local(v), g.LH, g.LW)
	}
	b.Labels[i], b.Keys[i] = j.label, j.s.Key
	return nil
}

// waitClock measures, over one training epoch, how the loader and the
// step loop wait on each other. The step loop and the loader's goroutines
// both write it.
type waitClock struct {
	mu           sync.Mutex
	began        time.Time
	step, loader time.Duration
}

// start begins an epoch's measurement.
func (c *waitClock) start() {
	c.mu.Lock()
	c.began, c.step, c.loader = time.Now(), 0, 0
	c.mu.Unlock()
}

// loaderWaited adds the time since t the loader spent with a batch ready
// that the step had not taken yet.
func (c *waitClock) loaderWaited(t time.Time) {
	d := time.Since(t)
	c.mu.Lock()
	c.loader += d
	c.mu.Unlock()
}

func (c *waitClock) stepWaited(d time.Duration) {
	c.mu.Lock()
	c.step += d
	c.mu.Unlock()
}

// take returns the epoch's figures so far.
func (c *waitClock) take(workers int) LoaderStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return LoaderStats{Wall: time.Since(c.began), StepWait: c.step, LoaderWait: c.loader, Workers: workers}
}

// receive yields what the loader's channel carries, timing how long the
// step loop waits for each: for x := range l.receive(feed) instead of
// ranging over feed.
func (l *loader) receive(feed <-chan loaded) iter.Seq[loaded] {
	return func(yield func(loaded) bool) {
		for {
			t := time.Now()
			x, ok := <-feed
			l.clock.stepWaited(time.Since(t))
			if !ok || !yield(x) {
				return
			}
		}
	}
}

// stats is the loader's figures for the epoch so far.
func (l *loader) stats() LoaderStats {
	workers := 0
	if l.pool != nil {
		workers = l.pool.workers
	}
	return l.clock.take(workers)
}

// LoaderStats is how one training epoch's data loading went.
type LoaderStats struct {
	// Wall is the epoch's time so far; StepWait how much of it the step
	// loop waited for a batch (the loader was the bottleneck); LoaderWait
	// how much the loader waited with a batch ready for the step to take
	// it (the model was).
	Wall, StepWait, LoaderWait time.Duration
	// Workers is the number of goroutines rendering and normalising
	// samples (0: views shards only, read and normalised by one).
	Workers int
}

// StepWaitFraction is StepWait over Wall, 0 before any time passed.
func (s LoaderStats) StepWaitFraction() float64 { return fraction(s.StepWait, s.Wall) }

// LoaderWaitFraction is LoaderWait over Wall.
func (s LoaderStats) LoaderWaitFraction() float64 { return fraction(s.LoaderWait, s.Wall) }

func fraction(d, of time.Duration) float64 {
	if of <= 0 {
		return 0
	}
	return min(1, float64(d)/float64(of))
}

// loaderBound is the step-wait fraction above which an epoch's note says
// the loader, not the model, set the pace.
const loaderBound = 0.10

// loaderNote is the line a loader-bound epoch prints, or "".
func loaderNote(epoch int, s LoaderStats) string {
	if s.StepWaitFraction() < loaderBound {
		return ""
	}
	var hint string
	if s.Workers > 0 {
		hint = fmt.Sprintf("rendering views from image shards on %d goroutines: raise --workers if cores are idle, or prepare the views on a Beam cluster (prepare --emit views)", s.Workers)
	} else {
		hint = "reading prepared views: the shards' storage or the normalisation is slower than the model"
	}
	return strings.TrimSpace(fmt.Sprintf("pretrain: epoch %d: the step waited for data %.0f%% of the time (the loader waited %.0f%%): the loader is the bottleneck, %s",
		epoch+1, 100*s.StepWaitFraction(), 100*s.LoaderWaitFraction(), hint))
}

// EpochBatches streams the batches training epoch `epoch` of o would train
// on (o.Shards with o.Exclude, o.Config with o.BatchSize, o.ShuffleBuffer,
// o.Workers), in the order the step would take them, to fn, and returns
// the loader's figures for the epoch. It trains and writes nothing: for
// benchmarks, audits and checking that image shards give the views views
// shards hold. fn must not keep the batch after it returns; an error from
// fn stops the epoch and is returned.
func EpochBatches(ctx context.Context, o Options, epoch int, fn func(*Batch) error) (LoaderStats, error) {
	if o.Config == nil || len(o.Shards) == 0 {
		return LoaderStats{}, errors.New("trainer: Config and Shards are required")
	}
	cfg := o.Config.Clone()
	if o.BatchSize > 0 {
		cfg.Train.BatchSize = o.BatchSize
	}
	if err := validate(cfg); err != nil {
		return LoaderStats{}, err
	}
	roots, err := readRoots(ctx, cfg, o)
	if err != nil {
		return LoaderStats{}, err
	}
	var perEpoch int64
	for _, r := range roots {
		perEpoch += r.samples
	}
	batch := cfg.Train.BatchSize
	ipe := int(perEpoch / int64(batch))
	if ipe == 0 {
		return LoaderStats{}, fmt.Errorf("batch size %d is larger than a training epoch's %d samples; lower --batch-size", batch, perEpoch)
	}
	geo := geometryOf(cfg)
	l := newLoader(geo, batch, NewNormalizer(cfg.Data.MeanStd()))
	if l.pool, err = newRenderPool(roots, geo, o.Workers); err != nil {
		return LoaderStats{}, err
	}
	seed := uint64(cfg.Seed)
	buf := o.ShuffleBuffer
	if buf <= 0 {
		buf = 4096
	}
	lctx, cancel := context.WithCancel(ctx)
	feed := l.epoch(lctx, epochShards(roots, seed, epoch), seed, epoch, buf, 0, ipe, skipFunc(roots), false)
	defer func() {
		cancel()
		for range feed {
		}
	}()
	for x := range l.receive(feed) {
		switch {
		case x.err != nil:
			return l.stats(), x.err
		case x.batch == nil:
			continue
		}
		if err := fn(x.batch); err != nil {
			return l.stats(), err
		}
		l.recycle(x.batch)
	}
	return l.stats(), ctx.Err()
}
