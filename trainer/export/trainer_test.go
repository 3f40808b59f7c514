package export

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/shard"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/features"
)

// tinyRun is the Fashion-MNIST demo network shrunk to train in seconds: an
// eighth-width small-stem ResNet-18 on 16 px views, small heads with
// BatchNorm (so their running statistics are exported too).
var tinyRun = map[string]string{
	"MODEL.BACKBONE_ARCH":                       "resnet18",
	"MODEL.WIDTH":                               "0.125",
	"MODEL.SMALL_IMAGE_STEM":                    "true",
	"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE":   "16",
	"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE":    "8",
	"MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_NUMBER": "2",
	"MULTI_VIEWS_TRANSFORMS.NMB_CROPS":          "[2, 2]",
	"TRAIN.BATCH_SIZE":                          "8",
	"SOLVER.TOTAL_EPOCHS":                       "1",
	"SOLVER.WARMUP_EPOCHS":                      "0",
	"SOLVER.WARMUP_ITERS":                       "1",
	"TRAIN.CHECKPOINT_PERIOD":                   "1",
	"LOG_STEP":                                  "1",
	"DINO.WARMUP_TEACHER_TEMP_ITERS":            "3",
	"DINO.WARMUP_TEACHER_TEMP_EPOCHS":           "0",
	"SOLVER.FREEZE_LAST_LAYER_ITERS":            "1",
	"DINOHead.HIDDEN_SIZE":                      "32",
	"DINOHead.BOTTLENECK_DIM":                   "16",
	"DINOHead.OUTPUT_DIM":                       "64",
	"DINOHead.USE_BN_IN_HEAD":                   "true",
	"MOCO.HIDDEN_SIZE":                          "32",
	"MOCO.OUTPUT_DIM":                           "16",
	"MOCO.QUEUE_LENGTH":                         "32",
	"MOCO.USE_BN_IN_HEAD":                       "true",
	"SWAV.HIDDEN_SIZE":                          "32",
	"SWAV.OUTPUT_DIM":                           "16",
	"SWAV.NMB_PROTOTYPES":                       "10",
}

// writeRandomShards writes n samples of random views as one prepared
// epoch of two shards with its manifest, as sslight prepare would.
func writeRandomShards(t *testing.T, out string, cfg *configs.Config, n int) {
	t.Helper()
	ctx := context.Background()
	mv := cfg.MultiViewsTransforms
	g, l := mv.NmbCrops[0], mv.NmbCrops[1]
	hash := cfg.Hash()
	rng := rand.New(rand.NewPCG(1, 2))
	man := &manifest.Manifest{SchemaVersion: manifest.SchemaVersion, ConfigHash: hash, Config: cfg.CanonicalJSON(),
		Epochs: 1, Source: manifest.Source{Format: "folder", Root: "test://"}, ClassNames: []string{"a", "b"}}
	pix := func(count, s int) []uint8 {
		p := make([]uint8, count*s*s*3)
		for i := range p {
			p[i] = uint8(rng.IntN(256))
		}
		return p
	}
	for i := 0; i < n; i++ {
		man.Source.Items = append(man.Source.Items, manifest.Item{URI: fmt.Sprintf("test://%03d", i), Key: fmt.Sprintf("k%03d", i), Label: i % 2})
	}
	for sh := 0; sh < 2; sh++ {
		w, err := shard.Create(ctx, out, hash, 0, sh)
		if err != nil {
			t.Fatal(err)
		}
		for i := sh; i < n; i += 2 {
			meta, _ := json.Marshal(map[string]any{"key": fmt.Sprintf("k%03d", i), "label": i % 2})
			if err := w.Add(&shard.Sample{Key: fmt.Sprintf("k%03d", i), Meta: meta,
				Global: shard.Views{Count: g, Height: mv.GlobalCropSize, Width: mv.GlobalCropSize, Pix: pix(g, mv.GlobalCropSize)},
				Local:  shard.Views{Count: l, Height: mv.LocalCropSize, Width: mv.LocalCropSize, Pix: pix(l, mv.LocalCropSize)}}); err != nil {
				t.Fatal(err)
			}
		}
		info, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		man.Shards = append(man.Shards, info)
	}
	man.EpochCounts = []manifest.EpochCount{{Epoch: 0, Inputs: int64(n), Samples: int64(n)}}
	if err := manifest.Write(ctx, storage.Join(out, manifest.FileName), man); err != nil {
		t.Fatal(err)
	}
}

// TestExportTrainedCheckpoints trains each method for two steps with the
// trainer itself, exports its student and teacher with their heads, and
// checks them with OpenCV against sslight: the student's embedding from
// trainer/features (the evaluation's extractor), the teacher's from a
// backbone loaded from checkpoint.safetensors here, the heads' from their
// eval-mode Forward. The strict loads prove the exporter reads the
// trainer's tensor names and head shapes as they are.
func TestExportTrainedCheckpoints(t *testing.T) {
	needPython(t, "numpy", "onnx", "cv2")
	ctx := context.Background()
	root := t.TempDir()
	var cases []pyCase
	for _, method := range []struct{ name, preset string }{
		{"DINO", "dino_fmnist_sslight"}, {"MOCO", "moco_cnn_sslight"}, {"SWAV", "swav_cnn_sslight"},
	} {
		cfg := testConfig(t, method.preset, tinyRun)
		shards := filepath.Join(root, method.name, "shards")
		writeRandomShards(t, shards, cfg, 16)
		out := filepath.Join(root, method.name, "run")
		if _, err := trainer.Run(ctx, trainer.Options{Config: cfg, Shards: []string{shards}, Out: out}); err != nil {
			t.Fatalf("%s: train: %v", method.name, err)
		}
		const s, n = 16, 2
		mean, std := meanStd(cfg)
		x := fmnist(t, n, s, mean, std)
		weights := []string{WeightsStudent}
		if checkpoint.TeacherPrefix(method.name) != "" {
			weights = append(weights, WeightsTeacher)
		}
		for _, w := range weights {
			name := method.name + "-" + w
			o := Options{Checkpoint: out, Weights: w, WithHead: true, FoldBN: w == WeightsStudent, Out: filepath.Join(root, name+".onnx")}
			sum, err := Run(ctx, o)
			if err != nil {
				t.Fatalf("%s: export: %v", name, err)
			}
			if sum.Step != 2 || sum.Size != s || sum.BatchNorms == 0 {
				t.Errorf("%s: summary %+v: want step 2, size %d and BatchNorms", name, sum, s)
			}
			var emb []float32
			var bb backbone.Backbone
			if w == WeightsStudent {
				m, err := features.LoadCheckpoint(ctx, out, checkpoint.Student)
				if err != nil {
					t.Fatal(err)
				}
				views := make([][]float32, n)
				for i := range views {
					views[i] = x[i*3*s*s : (i+1)*3*s*s]
				}
				if emb, err = m.Extract(views, s, s); err != nil {
					t.Fatal(err)
				}
				ck, err := checkpoint.LoadBackbone(ctx, out, checkpoint.Student)
				if err != nil {
					t.Fatal(err)
				}
				bb = ck.Net
			} else {
				state, err := safetensors.ReadFile(filepath.Join(sum.Checkpoint, checkpoint.StateFile))
				if err != nil {
					t.Fatal(err)
				}
				meta := checkpoint.Meta{Width: cfg.Model.Width, SmallImageStem: true}
				if bb, err = backbone.New("resnet18", meta.BackboneOptions()); err != nil {
					t.Fatal(err)
				}
				if err := backbone.LoadStateDict(bb, under(state, checkpoint.TeacherPrefix(method.name)+"backbone.")); err != nil {
					t.Fatal(err)
				}
			}
			femb, fmap := forward(t, bb, x, n, s)
			if w == WeightsTeacher {
				emb = femb
			}
			p, err := plan(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			nets, err := loadNetworks(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			outs := headForward(t, nets.head, emb, n, bb.EmbedDim())
			outs[EmbeddingName], outs[FeatureMapName] = emb, fmap
			pc := pyCase{Name: name, Model: o.Out, Input: filepath.Join(root, name+".x.npy"), Expected: map[string]string{}, Dynamic: true}
			writeNPY(t, pc.Input, []int{n, 3, s, s}, x)
			for _, out := range sum.Outputs {
				shape := []int{n}
				for _, d := range out.Shape[1:] {
					var k int
					fmt.Sscan(d, &k)
					shape = append(shape, k)
				}
				path := filepath.Join(root, name+"."+out.Name+".npy")
				writeNPY(t, path, shape, outs[out.Name])
				pc.Expected[out.Name] = path
			}
			cases = append(cases, pc)
		}
	}
	res, _ := runCheck(t, root, cases)
	for _, pc := range cases {
		r := res[pc.Name]
		if r.Error != "" || r.Checker != "ok" || r.ShapeInference != "ok" {
			t.Errorf("%s: %+v", pc.Name, r)
			continue
		}
		var report []string
		for _, name := range sortedKeys(pc.Expected) {
			rel, ok := r.Relative[name]
			if !ok || rel > 1e-4 || r.RelativeBatch1[name] > 1e-4 {
				t.Errorf("%s: %s differs from sslight's by %.3g (batch of 1: %.3g; ok %v), want ≤ 1e-4", pc.Name, name, rel, r.RelativeBatch1[name], ok)
			}
			report = append(report, fmt.Sprintf("%s %.2g", name, rel))
		}
		t.Logf("%-14s OpenCV vs sslight, relative: %s", pc.Name, strings.Join(report, ", "))
	}
}
