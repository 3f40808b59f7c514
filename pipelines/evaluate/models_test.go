package evaluate

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/coco"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/transforms/source"
)

const fmnistMini = "../../testdata/fmnist-mini"

func preset(t *testing.T, name string) *configs.Config {
	t.Helper()
	c, err := configs.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestModelNaming: the presets say which recipe they are; the names and
// settings must agree with them.
func TestModelNaming(t *testing.T) {
	for _, tc := range []struct{ preset, name, setting string }{
		{"dino_fmnist_baseline", "DINO", report.SettingBaseline},
		{"dino_fmnist_sslight", "DINO + SSLight", report.SettingSSLight},
		{"dino_cnn_baseline", "DINO", report.SettingBaseline},
		{"swav_cnn_sslight", "SWAV + SSLight", report.SettingSSLight},
		{"moco_cnn_baseline", "MOCO", report.SettingBaseline},
	} {
		cfg := preset(t, tc.preset)
		if n, s := ModelName(cfg), SettingOf(cfg); n != tc.name || s != tc.setting {
			t.Errorf("%s: %q / %s, want %q / %s", tc.preset, n, s, tc.name, tc.setting)
		}
	}
}

func TestProtocolChecks(t *testing.T) {
	if err := CheckProtocols([]string{"knn", "linear", "semi1", "semi10", "detection"}); err != nil {
		t.Error(err)
	}
	if err := CheckProtocols([]string{"knn", "linaer"}); err == nil || !strings.Contains(err.Error(), `unknown protocol "linaer"`) {
		t.Errorf("a misspelt protocol: err %v", err)
	}
	if HasClassification([]string{ProtocolDetection}) || !HasClassification([]string{ProtocolDetection, ProtocolKNN}) {
		t.Error("HasClassification: detection alone needs no classification sources, kNN does")
	}
}

func TestNotes(t *testing.T) {
	ref := Spec{Protocols: []string{ProtocolLinear, ProtocolDetection}, LinearMode: LinearReference, RefLinear: eval.ReferenceLinearConfig{Epochs: 7}}
	n := Notes(ref)
	if len(n) != 2 || !strings.Contains(n[0], "the reference's protocol") || !strings.Contains(n[0], "7 epochs") || !strings.HasPrefix(n[1], "AP: ") {
		t.Errorf("reference linear + detection: notes %q", n)
	}
	if n := Notes(Spec{Protocols: []string{ProtocolLinear}}); len(n) != 1 || !strings.HasPrefix(n[0], "linear: fast mode") {
		t.Errorf("fast linear: notes %q", n)
	}
	if n := Notes(Spec{Protocols: []string{ProtocolKNN}}); len(n) != 0 {
		t.Errorf("kNN alone: notes %q", n)
	}
}

// TestWriteReport: accuracy.png is a plot of the top-1 accuracies and is
// left out when no row has one.
func TestWriteReport(t *testing.T) {
	ctx := context.Background()
	rows := []report.Row{{Name: "raw pixels", Setting: report.SettingRawPixels, Metrics: map[string]float64{"knn_top1": 61}},
		{Name: "DINO", Setting: report.SettingBaseline, Metrics: map[string]float64{"knn_top1": 70, "linear_top1": 72}}}
	out := t.TempDir()
	if err := WriteReport(ctx, out, &report.Report{RunID: "r", Rows: rows}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"metrics.json", "metrics.csv", "report.md"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "accuracy.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Errorf("accuracy.png: %v", err)
	}
	det := t.TempDir()
	if err := WriteReport(ctx, det, &report.Report{RunID: "r", Rows: []report.Row{{Name: "DINO", Metrics: map[string]float64{"ap": 20}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(det, "accuracy.png")); !os.IsNotExist(err) {
		t.Errorf("a detection-only report has an accuracy plot (%v)", err)
	}
}

// TestModelsRawPixelsKNN scores the raw pixels of fmnist-mini (real
// Fashion-MNIST images) with kNN: 10 well-separated classes put it far
// above chance; a broken feature path would sit near 10%.
func TestModelsRawPixelsKNN(t *testing.T) {
	out := t.TempDir()
	spec := Spec{Train: fmnistMini, Val: fmnistMini, Format: configs.FormatIDX, ValSplit: "t10k", Protocols: []string{ProtocolKNN}}
	rows, err := Models(context.Background(), []Model{RawPixelsModel(preset(t, "dino_fmnist_sslight"))}, spec, out)
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0]
	if len(rows) != 1 || r.Name != "raw pixels" || r.Setting != report.SettingRawPixels || r.Metrics["knn_top1"] < 50 ||
		!strings.Contains(r.Protocols[ProtocolKNN], "200 train / 100 val images") || r.Seconds[ProtocolKNN] <= 0 {
		t.Errorf("rows %+v", rows)
	}
	for _, split := range []string{"train", "val"} {
		if _, err := os.Stat(filepath.Join(FeaturesDir(out, r.Name), split, "features.json")); err != nil {
			t.Error(err)
		}
	}
}

// TestModelsChecksFirst: bad input fails before anything is written.
func TestModelsChecksFirst(t *testing.T) {
	ctx := context.Background()
	cfg := preset(t, "dino_fmnist_sslight")
	list := filepath.Join(t.TempDir(), "semi_1percent.txt")
	if err := os.WriteFile(list, []byte("no_such_image.png\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	knn := Spec{Train: fmnistMini, Val: fmnistMini, Format: configs.FormatIDX, ValSplit: "t10k", Protocols: []string{ProtocolKNN}}
	semi := knn
	semi.Protocols, semi.SemiLists = []string{ProtocolSemi1}, map[string]string{ProtocolSemi1: list}
	vit := preset(t, "dino_vit_sslight")
	for _, tc := range []struct {
		name   string
		models []Model
		spec   Spec
		want   string
	}{
		{"no model", nil, knn, "nothing to evaluate"},
		{"unknown protocol", []Model{RawPixelsModel(cfg)}, Spec{Protocols: []string{"knn", "linaer"}}, `unknown protocol "linaer"`},
		{"no checkpoint there", []Model{{Name: "x", Checkpoint: filepath.Join(t.TempDir(), "none"), Config: cfg}}, knn, "no meta.json there"},
		{"subset list naming no image", []Model{RandomInitModel(cfg)}, semi, "no_such_image.png"},
		{"detection on a ViT", []Model{RandomInitModel(vit)}, Spec{Protocols: []string{ProtocolDetection}}, "needs a CNN's feature map"},
		{"detection without sets", []Model{RandomInitModel(cfg)}, Spec{Protocols: []string{ProtocolDetection}}, "needs --det-train and --det-val"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		_, err := Models(ctx, tc.models, tc.spec, out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: %s written before the error (%v)", tc.name, out, err)
		}
	}
}

// TestDetectionSet maps COCO category ids to class indices and refuses an
// object of a category the annotations do not list.
func TestDetectionSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.png")
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 16, 16))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	item := func(cat int64) source.Item {
		meta, _ := json.Marshal(source.COCOMeta{ImageID: 4, Width: 16, Height: 16,
			Annotations: []coco.Annotation{{ID: 1, ImageID: 4, CategoryID: cat, BBox: coco.BBox{1, 2, 3, 4}}}})
		return source.Item{URI: path, Key: "a.png", Index: -1, Size: int64(b.Len()), Meta: meta}
	}
	set, err := detectionSet(context.Background(), &source.Listing{Items: []source.Item{item(90), item(3)}}, []int64{3, 90}, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c := []int{set.Images[0].Objects[0].Class, set.Images[1].Objects[0].Class}; c[0] != 1 || c[1] != 0 || set.Size != 16 || len(set.Images[0].Pix) != 3*16*16 {
		t.Errorf("classes %v, size %d", c, set.Size)
	}
	if _, err := detectionSet(context.Background(), &source.Listing{Items: []source.Item{item(7)}}, []int64{3, 90}, 16, 0); err == nil ||
		!strings.Contains(err.Error(), "category 7") {
		t.Errorf("an unlisted category: err %v", err)
	}
}

func TestOutputPaths(t *testing.T) {
	if got := FeaturesDir("gs://b/eval", "DINO + SSLight"); got != "gs://b/eval/features/dino-sslight" {
		t.Errorf("FeaturesDir = %q", got)
	}
	if got := DetectionsFile("/tmp/eval", "random init"); got != "/tmp/eval/detection/random-init/detections.json" {
		t.Errorf("DetectionsFile = %q", got)
	}
}

// TestMonitor scores a checkpoint as the pre-training monitor does: kNN on
// fmnist-mini, and the probe handed the validation features.
func TestMonitor(t *testing.T) {
	cfg := fmnistConfig(t)
	ckpt := filepath.Join(t.TempDir(), "step-00000006")
	writeCheckpoint(t, ckpt, trainedBackbone(t, "resnet18", 2), "resnet18", cfg)
	out := t.TempDir()
	var log strings.Builder
	var probed []int
	mon := Monitor{Spec: Spec{Train: fmnistMini, Val: fmnistMini, Format: configs.FormatIDX, ValSplit: "t10k"}, Config: cfg, Out: out, Log: &log,
		Probe: func(_ context.Context, c string, dim int, x []float32, labels []int) (float64, error) {
			if c != ckpt || dim != 128 || len(x) != dim*len(labels) {
				t.Errorf("probe of %s got dim %d, %d values for %d labels", c, dim, len(x), len(labels))
			}
			probed = labels
			return 12.5, nil
		}}
	res, err := mon.Score(context.Background(), ckpt, 2)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	for _, l := range probed {
		counts[l]++
	}
	if len(probed) != 100 || len(counts) != 10 || counts[0] != 10 {
		t.Errorf("the probe got %d labels (%v), want fmnist-mini's 100 test labels, 10 per class", len(probed), counts)
	}
	if v, ok := res["knn_top1"]; !ok || v < 0 || v > 100 || res["probe_top1"] != 12.5 {
		t.Errorf("scores %v", res)
	}
	if _, err := os.Stat(filepath.Join(out, "monitor", "epoch-0002", "features")); err != nil {
		t.Error(err)
	}
	if !strings.Contains(log.String(), "pretrain: epoch 3: online kNN top-1 ") || !strings.Contains(log.String(), "joint linear probe top-1 12.50%") {
		t.Errorf("log %q", log.String())
	}
}

func TestSetLinear(t *testing.T) {
	s := Spec{Seed: 7}
	if err := s.SetLinear(LinearReference, 3); err != nil {
		t.Fatal(err)
	}
	if s.LinearMode != LinearReference || s.RefLinear.Epochs != 3 || s.RefLinear.Seed != 7 || s.RefLinear.BatchSize != eval.DefaultReferenceLinearConfig().BatchSize {
		t.Errorf("reference, 3 epochs: %+v", s.RefLinear)
	}
	if err := s.SetLinear(LinearFast, 0); err != nil {
		t.Fatal(err)
	}
	if s.LinearMode != LinearFast || s.Linear != eval.DefaultLinearConfig() {
		t.Errorf("fast, default epochs: mode %q, %+v", s.LinearMode, s.Linear)
	}
	if err := s.SetLinear("slow", 0); err == nil || !strings.Contains(err.Error(), `--linear-mode "slow": want fast or reference`) {
		t.Errorf("an unknown mode: err %v", err)
	}
}

// TestCheckpointsReport scores a checkpoint after both reference rows with
// kNN and checks the rows' order, the random-init row's seed (its features
// carry the hash of the checkpoint's config with SEED set to Spec.Seed) and
// the report files.
func TestCheckpointsReport(t *testing.T) {
	cfg := fmnistConfig(t)
	ckpt := filepath.Join(t.TempDir(), "pretrain")
	writeCheckpoint(t, filepath.Join(ckpt, "checkpoints", "step-00000012"), trainedBackbone(t, "resnet18", 4), "resnet18", cfg)
	out := t.TempDir()
	spec := Spec{Train: fmnistMini, Val: fmnistMini, Format: configs.FormatIDX, ValSplit: "t10k", Protocols: []string{ProtocolKNN}, Seed: 5}
	rep, err := Checkpoints{Dirs: []string{ckpt}, RawPixels: true, RandomInit: true, Spec: spec, Out: out}.Report(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rep.Rows {
		names = append(names, r.Name)
	}
	if strings.Join(names, ", ") != "raw pixels, random init, DINO + SSLight" || rep.RunID == "" || rep.Rows[2].Checkpoint == "" {
		t.Errorf("rows %q, run id %q, checkpoint %q", names, rep.RunID, rep.Rows[2].Checkpoint)
	}
	seeded := cfg.Clone()
	if err := seeded.Set("SEED", "5"); err != nil {
		t.Fatal(err)
	}
	if rep.Rows[1].ConfigHash != seeded.Hash() || rep.Rows[1].ConfigHash == cfg.Hash() {
		t.Errorf("random init config hash %s, want that of the config with SEED 5 (%s)", rep.Rows[1].ConfigHash, seeded.Hash())
	}
	for _, f := range []string{"metrics.json", "report.md", "accuracy.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := (Checkpoints{Dirs: []string{filepath.Join(out, "none")}, Spec: spec, Out: t.TempDir()}).Report(context.Background()); err == nil ||
		!strings.HasPrefix(err.Error(), "--checkpoint "+filepath.Join(out, "none")+": ") {
		t.Errorf("a folder without a checkpoint: err %v", err)
	}
}
