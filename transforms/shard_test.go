package transforms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/transforms/source"
)

// smallPolicy is the reference's multi-crop policy at small sizes, so the
// tests run fast; sizes do not change the code paths.
func smallPolicy() augment.MultiCropPolicy {
	p := augment.SSLightPolicy()
	p.GlobalSize, p.LocalSize, p.NumLocal = 32, 16, 3
	return p
}

const testHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fixtureItems copies real photos and the bad-input fixtures into a temp
// folder and returns them as listed items, with the number of items that
// must become samples.
func fixtureItems(t *testing.T) ([]source.Item, int, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	var items []source.Item
	good := 0
	wantStage := map[string]string{} // key → dead-letter reason expected
	add := func(src, name string, label int) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		items = append(items, source.Item{URI: p, Key: name, Index: -1, Label: label, Size: int64(len(b))})
	}
	photos, _ := filepath.Glob("../testdata/photos/*.jpg")
	if len(photos) < 4 {
		t.Fatalf("want the real photos in testdata/photos, found %d", len(photos))
	}
	for i, p := range photos[:4] {
		add(p, filepath.Base(p), i%2)
		good++
	}
	for name, reason := range map[string]string{
		"zero_bytes.JPEG": "empty", "truncated.JPEG": "truncated", "random_bytes.JPEG": "unknown_format",
		"bomb.png": "too_large", "notes.txt": "unknown_format",
		"png_named.JPEG": "", "cmyk.JPEG": "", "gray16.png": "", "palette_trns.png": "", "one_pixel.png": "",
	} {
		add(filepath.Join("../testdata/prepare/bad", name), name, 1)
		if reason == "" {
			good++
		} else {
			wantStage[name] = reason
		}
	}
	return items, good, wantStage
}

func readShard(t *testing.T, uri string) (keys []string, metas []SampleMeta, samples []shard.Sample) {
	t.Helper()
	r, err := shard.Open(context.Background(), uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		var s shard.Sample
		err := r.Next(&s)
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("read %s: %v", uri, err)
		}
		var m SampleMeta
		if err := json.Unmarshal(s.Meta, &m); err != nil {
			t.Fatalf("sample %s metadata: %v", s.Key, err)
		}
		keys = append(keys, s.Key)
		metas = append(metas, m)
		samples = append(samples, s)
	}
}

func TestBuildShardSamplesDeadLettersAndOrder(t *testing.T) {
	items, good, wantDead := fixtureItems(t)
	out := t.TempDir()
	b := &ShardBuilder{Out: out, ConfigHash: testHash, Seed: 3, Policy: smallPolicy(), Workers: 3, Classes: []string{"a", "b"}}
	job := ShardJob{Epoch: 1, Index: 4, Items: items}
	info, dead, err := b.Build(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if info == nil || info.Samples != good {
		t.Fatalf("info = %+v, want %d samples", info, good)
	}
	if info.Epoch != 1 || info.Index != 4 || info.URI != shard.URI(out, testHash, 1, 4) {
		t.Errorf("info names epoch %d index %d at %s", info.Epoch, info.Index, info.URI)
	}
	if len(dead) != len(wantDead) {
		t.Fatalf("%d dead letters, want %d: %+v", len(dead), len(wantDead), dead)
	}
	for _, d := range dead {
		reason, ok := wantDead[d.Key]
		if !ok || d.Stage != StageDecode || !strings.Contains(d.Error, reason) || d.Epoch == nil || *d.Epoch != 1 {
			t.Errorf("dead letter %+v: want stage decode, reason %q, epoch 1", d, reason)
		}
	}

	keys, metas, samples := readShard(t, info.URI)
	if len(keys) != good {
		t.Fatalf("shard holds %d samples, want %d", len(keys), good)
	}
	// The order is the per-epoch shuffle: ascending sampleHash of the source key.
	for i := 1; i < len(metas); i++ {
		if sampleHash(3, 1, metas[i-1].SourceKey) > sampleHash(3, 1, metas[i].SourceKey) {
			t.Errorf("samples %d and %d are out of shuffle order", i-1, i)
		}
	}
	byKey := map[string]source.Item{}
	for _, it := range items {
		byKey[it.Key] = it
	}
	for i, m := range metas {
		it := byKey[m.SourceKey]
		if m.Key != SampleKey(it.Key) || keys[i] != m.Key || m.URI != it.URI || m.Label != it.Label ||
			m.Class != []string{"a", "b"}[it.Label] || m.Epoch != 1 || m.Shard != 4 || m.ConfigHash != testHash {
			t.Errorf("sample %d metadata %+v does not describe item %+v", i, m, it)
		}
		if len(m.Views) != 5 {
			t.Errorf("sample %s records %d views, want 5", m.Key, len(m.Views))
		}
		s := samples[i]
		if s.Global.Count != 2 || s.Global.Height != 32 || s.Local.Count != 3 || s.Local.Width != 16 {
			t.Errorf("sample %s shapes %v %v", m.Key, s.Global.Shape(), s.Local.Shape())
		}
	}
}

// The views in a shard must be exactly what the augment package makes for
// (seed, key, epoch) from the decoded image: replaying the recorded
// parameters on the source reproduces every view.
func TestBuildShardViewsReplay(t *testing.T) {
	items, _, _ := fixtureItems(t)
	items = items[:2] // two photos
	b := &ShardBuilder{Out: t.TempDir(), ConfigHash: testHash, Seed: 11, Policy: smallPolicy(), Workers: 2}
	info, _, err := b.Build(context.Background(), ShardJob{Epoch: 0, Index: 0, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	_, metas, samples := readShard(t, info.URI)
	for i, m := range metas {
		data, err := os.ReadFile(m.URI)
		if err != nil {
			t.Fatal(err)
		}
		src := decodeForTest(t, data)
		if src.W != m.Width || src.H != m.Height {
			t.Errorf("%s: metadata says %dx%d, decoded %dx%d", m.Key, m.Width, m.Height, src.W, src.H)
		}
		for v, vp := range m.Views {
			var dst augment.Image
			if err := augment.Replay(&dst, src, &vp); err != nil {
				t.Fatal(err)
			}
			views, k := samples[i].Global, v
			if v >= 2 {
				views, k = samples[i].Local, v-2
			}
			n := views.Height * views.Width * 3
			if !bytes.Equal(dst.Tight(), views.Pix[k*n:(k+1)*n]) {
				t.Errorf("%s view %d differs from a replay of its recorded parameters", m.Key, v)
			}
		}
	}
}

// Same items, any worker count, any input order: byte-identical shards.
func TestBuildShardDeterministic(t *testing.T) {
	items, _, _ := fixtureItems(t)
	var first []byte
	for _, workers := range []int{1, 4} {
		for _, reverse := range []bool{false, true} {
			in := slices.Clone(items)
			if reverse {
				slices.Reverse(in)
			}
			out := t.TempDir()
			b := &ShardBuilder{Out: out, ConfigHash: testHash, Seed: 5, Policy: smallPolicy(), Workers: workers}
			info, _, err := b.Build(context.Background(), ShardJob{Epoch: 2, Index: 0, Items: in})
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(info.URI)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = got
			} else if !bytes.Equal(first, got) {
				t.Errorf("workers=%d reverse=%v: shard bytes differ from the first build", workers, reverse)
			}
		}
	}
}

// An object that disappears between listing and reading is a dead letter
// of stage "read"; a shard whose every item fails is not written at all.
func TestBuildShardVanishedObjects(t *testing.T) {
	items, _, _ := fixtureItems(t)
	items = items[:2]
	for _, it := range items {
		if err := os.Remove(it.URI); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	b := &ShardBuilder{Out: out, ConfigHash: testHash, Policy: smallPolicy()}
	info, dead, err := b.Build(context.Background(), ShardJob{Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if info != nil {
		t.Errorf("a shard was written with no sample: %+v", info)
	}
	if len(dead) != 2 || dead[0].Stage != StageRead || dead[1].Stage != StageRead {
		t.Errorf("dead letters %+v, want two of stage read", dead)
	}
	left, _ := filepath.Glob(filepath.Join(out, "*", "*"))
	if len(left) != 0 {
		t.Errorf("files left behind: %v", left)
	}
}

func TestBuildShardCancelled(t *testing.T) {
	items, _, _ := fixtureItems(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := t.TempDir()
	b := &ShardBuilder{Out: out, ConfigHash: testHash, Policy: smallPolicy(), Workers: 2}
	if _, _, err := b.Build(ctx, ShardJob{Items: items}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Build on a cancelled context: err = %v, want context.Canceled", err)
	}
	left, _ := filepath.Glob(filepath.Join(out, "*", "*"))
	if len(left) != 0 {
		t.Errorf("a cancelled build left %v", left)
	}
}

func TestBuildManifestAccountsForEveryInput(t *testing.T) {
	items := []source.Item{
		{URI: "/d/c/a.jpg", Key: "c/a.jpg", Index: -1, Label: 0, Size: 10},
		{URI: "/d/c/b.jpg", Key: "c/b.jpg", Index: -1, Label: 0, Size: 11},
		{URI: "/d/c/c.jpg", Key: "c/c.jpg", Index: -1, Label: 0, Size: 12},
	}
	p := ManifestParams{
		ConfigHash: testHash, ConfigJSON: `{"SEED": 0}`, Epochs: 2, Format: "imagenet", Root: "/d",
		Classes: []string{"c"}, Items: items,
		Rejected: []source.Rejection{
			{URI: "/d/x.txt", Key: "x.txt", Stage: "list", Error: "not inside a class folder", IsItem: true},
			{URI: "/d/ann.json#7", Key: "7", Stage: "annotation", Error: "unknown image", IsItem: false},
		},
	}
	shardInfo := func(epoch, samples int) shard.Info {
		return shard.Info{URI: shard.URI("/out", testHash, epoch, 0), Name: shard.Name(testHash, epoch, 0),
			Epoch: epoch, Index: 0, Samples: samples, Bytes: 100, ConfigHash: testHash}
	}
	dead := []deadletter.Record{{URI: "/d/c/c.jpg", Key: "c/c.jpg", Stage: "decode", Error: "corrupt", Epoch: deadletter.Epoch(0)}}
	m, all, err := BuildManifest(p, []shard.Info{shardInfo(0, 2), shardInfo(1, 3)}, dead)
	if err != nil {
		t.Fatal(err)
	}
	want := [][3]int64{{4, 2, 2}, {4, 3, 1}} // inputs, samples, dead per epoch
	for e, c := range m.EpochCounts {
		if [3]int64{c.Inputs, c.Samples, c.Dead} != want[e] {
			t.Errorf("epoch %d counts %+v, want inputs/samples/dead %v", e, c, want[e])
		}
	}
	if m.AnnotationRejections != 1 || len(all) != 4 {
		t.Errorf("annotation rejections %d, dead letters %d; want 1 and 4 (1 decode + 2×list + 1 annotation)", m.AnnotationRejections, len(all))
	}

	// One sample too few in epoch 1: an input was lost, which must fail.
	if _, _, err := BuildManifest(p, []shard.Info{shardInfo(0, 2), shardInfo(1, 2)}, dead); err == nil {
		t.Error("BuildManifest accepted a run that lost an input")
	}
}

func decodeForTest(t *testing.T, data []byte) *augment.Image {
	t.Helper()
	img, _, err := decode.Decode(data, decode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}
