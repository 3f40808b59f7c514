package trainer

import (
	"slices"

	"github.com/sslight-go/sslight/trainer/checkpoint"

	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/sinks/tensorboard"
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

// shrink applies sets to a preset and validates the result.
func shrink(t testing.TB, preset string, sets map[string]string) *configs.Config {
	t.Helper()
	cfg, err := configs.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sets {
		if err := cfg.Set(k, v); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	if err := validate(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tinyCNN is the network and views of tinyConfig, for the SwAV and MoCo
// presets (whose MobileNetV2 at 224 px would take minutes).
var tinyCNN = map[string]string{
	"MODEL.BACKBONE_ARCH":                       "resnet18",
	"MODEL.WIDTH":                               "0.125",
	"MODEL.SMALL_IMAGE_STEM":                    "true",
	"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE":   "16",
	"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE":    "8",
	"MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_NUMBER": "2",
	"MULTI_VIEWS_TRANSFORMS.NMB_CROPS":          "[2, 2]",
	"TRAIN.BATCH_SIZE":                          "8",
	"SOLVER.TOTAL_EPOCHS":                       "2",
	"TRAIN.CHECKPOINT_PERIOD":                   "1",
	"LOG_STEP":                                  "1",
}

func with(base map[string]string, more map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// tinySwAVConfig is the SwAV SSLight preset shrunk like tinyConfig: the
// prototypes frozen in epoch 0, a queue of 2 batches from epoch 1 (so the
// run creates it, fills it and uses it within its last 3 steps).
func tinySwAVConfig(t testing.TB) *configs.Config {
	return shrink(t, "swav_cnn_sslight", with(tinyCNN, map[string]string{
		"SWAV.HIDDEN_SIZE":              "32",
		"SWAV.OUTPUT_DIM":               "16",
		"SWAV.NMB_PROTOTYPES":           "10",
		"SWAV.QUEUE_LENGTH":             "16",
		"SWAV.EPOCH_QUEUE_STARTS":       "1",
		"SWAV.FREEZE_PROTOTYPES_EPOCHS": "1",
		"SOLVER.WARMUP_EPOCHS":          "0",
		"SOLVER.WARMUP_ITERS":           "2",
	}))
}

// tinyMoCoConfig is the MoCo SSLight preset shrunk like tinyConfig, with
// BN in the head (so the key encoder's head has running statistics too)
// and a queue of 4 batches (so the pointer wraps).
func tinyMoCoConfig(t testing.TB) *configs.Config {
	return shrink(t, "moco_cnn_sslight", with(tinyCNN, map[string]string{
		"MOCO.HIDDEN_SIZE":     "32",
		"MOCO.OUTPUT_DIM":      "16",
		"MOCO.QUEUE_LENGTH":    "32",
		"MOCO.USE_BN_IN_HEAD":  "true",
		"SOLVER.WARMUP_EPOCHS": "0",
		"SOLVER.WARMUP_ITERS":  "2",
	}))
}

// TestResumeMatchesUninterrupted trains a tiny model of each method for 2
// epochs of 3 iterations over 1 prepared epoch (so the second epoch
// cycles it) in three ways — straight through; stopped mid-epoch with a
// checkpoint and resumed; and "killed" (the mid-epoch checkpoint removed,
// as after a SIGKILL, so the resume starts from the last epoch checkpoint)
// — and expects byte-identical final checkpoints: every network, the
// optimiser state and the loss state (DINO's center, SwAV's queue,
// MoCo's key encoder and queue) were saved and restored exactly.
func TestResumeMatchesUninterrupted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   func(testing.TB) *configs.Config
		check func(t *testing.T, cfg *configs.Config, straight, stopped string)
	}{
		{"DINO", tinyConfig, nil},
		{"SWAV", tinySwAVConfig, checkSwAVRun},
		{"MOCO", tinyMoCoConfig, checkMoCoRun},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(t)
			straight, stopped := checkResume(t, cfg)
			if tc.check != nil {
				tc.check(t, cfg, straight, stopped)
			}
		})
	}
}

// checkResume runs the three trainings of TestResumeMatchesUninterrupted
// and returns the straight and the stopped-and-resumed output folders.
func checkResume(t *testing.T, cfg *configs.Config) (straight, stopped string) {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	shards := filepath.Join(root, "shards")
	writeShards(t, shards, cfg, 24, 1)

	straight = filepath.Join(root, "straight")
	sum, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: straight})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Done || sum.Steps != 6 || sum.ItersPerEpoch != 3 || sum.Method != cfg.SSLMethod {
		t.Fatalf("summary %+v: want %s done after 6 steps of 3 per epoch", sum, cfg.SSLMethod)
	}
	final := filepath.Join(straight, "checkpoints", "step-00000006")
	checkTeacherFile(t, final, cfg.SSLMethod)

	stopped = filepath.Join(root, "stopped")
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
		files := []string{checkpoint.StateFile, checkpoint.BackboneFile}
		if checkpoint.TeacherPrefix(cfg.SSLMethod) != "" {
			files = append(files, checkpoint.TeacherBackboneFile)
		}
		for _, f := range files {
			want := readBytes(t, filepath.Join(final, f))
			got := readBytes(t, filepath.Join(out, "checkpoints", "step-00000006", f))
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %s differs from the uninterrupted run's", filepath.Base(out), f)
			}
		}
	}
	// The weights moved: the final backbone is not the initial one.
	sc, err := buildSchedules(cfg, 2, 3, cfg.Train.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	init, err := newMethod(cfg, geometryOf(cfg), cfg.Train.BatchSize, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer init.close()
	moved := false
	f := readBytes(t, filepath.Join(final, checkpoint.BackboneFile))
	for _, e := range init.state().backbone.Entries() {
		if e.Param != nil && !bytes.Contains(f, float32Bytes(e.F32)) {
			moved = true
			break
		}
	}
	if !moved {
		t.Error("training left every backbone parameter at its initial value")
	}
	return straight, stopped
}

// readCheckpoint reads checkpoint.safetensors after global step step.
func readCheckpoint(t *testing.T, out string, step int) *safetensors.File {
	t.Helper()
	f, err := safetensors.ReadFile(filepath.Join(out, "checkpoints", fmt.Sprintf("step-%08d", step), checkpoint.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkSwAVRun checks the SwAV schedule of events against the config:
// prototypes frozen in epoch 0 yet normalised before each step (so after
// epoch 0 they are exactly the unit rows of their initial values) and
// trained in epoch 1; no queue in the epoch-0 checkpoint; in the final
// one, the queue holds the last two steps' embeddings (unit rows, newest
// first, so no zero row is left) and is in use.
func checkSwAVRun(t *testing.T, cfg *configs.Config, straight, _ string) {
	sc, err := buildSchedules(cfg, 2, 3, 8)
	if err != nil {
		t.Fatal(err)
	}
	init, err := newMethod(cfg, geometryOf(cfg), 8, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer init.close()
	p0 := init.(*swavModel).head.Prototypes.Data()
	k, d := cfg.SwAV.NmbPrototypes, cfg.SwAV.OutputDim
	const name = "student.head.prototypes.weight"

	after0 := readCheckpoint(t, straight, 3)
	got := after0.Tensors[name].F32
	for r := 0; r < k; r++ {
		var s float64
		for _, v := range p0[r*d : (r+1)*d] {
			s += float64(v) * float64(v)
		}
		for j := 0; j < d; j++ {
			want := float64(p0[r*d+j]) / math.Sqrt(s)
			if math.Abs(float64(got[r*d+j])-want) > 1e-6 {
				t.Fatalf("prototype %d after the frozen epoch: %g at %d, want its initial value normalised, %g", r, got[r*d+j], j, want)
			}
		}
	}
	if _, ok := after0.Tensors[nameSwAVQueue]; ok {
		t.Errorf("the epoch-0 checkpoint holds a queue; SWAV.EPOCH_QUEUE_STARTS is 1")
	}
	final := readCheckpoint(t, straight, 6)
	if bytes.Equal(float32Bytes(final.Tensors[name].F32), float32Bytes(got)) {
		t.Error("the prototypes did not move in epoch 1, after the freeze")
	}
	q, ok := final.Tensors[nameSwAVQueue]
	if !ok || fmt.Sprint(q.Shape) != "[2 16 16]" {
		t.Fatalf("final queue %v (present %v), want [2 crops, 16 rows, 16 dims]", q.Shape, ok)
	}
	for r := 0; r < 2*16; r++ {
		var s float64
		for _, v := range q.F32[r*16 : (r+1)*16] {
			s += float64(v) * float64(v)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("queue row %d has squared norm %g, want a normalised embedding", r, s)
		}
	}
	if u := final.Tensors[nameSwAVUseQueue]; u.DType != safetensors.I64 || u.I64[0] != 1 {
		t.Errorf("use_the_queue %v, want 1: the last step found the queue full", u.I64)
	}
}

// checkMoCoRun checks the key encoder and the queue: between the
// checkpoints after steps 3 and 4 every key-encoder parameter moved by
// exactly one momentum update, k ← k·m + q·(1−m) in float32 with the
// query from before step 4's optimiser step, while BN running statistics
// follow the key encoder's own forwards; after 6 steps of 8 keys the
// pointer of the 32-key queue is at 48 mod 32 = 16 and every column is a
// unit vector.
func checkMoCoRun(t *testing.T, cfg *configs.Config, straight, stopped string) {
	a, b := readCheckpoint(t, straight, 3), readCheckpoint(t, stopped, 4)
	m := cfg.MoCo.Momentum
	m32, c32 := float32(m), float32(1-m)
	checked, stats := 0, 0
	for _, name := range a.Names {
		if !strings.HasPrefix(name, "key.") || a.Tensors[name].DType != safetensors.F32 {
			continue
		}
		if strings.Contains(name, "running_") {
			if bytes.Equal(float32Bytes(a.Tensors[name].F32), float32Bytes(b.Tensors[name].F32)) {
				t.Errorf("%s did not change in a key forward", name)
			}
			stats++
			continue
		}
		k3, q3, k4 := a.Tensors[name].F32, a.Tensors["student."+strings.TrimPrefix(name, "key.")].F32, b.Tensors[name].F32
		if len(q3) != len(k3) {
			t.Fatalf("%s has no query counterpart", name)
		}
		for i := range k3 {
			if want := k3[i]*m32 + c32*q3[i]; k4[i] != want {
				t.Fatalf("%s[%d] after step 4: %g, want %g·%g + %g·%g = %g", name, i, k4[i], k3[i], m, q3[i], 1-m, want)
			}
		}
		checked++
	}
	if checked == 0 || stats == 0 {
		t.Fatalf("checked %d key parameters and %d BN statistics", checked, stats)
	}
	final := readCheckpoint(t, straight, 6)
	if p := final.Tensors[nameMoCoQueuePtr]; p.DType != safetensors.I64 || p.I64[0] != 16 {
		t.Errorf("queue pointer %v, want 16", p.I64)
	}
	q := final.Tensors[nameMoCoQueue]
	if fmt.Sprint(q.Shape) != "[16 32]" {
		t.Fatalf("queue shape %v, want [16 dims, 32 keys]", q.Shape)
	}
	for j := 0; j < 32; j++ {
		var s float64
		for c := 0; c < 16; c++ {
			s += float64(q.F32[c*32+j]) * float64(q.F32[c*32+j])
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("queue column %d has squared norm %g, want a unit key", j, s)
		}
	}
	if bytes.Equal(float32Bytes(q.F32), float32Bytes(a.Tensors[nameMoCoQueue].F32)) {
		t.Error("the queue did not change in 3 steps")
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
		st, err := safetensorsRead(filepath.Join(dir, checkpoint.BackboneFile))
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

// TestMethodRunErrors: a MoCo queue that is not a multiple of the batch
// and a checkpoint of another method given to --init-from are refused
// with errors naming the problem; DINO's settings do not constrain SwAV
// and MoCo runs (the tiny configs keep DINO's 30-epoch temperature
// warm-up for 2 epochs) but still constrain DINO ones.
func TestMethodRunErrors(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	moco := tinyMoCoConfig(t)
	shards := filepath.Join(root, "shards")
	writeShards(t, shards, moco, 16, 1)

	bad := moco.Clone()
	if err := bad.Set("MOCO.QUEUE_LENGTH", "36"); err != nil {
		t.Fatal(err)
	}
	_, err := Run(ctx, Options{Config: bad, Shards: []string{shards}, Out: filepath.Join(root, "bad"), AllowConfigMismatch: true})
	if err == nil || !strings.Contains(err.Error(), "MOCO.QUEUE_LENGTH 36 is not a multiple of the batch size 8") {
		t.Errorf("queue of 36 with batch 8: %v", err)
	}

	dino := tinyConfig(t)
	dinoOut := filepath.Join(root, "dino")
	sum, err := Run(ctx, Options{Config: dino, Shards: []string{shards}, Out: dinoOut, MaxSteps: 1, AllowConfigMismatch: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, Options{Config: moco, Shards: []string{shards}, Out: filepath.Join(root, "moco"), InitFrom: sum.Checkpoint})
	if err == nil || !strings.Contains(err.Error(), "holds a DINO checkpoint, this run trains MOCO") {
		t.Errorf("MoCo run from a DINO checkpoint: %v", err)
	}

	long := dino.Clone()
	for k, v := range map[string]string{"DINO.WARMUP_TEACHER_TEMP_ITERS": "0", "DINO.WARMUP_TEACHER_TEMP_EPOCHS": "30"} {
		if err := long.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := validate(long); err == nil || !strings.Contains(err.Error(), "DINO.WARMUP_TEACHER_TEMP_EPOCHS") {
		t.Errorf("DINO with a 30-epoch warm-up in 2 epochs: %v", err)
	}
	long.SSLMethod = "MOCO"
	if err := validate(long); err != nil {
		t.Errorf("the same DINO section in a MoCo config: %v", err)
	}
}

// TestMonitorAndCurves checks the monitor hook runs on every epoch's
// checkpoint and that its results and the loss curve are written.
func TestMonitorAndCurves(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t)
	root := t.TempDir()
	shards, out := filepath.Join(root, "shards"), filepath.Join(root, "out")
	writeShards(t, shards, cfg, 24, 1)
	var seen []int
	_, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out,
		Monitor: func(ctx context.Context, ckpt string, epoch int) (map[string]float64, error) {
			if _, err := os.Stat(filepath.Join(ckpt, checkpoint.BackboneFile)); err != nil {
				return nil, err
			}
			seen = append(seen, epoch)
			return map[string]float64{"knn_top1": float64(10 * (epoch + 1))}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[0 1]" {
		t.Errorf("monitor ran after epochs %v, want [0 1]", seen)
	}
	recs, err := jsonfile.ReadLines[MetricsRecord](ctx, filepath.Join(out, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, r := range recs {
		if r.Kind == "monitor" {
			got = append(got, r.Metrics["knn_top1"])
		}
	}
	if fmt.Sprint(got) != "[10 20]" {
		t.Errorf("monitor records %v, want [10 20]", got)
	}
	for _, f := range []string{"loss.png", "monitor.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestResumeFinishedRun resumes a run that already trained its last
// epoch: nothing trains, and the call reports the finished run — its final
// checkpoint, done, its final loss and step counts — as the finishing call
// did, leaving summary.json as that call wrote it; without summary.json it
// reports what the final checkpoint's meta says.
func TestResumeFinishedRun(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t)
	root := t.TempDir()
	shards, out := filepath.Join(root, "shards"), filepath.Join(root, "out")
	writeShards(t, shards, cfg, 24, 1)
	first, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	summaryFile := filepath.Join(out, "summary.json")
	written := readBytes(t, summaryFile)
	final := filepath.Join(out, "checkpoints", "step-00000006")
	if first.Checkpoint != final || first.FinalLoss == 0 || first.Steps != 6 {
		t.Fatalf("first run %+v: want 6 steps ending in %s with a loss", first, final)
	}

	again, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.Checkpoint != final || !again.Done || again.FinalLoss != first.FinalLoss || again.Steps != 6 || again.StartStep != 0 ||
		again.ItersPerEpoch != 3 || again.Epochs != 2 {
		t.Errorf("resumed finished run %+v, want the first run's %+v", again, first)
	}
	if got := readBytes(t, summaryFile); !bytes.Equal(got, written) {
		t.Errorf("resuming a finished run rewrote summary.json:\n%s\nwant\n%s", got, written)
	}

	// Without summary.json: the final checkpoint's meta.
	if err := os.Remove(summaryFile); err != nil {
		t.Fatal(err)
	}
	again, err = Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.Checkpoint != final || !again.Done || again.FinalLoss != first.FinalLoss || again.Steps != 6 ||
		fmt.Sprint(again.StepsPerEpoch) != "[3 3]" {
		t.Errorf("resumed finished run without summary.json: %+v, want 6 steps (3 + 3) ending in %s with loss %g", again, final, first.FinalLoss)
	}
	if _, err := os.Stat(summaryFile); err == nil {
		t.Error("resuming a finished run wrote a summary.json")
	}
}

// TestResumeRefusesUnreadableMetrics: a metrics.jsonl that does not parse
// stops --resume with an error naming it, instead of the resumed run
// starting the file over without the earlier records.
func TestResumeRefusesUnreadableMetrics(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t)
	root := t.TempDir()
	shards, out := filepath.Join(root, "shards"), filepath.Join(root, "out")
	writeShards(t, shards, cfg, 24, 1)
	if _, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out, MaxSteps: 1}); err != nil {
		t.Fatal(err)
	}
	metrics := filepath.Join(out, MetricsFile)
	if err := os.WriteFile(metrics, []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out, Resume: true})
	if err == nil || !strings.Contains(err.Error(), metrics) {
		t.Errorf("resume with an unreadable %s: err %v", MetricsFile, err)
	}
	if got := readBytes(t, metrics); string(got) != "{not json\n" {
		t.Errorf("the refused resume rewrote %s: %q", MetricsFile, got)
	}
}

// TestRunRefusesBadSetupEarly: mistakes a run would otherwise find only
// after training (at the first checkpoint) or never (a root listed twice
// trains every sample twice) stop it before any step, naming the input.
func TestRunRefusesBadSetupEarly(t *testing.T) {
	cfg := tinyConfig(t)
	root := t.TempDir()
	shards := filepath.Join(root, "shards")
	writeShards(t, shards, cfg, 24, 1)
	file := filepath.Join(root, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		shards []string
		out    string
		want   string
	}{
		{"out is a file", []string{shards}, file, "--out " + file + " is a file"},
		{"a root twice", []string{shards, shards + "/"}, filepath.Join(root, "out"), "--shards names " + shards + "/ twice"},
	} {
		_, err := Run(context.Background(), Options{Config: cfg, Shards: tc.shards, Out: tc.out})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "out")); !os.IsNotExist(err) {
		t.Errorf("a refused run wrote its output folder: %v", err)
	}
}

// TestLastStepLogged: with LOG_STEP not dividing the run's length, the
// last step still gets its metrics.jsonl record, so loss curves end where
// training ended.
func TestLastStepLogged(t *testing.T) {
	cfg := tinyConfig(t)
	if err := cfg.Set("LOG_STEP", "4"); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeShards(t, filepath.Join(root, "shards"), cfg, 24, 1)
	sum, err := Run(context.Background(), Options{Config: cfg, Shards: []string{filepath.Join(root, "shards")}, Out: filepath.Join(root, "out")})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "out", MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var steps []int
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r MetricsRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == "step" {
			steps = append(steps, r.Step)
		}
	}
	last := sum.Steps - 1
	if len(steps) == 0 || steps[len(steps)-1] != last || steps[0] != 0 || (last%4 == 0) {
		t.Errorf("step records %v for %d steps, want 0, 4, … and the last step %d (a run whose last step LOG_STEP does not divide)", steps, sum.Steps, last)
	}
}

// TestTensorBoardEvents: with a TensorBoard folder, the run writes an
// events file whose scalars are metrics.jsonl's, step for step, and a
// resumed run rewrites that same file instead of starting a second one.
func TestTensorBoardEvents(t *testing.T) {
	cfg := tinyConfig(t)
	root := t.TempDir()
	shards, out, tb := filepath.Join(root, "shards"), filepath.Join(root, "out"), filepath.Join(root, "tb")
	writeShards(t, shards, cfg, 24, 2)
	ctx := context.Background()
	if _, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out, TensorBoard: tb, Epochs: 2, MaxSteps: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: out, TensorBoard: tb, Epochs: 2, Resume: true}); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(tb, "events.out.tfevents.*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("events files %v (%v), want one", files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := tensorboard.ReadEvents(f)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := jsonfile.ReadLines[MetricsRecord](ctx, filepath.Join(out, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, r := range recs {
		if r.Kind == "step" {
			want = append(want, fmt.Sprintf("%d:%.5g", r.Step, float32(r.Loss)))
		}
	}
	for _, e := range evs[1:] {
		for _, v := range e.GetSummary().GetValue() {
			if v.GetTag() == "train/loss" {
				got = append(got, fmt.Sprintf("%d:%.5g", e.GetStep(), v.GetSimpleValue()))
			}
		}
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("train/loss events %v, metrics.jsonl steps %v", got, want)
	}
}
