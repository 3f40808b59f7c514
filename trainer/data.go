package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/sinks/storage"
)

// Batch is one training batch of normalised float32 views, view-major as
// the reference's MultiCropWrapper concatenates them: row v·N+i of Global
// is view v of sample i, [G·N, 3, H, W]; Local likewise [L·N, 3, h, w].
type Batch struct {
	N                    int
	Global, Local        []float32
	G, GH, GW, L, LH, LW int
	Labels               []int
	Keys                 []string
}

// Normalizer turns uint8 HWC crops into float32 CHW tensors as
// torchvision's ToTensor + Normalize do: (v/255 − mean)/std in float32.
type Normalizer struct {
	lut [3][256]float32
}

// NewNormalizer precomputes the 3×256 possible values.
func NewNormalizer(mean, std [3]float64) *Normalizer {
	n := &Normalizer{}
	for c := 0; c < 3; c++ {
		m, s := float32(mean[c]), float32(std[c])
		for v := 0; v < 256; v++ {
			n.lut[c][v] = (float32(v)/255 - m) / s
		}
	}
	return n
}

// View writes one HWC crop (h·w·3 bytes) into dst as CHW.
func (n *Normalizer) View(dst []float32, pix []uint8, h, w int) {
	plane := h * w
	for p := 0; p < plane; p++ {
		dst[p] = n.lut[0][pix[3*p]]
		dst[plane+p] = n.lut[1][pix[3*p+1]]
		dst[2*plane+p] = n.lut[2][pix[3*p+2]]
	}
}

// root is one shards root with its manifest and what a training epoch
// takes from it.
type root struct {
	uri     string
	man     *manifest.Manifest
	exclude map[string]bool
	samples int64 // per training epoch: the smallest prepared epoch, minus excluded keys
}

func readRoots(ctx context.Context, cfg *configs.Config, o Options) ([]*root, error) {
	var roots []*root
	for _, uri := range o.Shards {
		man, err := manifest.Read(ctx, storage.Join(uri, manifest.FileName))
		if err != nil {
			return nil, fmt.Errorf("read the shards' manifest (run sslight prepare first, --shards is its --out): %w", err)
		}
		if err := checkShardsConfig(cfg, man, o.AllowConfigMismatch); err != nil {
			return nil, fmt.Errorf("%s: %w", uri, err)
		}
		if man.Epochs < 1 || len(man.Shards) == 0 {
			return nil, fmt.Errorf("%s: the manifest lists no shards", uri)
		}
		r := &root{uri: uri, man: man, exclude: o.Exclude[uri], samples: math.MaxInt64}
		for _, ec := range man.EpochCounts {
			r.samples = min(r.samples, ec.Samples)
		}
		// Excluded keys listed by this root (a dead-lettered one would make
		// this an over-count: one iteration fewer, never a short epoch).
		for _, it := range man.Source.Items {
			if r.exclude[it.Key] {
				r.samples--
			}
		}
		roots = append(roots, r)
	}
	return roots, nil
}

// skipFunc says whether the sample key of a shard is excluded.
func skipFunc(roots []*root) func(shardURI, key string) bool {
	byShard := map[string]map[string]bool{}
	for _, r := range roots {
		if len(r.exclude) == 0 {
			continue
		}
		for _, s := range r.man.Shards {
			byShard[s.URI] = r.exclude
		}
	}
	if len(byShard) == 0 {
		return nil
	}
	return func(shardURI, key string) bool { return byShard[shardURI][key] }
}

// epochShards returns the shards a training epoch reads, in the order it
// reads them: prepared epoch e mod P of every root, shuffled together by
// (seed, training epoch).
func epochShards(roots []*root, seed uint64, epoch int) []shard.Info {
	var out []shard.Info
	for _, r := range roots {
		prepared := epoch % r.man.Epochs
		var part []shard.Info
		for _, s := range r.man.Shards {
			if s.Epoch == prepared {
				part = append(part, s)
			}
		}
		sort.Slice(part, func(i, j int) bool { return part[i].Index < part[j].Index })
		out = append(out, part...)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5ead0000+uint64(epoch)))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// sampleMeta is the part of a shard sample's JSON the trainer reads.
type sampleMeta struct {
	Label int `json:"label"`
}

// badShards, when set, makes readEpoch verify every shard in full before
// using it (size, CRC32C against the manifest, every sample's metadata and
// view geometry) and hand a bad one to skip instead of failing: skip
// returns nil to go on without the shard, or the error to stop. The check
// reads each shard twice.
type badShards struct {
	check func(*shard.Sample) error
	skip  func(uri string, err error) error
}

// verifyShard reads a whole shard and returns its first problem.
func verifyShard(ctx context.Context, info shard.Info, check func(*shard.Sample) error) error {
	r, err := shard.Open(ctx, info.URI, &shard.Expect{Bytes: info.Bytes, CRC32C: info.CRC32C})
	if err != nil {
		return fmt.Errorf("open shard %s: %w", info.URI, err)
	}
	defer r.Close()
	for {
		var s shard.Sample
		if err := r.Next(&s); err != nil {
			if isEOF(err) {
				return nil
			}
			return fmt.Errorf("read shard %s: %w", info.URI, err)
		}
		var m sampleMeta
		if err := json.Unmarshal(s.Meta, &m); err != nil {
			return fmt.Errorf("shard %s sample %s: metadata: %w", info.URI, s.Key, err)
		}
		if err := check(&s); err != nil {
			return fmt.Errorf("shard %s: %w", info.URI, err)
		}
	}
}

// readEpoch streams the samples of shards through a shuffle buffer of
// size buf (seeded by seed and epoch) into emit, deterministically: the
// same shards, seed and epoch give the same order. It stops at the first
// error (unless bad skips bad shards), or when emit returns false.
func readEpoch(ctx context.Context, shards []shard.Info, seed uint64, epoch, buf int, skip func(shardURI, key string) bool, bad *badShards, emit func(shard.Sample, int) bool) error {
	rng := rand.New(rand.NewPCG(seed, 0xb0ff0000+uint64(epoch)))
	type item struct {
		s     shard.Sample
		label int
	}
	pool := make([]item, 0, buf)
	// pick removes a random element of the buffer, as a shuffle buffer does.
	pick := func() item {
		i := rng.IntN(len(pool))
		it := pool[i]
		pool[i] = pool[len(pool)-1]
		pool = pool[:len(pool)-1]
		return it
	}
	for _, info := range shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		if bad != nil {
			if err := verifyShard(ctx, info, bad.check); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err := bad.skip(info.URI, err); err != nil {
					return err
				}
				continue
			}
		}
		r, err := shard.Open(ctx, info.URI, &shard.Expect{Bytes: info.Bytes, CRC32C: info.CRC32C})
		if err != nil {
			return fmt.Errorf("open shard %s: %w", info.URI, err)
		}
		for {
			var s shard.Sample
			err := r.Next(&s)
			if err != nil {
				r.Close()
				if isEOF(err) {
					break
				}
				return fmt.Errorf("read shard %s: %w", info.URI, err)
			}
			if skip != nil && skip(info.URI, s.Key) {
				continue
			}
			var m sampleMeta
			if err := json.Unmarshal(s.Meta, &m); err != nil {
				r.Close()
				return fmt.Errorf("shard %s sample %s: metadata: %w", info.URI, s.Key, err)
			}
			if len(pool) == buf {
				it := pick()
				if !emit(it.s, it.label) {
					r.Close()
					return nil
				}
			}
			pool = append(pool, item{s, m.Label})
		}
	}
	for len(pool) > 0 {
		it := pick()
		if !emit(it.s, it.label) {
			return nil
		}
	}
	return nil
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// Geometry is the shape of every sample's views.
type Geometry struct {
	G, GH, GW int // global views and their size
	L, LH, LW int // local views and their size (L may be 0)
}

func (g Geometry) check(s *shard.Sample) error {
	if s.Global.Count != g.G || s.Global.Height != g.GH || s.Global.Width != g.GW ||
		s.Local.Count != g.L || (g.L > 0 && (s.Local.Height != g.LH || s.Local.Width != g.LW)) {
		return fmt.Errorf("sample %s has %d global %dx%d and %d local %dx%d views, the config wants %d×%dx%d and %d×%dx%d",
			s.Key, s.Global.Count, s.Global.Height, s.Global.Width, s.Local.Count, s.Local.Height, s.Local.Width,
			g.G, g.GH, g.GW, g.L, g.LH, g.LW)
	}
	return nil
}

// loader turns a training epoch's shards into batches on a goroutine,
// a few batches ahead of the training step.
type loader struct {
	geo   Geometry
	batch int
	norm  *Normalizer
	free  chan *Batch
	// pool renders image shards' views (nil: views shards only); clock
	// times how loader and step wait on each other.
	pool  *renderPool
	clock waitClock
}

func newLoader(geo Geometry, batch int, norm *Normalizer) *loader {
	return &loader{geo: geo, batch: batch, norm: norm, free: make(chan *Batch, 4)}
}

func (l *loader) newBatch() *Batch {
	select {
	case b := <-l.free:
		return b
	default:
	}
	g := l.geo
	n := l.batch
	return &Batch{N: n, G: g.G, GH: g.GH, GW: g.GW, L: g.L, LH: g.LH, LW: g.LW,
		Global: make([]float32, g.G*n*3*g.GH*g.GW), Local: make([]float32, g.L*n*3*g.LH*g.LW),
		Labels: make([]int, n), Keys: make([]string, n)}
}

// recycle hands a consumed batch back for reuse.
func (l *loader) recycle(b *Batch) {
	select {
	case l.free <- b:
	default:
	}
}

// loaded is one thing the loader's goroutine hands the step loop, in the
// order it met them: a batch, a shard it skipped (--skip-bad-shards), or
// the error that ends the epoch. Everything travels by value, so the step
// loop alone records and prints.
type loaded struct {
	batch   *Batch
	skipped *SkippedShard
	err     error
}

// epoch streams batches [skip, iters) of one training epoch. With skipBad
// it verifies every shard first and reports a bad one instead of failing.
// The channel is closed at the end; the goroutine stops early when ctx is
// cancelled, and the caller must then drain the channel.
func (l *loader) epoch(ctx context.Context, shards []shard.Info, seed uint64, epoch, buf, skip, iters int, exclude func(string, string) bool, skipBad bool) <-chan loaded {
	l.clock.start()
	if l.pool != nil {
		return l.pooledEpoch(ctx, shards, seed, epoch, buf, skip, iters, exclude, skipBad)
	}
	out := make(chan loaded, 2)
	send := func(x loaded) bool {
		defer l.clock.loaderWaited(time.Now())
		select {
		case out <- x:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(out)
		g := l.geo
		gv, lv := 3*g.GH*g.GW, 3*g.LH*g.LW
		var cur *Batch
		fill, index := 0, 0
		var bad *badShards
		if skipBad {
			bad = &badShards{check: g.check, skip: func(uri string, err error) error {
				if !send(loaded{skipped: &SkippedShard{Epoch: epoch, Shard: uri, Error: err.Error()}}) {
					return ctx.Err()
				}
				return nil
			}}
		}
		err := readEpoch(ctx, shards, seed, epoch, buf, exclude, bad, func(s shard.Sample, label int) bool {
			if index >= iters {
				return false
			}
			if err := g.check(&s); err != nil {
				send(loaded{err: err})
				return false
			}
			if index >= skip {
				if cur == nil {
					cur = l.newBatch()
				}
				n := l.batch
				for v := 0; v < g.G; v++ {
					l.norm.View(cur.Global[(v*n+fill)*gv:(v*n+fill+1)*gv], s.Global.Pix[v*gv:(v+1)*gv], g.GH, g.GW)
				}
				for v := 0; v < g.L; v++ {
					l.norm.View(cur.Local[(v*n+fill)*lv:(v*n+fill+1)*lv], s.Local.Pix[v*lv:(v+1)*lv], g.LH, g.LW)
				}
				cur.Labels[fill], cur.Keys[fill] = label, s.Key
			}
			fill++
			if fill == l.batch {
				if index >= skip {
					if !send(loaded{batch: cur}) {
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
