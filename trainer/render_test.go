package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/multicrop"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// testImages are n images of varied sizes (all at least the global crop),
// smooth enough that crops and blurs do not wash them out.
func testImages(n int) []*augment.Image {
	rng := rand.New(rand.NewPCG(7, 8))
	out := make([]*augment.Image, n)
	for i := range out {
		w, h := 20+rng.IntN(30), 20+rng.IntN(30)
		img := augment.NewImage(w, h)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				p := img.Pix[3*(y*w+x):]
				p[0], p[1], p[2] = uint8(x*255/w), uint8(y*255/h), uint8((x*y+i*40)%256)
			}
		}
		out[i] = img
	}
	return out
}

// writeImageRoot writes images as prepare --emit images lays them out
// (two shards of epoch 0, <key>.image.npy with the source key in the
// metadata, a manifest saying emit images) and, when views > 0, writes
// under viewsOut the views shards of epochs 0..views-1 rendered from the
// same images with the config's policy as prepare --emit views does, with
// the same samples in the same shards and order.
func writeImageRoot(t testing.TB, out, viewsOut string, cfg *configs.Config, imgs []*augment.Image, views int) {
	t.Helper()
	ctx := context.Background()
	pol, err := multicrop.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(cfg.Seed)
	n := len(imgs)
	newManifest := func(hash string, epochs int) *manifest.Manifest {
		m := &manifest.Manifest{SchemaVersion: manifest.SchemaVersion, ConfigHash: hash, Config: cfg.CanonicalJSON(), Seed: int64(cfg.Seed),
			Epochs: epochs, Source: manifest.Source{Format: "folder", Root: "test://"}, ClassNames: []string{"a", "b", "c"}}
		for i := 0; i < n; i++ {
			m.Source.Items = append(m.Source.Items, manifest.Item{URI: fmt.Sprintf("test://%03d", i), Key: fmt.Sprintf("k%03d", i), Label: i % 3})
		}
		for e := 0; e < epochs; e++ {
			m.EpochCounts = append(m.EpochCounts, manifest.EpochCount{Epoch: e, Inputs: int64(n), Samples: int64(n)})
		}
		return m
	}
	write := func(root string, m *manifest.Manifest, epoch int, sample func(i int) *shard.Sample) {
		for sh := 0; sh < 2; sh++ {
			w, err := shard.Create(ctx, root, m.ConfigHash, epoch, sh)
			if err != nil {
				t.Fatal(err)
			}
			for i := sh; i < n; i += 2 {
				if err := w.Add(sample(i)); err != nil {
					t.Fatal(err)
				}
			}
			info, err := w.Close()
			if err != nil {
				t.Fatal(err)
			}
			m.Shards = append(m.Shards, info)
		}
	}
	meta := func(i int) []byte {
		b, _ := json.Marshal(map[string]any{"key": fmt.Sprintf("k%03d", i), "source_key": fmt.Sprintf("src/%03d.png", i), "label": i % 3})
		return b
	}
	im := newManifest(strings.Repeat("a", 64), 1)
	im.Emit, im.ImageSize = manifest.EmitImages, 64
	write(out, im, 0, func(i int) *shard.Sample {
		return &shard.Sample{Key: fmt.Sprintf("k%03d", i), Meta: meta(i), Image: shard.Image{Height: imgs[i].H, Width: imgs[i].W, Pix: imgs[i].Tight()}}
	})
	if err := manifest.Write(ctx, storage.Join(out, manifest.FileName), im); err != nil {
		t.Fatal(err)
	}
	if views == 0 {
		return
	}
	vm := newManifest(strings.Repeat("b", 64), views)
	vm.ImageSize = 64
	for e := 0; e < views; e++ {
		write(viewsOut, vm, e, func(i int) *shard.Sample {
			var mv augment.MultiCropViews
			if err := pol.Apply(imgs[i], seed, fmt.Sprintf("src/%03d.png", i), e, &mv); err != nil {
				t.Fatal(err)
			}
			s := &shard.Sample{Key: fmt.Sprintf("k%03d", i), Meta: meta(i),
				Global: shard.Views{Count: 2, Height: pol.GlobalSize, Width: pol.GlobalSize},
				Local:  shard.Views{Count: pol.NumLocal, Height: pol.LocalSize, Width: pol.LocalSize}}
			for _, v := range mv.Global() {
				s.Global.Pix = append(s.Global.Pix, v.Tight()...)
			}
			for _, v := range mv.Local() {
				s.Local.Pix = append(s.Local.Pix, v.Tight()...)
			}
			return s
		})
	}
	if err := manifest.Write(ctx, storage.Join(viewsOut, manifest.FileName), vm); err != nil {
		t.Fatal(err)
	}
}

// sampleRows collects, per sample key, the normalised float32 views an
// epoch's batches hold, as bytes.
func sampleRows(t *testing.T, o Options, epoch int) (map[string][]byte, []string) {
	t.Helper()
	rows := map[string][]byte{}
	var order []string
	_, err := EpochBatches(context.Background(), o, epoch, func(b *Batch) error {
		g := len(b.Global) / (b.G * b.N)
		l := 0
		if b.L > 0 {
			l = len(b.Local) / (b.L * b.N)
		}
		for i, k := range b.Keys {
			var buf bytes.Buffer
			for v := 0; v < b.G; v++ {
				buf.Write(float32Bytes(b.Global[(v*b.N+i)*g : (v*b.N+i+1)*g]))
			}
			for v := 0; v < b.L; v++ {
				buf.Write(float32Bytes(b.Local[(v*b.N+i)*l : (v*b.N+i+1)*l]))
			}
			rows[k] = buf.Bytes()
			order = append(order, k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows, order
}

// TestImageShardsLoadAsViewsShards: the batches of image shards (views
// rendered by the loader's pool) hold, sample by sample and bit for bit,
// the normalised views the views shards of the same epoch hold, for two
// epochs and any worker count; and, the shards being laid out alike, in
// the same order.
func TestImageShardsLoadAsViewsShards(t *testing.T) {
	cfg := tinyConfig(t)
	root := t.TempDir()
	images, views := filepath.Join(root, "images"), filepath.Join(root, "views")
	writeImageRoot(t, images, views, cfg, testImages(24), 2)
	for _, epoch := range []int{0, 1} {
		want, wantOrder := sampleRows(t, Options{Config: cfg, Shards: []string{views}}, epoch)
		if len(want) != 24 {
			t.Fatalf("epoch %d: the views shards gave %d samples, want 24", epoch, len(want))
		}
		for _, workers := range []int{1, 3} {
			got, order := sampleRows(t, Options{Config: cfg, Shards: []string{images}, Workers: workers}, epoch)
			if strings.Join(order, ",") != strings.Join(wantOrder, ",") {
				t.Errorf("epoch %d, %d workers: sample order %v, views shards %v", epoch, workers, order, wantOrder)
			}
			for k, w := range want {
				if !bytes.Equal(got[k], w) {
					t.Errorf("epoch %d, %d workers: sample %s: the rendered views differ from the views shard's", epoch, workers, k)
				}
			}
		}
	}
	e0, _ := sampleRows(t, Options{Config: cfg, Shards: []string{images}}, 0)
	e1, _ := sampleRows(t, Options{Config: cfg, Shards: []string{images}}, 1)
	if bytes.Equal(e0["k000"], e1["k000"]) {
		t.Error("epochs 0 and 1 rendered the same views: the epoch does not reach the draws")
	}
}

// TestPooledLoaderKeepsTheOrder: the pooled loader over views shards
// gives exactly the batches, in the same order, of the one-goroutine
// loader, with a skip into the epoch and any worker count.
func TestPooledLoaderKeepsTheOrder(t *testing.T) {
	cfg := tinyConfig(t)
	root := t.TempDir()
	writeShards(t, root, cfg, 40, 1)
	man, err := manifest.Read(context.Background(), storage.Join(root, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	geo := geometryOf(cfg)
	collect := func(l *loader) []byte {
		var all bytes.Buffer
		for x := range l.receive(l.epoch(context.Background(), man.Shards, 5, 0, 7, 1, 4, nil, false)) {
			if x.err != nil {
				t.Fatal(x.err)
			}
			all.Write(float32Bytes(x.batch.Global))
			all.Write(float32Bytes(x.batch.Local))
			all.WriteString(strings.Join(x.batch.Keys, ","))
			fmt.Fprint(&all, x.batch.Labels)
		}
		return all.Bytes()
	}
	norm := NewNormalizer(cfg.Data.MeanStd())
	want := collect(newLoader(geo, 8, norm))
	if len(want) == 0 {
		t.Fatal("no batches")
	}
	for _, workers := range []int{1, 4} {
		l := newLoader(geo, 8, norm)
		l.pool = &renderPool{workers: workers}
		if got := collect(l); !bytes.Equal(got, want) {
			t.Errorf("%d workers: the pooled loader's batches differ from the one-goroutine loader's", workers)
		}
	}
}

// TestPretrainOnImageShardsEqualsViewsShards trains two epochs on image
// shards and on the views shards of the same two epochs laid out alike:
// the checkpoints' weights are byte-identical, every epoch record carries
// the loader's wait fractions, and no note says epochs were reused.
func TestPretrainOnImageShardsEqualsViewsShards(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t)
	root := t.TempDir()
	images, views := filepath.Join(root, "images"), filepath.Join(root, "views")
	writeImageRoot(t, images, views, cfg, testImages(24), 2)
	var notes bytes.Buffer
	a, err := Run(ctx, Options{Config: cfg, Shards: []string{images}, Out: filepath.Join(root, "a"), Workers: 2, Progress: &notes})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(ctx, Options{Config: cfg, Shards: []string{views}, Out: filepath.Join(root, "b")})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Done || a.Steps != 6 || a.PreparedEpochs != 2 {
		t.Errorf("image shards run: %+v, want done after 6 steps, 2 epochs served", a)
	}
	for _, f := range []string{checkpoint.StateFile, checkpoint.BackboneFile} {
		if !bytes.Equal(readBytes(t, filepath.Join(a.Checkpoint, f)), readBytes(t, filepath.Join(b.Checkpoint, f))) {
			t.Errorf("%s differs between training on image shards and on views shards", f)
		}
	}
	if strings.Contains(notes.String(), "reuses prepared epoch") {
		t.Errorf("image shards need no reuse note:\n%s", notes.String())
	}
	recs, err := jsonfile.ReadLines[MetricsRecord](ctx, filepath.Join(root, "a", MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	epochs := 0
	for _, r := range recs {
		if r.Kind != "epoch" {
			continue
		}
		epochs++
		if r.DataWait == nil || r.LoaderWait == nil || *r.DataWait < 0 || *r.DataWait > 1 || *r.LoaderWait < 0 || *r.LoaderWait > 1 {
			t.Errorf("epoch %d record: data_wait %v loader_wait %v, want fractions", r.Epoch, r.DataWait, r.LoaderWait)
		}
	}
	if epochs != 2 {
		t.Errorf("%d epoch records, want 2", epochs)
	}
}

// TestLoaderWaitFigures: a step slower than the loader leaves the loader
// waiting and the step not; a step that takes no time waits for the
// loader, which the epoch's note then names as the bottleneck.
func TestLoaderWaitFigures(t *testing.T) {
	cfg := tinyConfig(t)
	root := t.TempDir()
	images := filepath.Join(root, "images")
	writeImageRoot(t, images, "", cfg, testImages(96), 0) // 12 batches: more than the loader holds ready
	slow, err := EpochBatches(context.Background(), Options{Config: cfg, Shards: []string{images}, Workers: 2}, 0, func(*Batch) error {
		time.Sleep(25 * time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if slow.LoaderWaitFraction() < 0.5 || slow.StepWaitFraction() > 0.4 || slow.Workers != 2 {
		t.Errorf("slow step: %+v: want the loader waiting most of the time and the step little", slow)
	}
	if note := loaderNote(0, slow); note != "" {
		t.Errorf("a model-bound epoch printed %q", note)
	}
	// A heavier policy than the model needs time for: 1 worker, no step.
	fast, err := EpochBatches(context.Background(), Options{Config: cfg, Shards: []string{images}, Workers: 1}, 0, func(*Batch) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if fast.StepWaitFraction() < 0.5 {
		t.Errorf("instant step: %+v: want the step waiting for data most of the time", fast)
	}
	if note := loaderNote(2, fast); !strings.Contains(note, "epoch 3") || !strings.Contains(note, "the loader is the bottleneck") || !strings.Contains(note, "--workers") {
		t.Errorf("loader-bound note %q", note)
	}
	if math.IsNaN(fast.StepWaitFraction()) || (LoaderStats{}).StepWaitFraction() != 0 {
		t.Error("fractions of an empty epoch must be 0")
	}
}

// TestRenderPoolRefusals: image roots whose policy renders views the model
// does not take, or two image roots of different seeds, are refused
// naming the roots.
func TestRenderPoolRefusals(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t)
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	writeImageRoot(t, a, "", cfg, testImages(8), 0)
	other := cfg.Clone()
	if err := other.Set("SEED", "9"); err != nil {
		t.Fatal(err)
	}
	writeImageRoot(t, b, "", other, testImages(8), 0)
	_, err := EpochBatches(ctx, Options{Config: cfg, Shards: []string{a, b}, AllowConfigMismatch: true}, 0, func(*Batch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "different multi-crop settings or seeds") {
		t.Errorf("two seeds: err = %v", err)
	}
	bigger := cfg.Clone()
	if err := bigger.Set("MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE", "20"); err != nil {
		t.Fatal(err)
	}
	_, err = EpochBatches(ctx, Options{Config: bigger, Shards: []string{a}, AllowConfigMismatch: true}, 0, func(*Batch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "the model takes") {
		t.Errorf("other geometry: err = %v", err)
	}
}
