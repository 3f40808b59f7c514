package trainer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/sinks/storage"
)

// tinyConfig is the Fashion-MNIST SSLight preset shrunk to run in seconds:
// an eighth-width ResNet-18, 16 px global and 8 px local views, a small head.
func tinyConfig(t testing.TB) *configs.Config {
	t.Helper()
	cfg, err := configs.Preset("dino_fmnist_sslight")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"MODEL.WIDTH": "0.125",
		"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE":   "16",
		"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE":    "8",
		"MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_NUMBER": "2",
		"MULTI_VIEWS_TRANSFORMS.NMB_CROPS":          "[2, 2]",
		"DINOHead.HIDDEN_SIZE":                      "32",
		"DINOHead.BOTTLENECK_DIM":                   "16",
		"DINOHead.OUTPUT_DIM":                       "64",
		"TRAIN.BATCH_SIZE":                          "8",
		"SOLVER.TOTAL_EPOCHS":                       "2",
		"SOLVER.WARMUP_ITERS":                       "2",
		"SOLVER.FREEZE_LAST_LAYER_ITERS":            "1",
		"DINO.WARMUP_TEACHER_TEMP_ITERS":            "3",
		"TRAIN.CHECKPOINT_PERIOD":                   "1",
		"LOG_STEP":                                  "1",
	} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// writeShards writes n samples of random views per prepared epoch as two
// shards per epoch, and a manifest, as sslight prepare would.
func writeShards(t testing.TB, out string, cfg *configs.Config, n, epochs int) {
	t.Helper()
	ctx := context.Background()
	geo := geometryOf(cfg)
	hash := cfg.Hash()
	rng := rand.New(rand.NewPCG(1, 2))
	man := &manifest.Manifest{SchemaVersion: manifest.SchemaVersion, ConfigHash: hash, Config: cfg.CanonicalJSON(),
		Epochs: epochs, Source: manifest.Source{Format: "folder", Root: "test://"}, ClassNames: []string{"a", "b", "c"}}
	for i := 0; i < n; i++ {
		man.Source.Items = append(man.Source.Items, manifest.Item{URI: fmt.Sprintf("test://%03d", i), Key: fmt.Sprintf("k%03d", i), Label: i % 3})
	}
	pix := func(count, h, w int) []uint8 {
		p := make([]uint8, count*h*w*3)
		for i := range p {
			p[i] = uint8(rng.IntN(256))
		}
		return p
	}
	for e := 0; e < epochs; e++ {
		for sh := 0; sh < 2; sh++ {
			w, err := shard.Create(ctx, out, hash, e, sh)
			if err != nil {
				t.Fatal(err)
			}
			for i := sh; i < n; i += 2 {
				meta, _ := json.Marshal(map[string]any{"key": fmt.Sprintf("k%03d", i), "label": i % 3})
				s := &shard.Sample{Key: fmt.Sprintf("k%03d", i), Meta: meta,
					Global: shard.Views{Count: geo.G, Height: geo.GH, Width: geo.GW, Pix: pix(geo.G, geo.GH, geo.GW)},
					Local:  shard.Views{Count: geo.L, Height: geo.LH, Width: geo.LW, Pix: pix(geo.L, geo.LH, geo.LW)}}
				if err := w.Add(s); err != nil {
					t.Fatal(err)
				}
			}
			info, err := w.Close()
			if err != nil {
				t.Fatal(err)
			}
			man.Shards = append(man.Shards, info)
		}
		man.EpochCounts = append(man.EpochCounts, manifest.EpochCount{Epoch: e, Inputs: int64(n), Samples: int64(n)})
	}
	if err := manifest.Write(ctx, storage.Join(out, manifest.FileName), man); err != nil {
		t.Fatal(err)
	}
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestResumeMatchesUninterrupted trains a tiny DINO model for 2 epochs of
// 3 iterations over 1 prepared epoch (so the second epoch cycles it) in
// three ways — straight through; stopped mid-epoch with a checkpoint and
// resumed; and "killed" (the mid-epoch checkpoint removed, as after a
// SIGKILL, so the resume starts from the last epoch checkpoint) — and
// expects byte-identical final checkpoints.
func TestResumeMatchesUninterrupted(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t)
	root := t.TempDir()
	shards := filepath.Join(root, "shards")
	writeShards(t, shards, cfg, 24, 1)

	straight := filepath.Join(root, "straight")
	sum, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: straight})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Done || sum.Steps != 6 || sum.ItersPerEpoch != 3 {
		t.Fatalf("summary %+v: want done after 6 steps of 3 per epoch", sum)
	}
	final := filepath.Join(straight, "checkpoints", "step-00000006")

	stopped := filepath.Join(root, "stopped")
	if sum, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: stopped, MaxSteps: 4}); err != nil || sum.Done {
		t.Fatalf("stopped run: %+v, %v", sum, err)
	}
	if _, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: stopped}); err == nil {
		t.Fatal("a second run into a folder with checkpoints started without --resume")
	}
	killed := filepath.Join(root, "killed")
	if err := os.CopyFS(killed, os.DirFS(stopped)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(killed, "checkpoints", "step-00000004")); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{stopped, killed} {
		sum, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out, Resume: true})
		if err != nil {
			t.Fatal(err)
		}
		if !sum.Done {
			t.Fatalf("%s: resumed run not done: %+v", out, sum)
		}
		for _, f := range []string{CheckpointFile, BackboneFile} {
			want := readBytes(t, filepath.Join(final, f))
			got := readBytes(t, filepath.Join(out, "checkpoints", "step-00000006", f))
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %s differs from the uninterrupted run's", filepath.Base(out), f)
			}
		}
	}
	// The weights moved: the final backbone is not the initial one.
	init, err := newNetwork(cfg, "student.", uint64(cfg.Seed))
	if err != nil {
		t.Fatal(err)
	}
	moved := false
	f := readBytes(t, filepath.Join(final, BackboneFile))
	for _, e := range init.backbone.Entries() {
		if e.Param != nil && !bytes.Contains(f, float32Bytes(e.F32)) {
			moved = true
			break
		}
	}
	if !moved {
		t.Error("training left every backbone parameter at its initial value")
	}
}

func float32Bytes(v []float32) []byte {
	var b bytes.Buffer
	for _, x := range v {
		_ = binaryWrite(&b, x)
	}
	return b.Bytes()
}

func binaryWrite(b *bytes.Buffer, x float32) error {
	return binary.Write(b, binary.LittleEndian, x)
}

// TestMultipleRootsExcludeAndInitFrom trains over two shards roots with
// some keys of the first excluded (as sslight retrain does when objects
// changed), then starts a second run from the first one's checkpoint.
func TestMultipleRootsExcludeAndInitFrom(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t)
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	writeShards(t, a, cfg, 24, 1)
	writeShards(t, b, cfg, 24, 2)
	exclude := map[string]map[string]bool{a: {}}
	for i := 0; i < 8; i++ {
		exclude[a][fmt.Sprintf("k%03d", i)] = true
	}
	first := filepath.Join(root, "first")
	sum, err := Run(ctx, Options{Config: cfg, Shards: []string{a, b}, Exclude: exclude, Out: first, Epochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.ItersPerEpoch != (24-8+24)/8 {
		t.Errorf("%d iterations per epoch, want (24 − 8 excluded + 24) / 8 = 5", sum.ItersPerEpoch)
	}
	if sum.PreparedEpochs != 1 {
		t.Errorf("prepared epochs %d, want the smaller root's 1", sum.PreparedEpochs)
	}
	ckpt := sum.Checkpoint
	// With a negligible learning rate and a teacher momentum of 1, one step
	// from the checkpoint leaves every learnable tensor (almost exactly)
	// where the checkpoint had it.
	frozen := cfg.Clone()
	for k, v := range map[string]string{"SOLVER.BASE_LR": "1e-12", "SOLVER.MIN_LR": "1e-12", "SOLVER.WARMUP_ITERS": "0",
		"MODEL.MODEL_MOMENTUM": "1", "SOLVER.WEIGHT_DECAY": "0", "SOLVER.WEIGHT_DECAY_END": "0"} {
		if err := frozen.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	second := filepath.Join(root, "second")
	sum2, err := Run(ctx, Options{Config: frozen, Shards: []string{a, b}, Out: second, Epochs: 1, MaxSteps: 1, InitFrom: ckpt,
		AllowConfigMismatch: true})
	if err != nil {
		t.Fatal(err)
	}
	net, err := newNetwork(cfg, "student.", 99)
	if err != nil {
		t.Fatal(err)
	}
	load := func(dir string) map[string][]float32 {
		m := map[string][]float32{}
		st, err := safetensorsRead(filepath.Join(dir, BackboneFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range net.backbone.Entries() {
			if e.Param != nil {
				m[e.Name] = st.Tensors[e.Name].F32
			}
		}
		return m
	}
	before, after := load(ckpt), load(sum2.Checkpoint)
	maxDiff := func(a, b []float32) float64 {
		d := 0.0
		for i := range a {
			d = max(d, math.Abs(float64(a[i]-b[i])))
		}
		return d
	}
	for name, v := range before {
		if d := maxDiff(v, after[name]); d > 1e-6 {
			t.Errorf("%s moved by %g in a negligible-learning-rate step started from the checkpoint", name, d)
		}
	}
	// And a fresh initialisation is far from what the checkpoint holds.
	fresh := net.backbone.Entries()[0]
	if d := maxDiff(fresh.F32, before[fresh.Name]); d < 1e-3 {
		t.Errorf("the checkpoint is within %g of a fresh initialisation; the test proves nothing", d)
	}
}

func safetensorsRead(path string) (*safetensors.File, error) { return safetensors.ReadFile(path) }
