package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/pipelines/retrain"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/report"
)

const fmnistMini = "../../testdata/fmnist-mini"

// tinySets shrinks the Fashion-MNIST presets so a whole run takes seconds.
var tinySets = []string{
	"--set", "MODEL.WIDTH=0.125",
	"--set", "DINOHead.HIDDEN_SIZE=32", "--set", "DINOHead.BOTTLENECK_DIM=16", "--set", "DINOHead.OUTPUT_DIM=64",
	"--set", "SOLVER.WARMUP_ITERS=1", "--set", "DINO.WARMUP_TEACHER_TEMP_ITERS=2", "--set", "SOLVER.FREEZE_LAST_LAYER_ITERS=1",
}

// exportMini writes fmnist-mini's split as an ImageNet-layout PNG folder.
func exportMini(t *testing.T, split, out string, perClass int) {
	t.Helper()
	err := runDataset(context.Background(), []string{"export-idx",
		"--images", filepath.Join(fmnistMini, split+"-images-idx3-ubyte.gz"),
		"--labels", filepath.Join(fmnistMini, split+"-labels-idx1-ubyte.gz"),
		"--per-class", fmt.Sprint(perClass), "--out", out})
	if err != nil {
		t.Fatal(err)
	}
}

// readReport reads the metrics.json an eval or run wrote under dir.
func readReport(t *testing.T, dir string) report.Report {
	t.Helper()
	var rep report.Report
	b, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func onlyRunDir(t *testing.T, root string) string {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil || len(ents) != 1 {
		t.Fatalf("%s: want exactly one run directory, have %v (%v)", root, ents, err)
	}
	return filepath.Join(root, ents[0].Name())
}

// TestRunEndToEnd runs `sslight run` for the baseline and SSLight presets
// on real Fashion-MNIST images (as PNGs in a folder bucket) through every
// stage and checks the run directory: the four rows of the demo table with
// every requested protocol, the report files and the stage record.
func TestRunEndToEnd(t *testing.T) {
	root := t.TempDir()
	bucket, runs := filepath.Join(root, "bucket"), filepath.Join(root, "runs")
	exportMini(t, "train", filepath.Join(bucket, "train"), 0)
	exportMini(t, "t10k", filepath.Join(bucket, "test"), 0)
	args := append([]string{"--config", "dino_fmnist_baseline,dino_fmnist_sslight", "--format", "imagenet",
		"--source", filepath.Join(bucket, "train"), "--eval-val", filepath.Join(bucket, "test"), "--out", runs,
		"--epochs", "1", "--batch-size", "32", "--protocols", "knn,linear,semi1,semi10", "--quiet"}, tinySets...)
	if err := runRun(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	dir := onlyRunDir(t, runs)
	for _, f := range []string{"metrics.json", "metrics.csv", "report.md", "accuracy.png", "loss.png", "stages.json",
		"dino_fmnist_baseline/pretrain/metrics.jsonl", "dino_fmnist_sslight/shards/manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	rep := readReport(t, dir)
	want := []struct{ name, setting string }{{"raw pixels", report.SettingRawPixels}, {"random init", report.SettingRandomInit},
		{"DINO", report.SettingBaseline}, {"DINO + SSLight", report.SettingSSLight}}
	if len(rep.Rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rep.Rows), len(want))
	}
	for i, w := range want {
		r := rep.Rows[i]
		if r.Name != w.name || r.Setting != w.setting {
			t.Errorf("row %d is %s/%s, want %s/%s", i, r.Name, r.Setting, w.name, w.setting)
		}
		keys := []string{"knn_top1", "knn_top5", "linear_top1", "linear_top5"}
		if w.setting != report.SettingRawPixels {
			keys = append(keys, "semi1_top1", "semi1_top5", "semi10_top1", "semi10_top5")
		}
		for _, k := range keys {
			v, ok := r.Metrics[k]
			if !ok || v < 0 || v > 100 {
				t.Errorf("%s: %s = %v (present %v)", r.Name, k, v, ok)
			}
		}
	}
	// Raw pixels of 10 well-separated classes beat chance by far even with
	// 200 training images; a broken feature path would sit near 10%.
	if v := rep.Rows[0].Metrics["knn_top1"]; v < 50 {
		t.Errorf("raw-pixel kNN top-1 %.1f%% on Fashion-MNIST, want well above chance", v)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "| DINO + SSLight | resnet18 width 0.125 small-image stem |") || !strings.Contains(string(md), "(+") && !strings.Contains(string(md), "(-") {
		t.Errorf("report.md lacks the SSLight row with deltas:\n%s", md)
	}
	// How it was made: the data as read (not TRAIN.DATASET), each
	// pre-training's config, schedule and seed, the machine, the software.
	s := rep.Setup
	if rep.Dataset != "bucket/train" || s == nil || s.Train.Images != 200 || s.Val.Images == 0 || s.Train.Classes != 10 ||
		s.Machine.CPU == "" || s.Machine.Cores < 1 || !strings.HasPrefix(s.Software, "sslight ") {
		t.Errorf("dataset %q, setup %+v", rep.Dataset, s)
	}
	p := rep.Rows[3].Pretraining
	if p == nil || p.Config != "dino_fmnist_sslight" || p.Epochs != 1 || p.BatchSize != 32 || p.ImagesSeen != int64(p.Steps*32) || p.Steps == 0 ||
		p.Views != "2×28 + 6×16 px" || len(p.ConfigHash) != 64 {
		t.Errorf("SSLight row's pre-training %+v", p)
	}
	if rep.Rows[1].Seed != 0 || rep.Rows[1].Backbone != "resnet18 width 0.125 small-image stem" || rep.Rows[0].Pretraining != nil {
		t.Errorf("reference rows: %+v / %+v", rep.Rows[0], rep.Rows[1])
	}
	for _, want := range []string{"## How this was made", "data: bucket/train — train ", "200 images, 10 classes",
		"DINO + SSLight: DINO resnet18 width 0.125 small-image stem, views 2×28 + 6×16 px; dino_fmnist_sslight (hash ", "1 epoch × 6 iterations of batch 32 = 6 steps, 192 images seen",
		"images seen; seed 0, student weights evaluated", "knn: DINO weighted kNN on L2-normalised features, T=0.07, k ∈ {10, 20, 100, 200} (the table shows k=20), 200 train / 100 val images\n", "machine: ", "sslight "} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

// TestRunOnEmulator runs the job with gs:// URIs on the in-process GCS
// emulator and expects the report copied back to the local --out.
func TestRunOnEmulator(t *testing.T) {
	root := t.TempDir()
	bucket, runs := filepath.Join(root, "bucket"), filepath.Join(root, "runs")
	exportMini(t, "train", filepath.Join(bucket, "train"), 6)
	exportMini(t, "t10k", filepath.Join(bucket, "test"), 3)
	args := append([]string{"--config", "dino_fmnist_sslight", "--format", "imagenet", "--storage", "emulator",
		"--source", filepath.Join(bucket, "train"), "--eval-val", filepath.Join(bucket, "test"), "--out", runs,
		"--epochs", "1", "--batch-size", "16", "--references", "", "--quiet"}, tinySets...)
	if err := runRun(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	dir := onlyRunDir(t, runs)
	rep := readReport(t, dir)
	if len(rep.Rows) != 1 || !strings.HasPrefix(rep.Rows[0].Checkpoint, "gs://sslight-demo/runs/") {
		t.Errorf("rows %+v: want one row whose checkpoint lives in the emulated bucket", rep.Rows)
	}
}

// TestRetrainCommand runs `sslight retrain --once` three times: on 60
// images, after 40 more land (only those are prepared), and with nothing
// new (no work).
func TestRetrainCommand(t *testing.T) {
	root := t.TempDir()
	bucket, state := filepath.Join(root, "bucket"), filepath.Join(root, "state")
	all := filepath.Join(root, "all")
	exportMini(t, "train", all, 10)
	// The bucket starts with the first 6 images of every class.
	copyFirst := func(from, to int) {
		classes, _ := os.ReadDir(all)
		for _, c := range classes {
			files, _ := os.ReadDir(filepath.Join(all, c.Name()))
			for _, f := range files[from:to] {
				b, _ := os.ReadFile(filepath.Join(all, c.Name(), f.Name()))
				os.MkdirAll(filepath.Join(bucket, c.Name()), 0o755)
				if err := os.WriteFile(filepath.Join(bucket, c.Name(), f.Name()), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	args := append([]string{"--config", "dino_fmnist_sslight", "--format", "imagenet", "--source", bucket, "--state", state,
		"--once", "--batch-size", "16"}, tinySets...)
	copyFirst(0, 6)
	for i := 0; i < 3; i++ {
		if i == 1 {
			copyFirst(6, 10)
		}
		if err := runRetrain(context.Background(), args); err != nil {
			t.Fatalf("retrain %d: %v", i+1, err)
		}
	}
	st, err := retrain.Load(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	if st.Runs != 2 || len(st.Increments) != 2 || st.Increments[1].Items != 40 {
		t.Fatalf("state %+v: want 2 runs, the second preparing only the 40 new images", st)
	}
	m, err := manifest.Read(context.Background(), filepath.Join(st.Increments[1].Shards, manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Source.Items) != 40 {
		t.Errorf("increment 2 prepared %d images, want 40", len(m.Source.Items))
	}
}

// TestPretrainWithKNNMonitor prepares fmnist-mini (IDX) and pre-trains two
// epochs with the online kNN monitor on its test split.
func TestPretrainWithKNNMonitor(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	shards, out := filepath.Join(root, "shards"), filepath.Join(root, "pretrain")
	if err := runPrepare(ctx, append([]string{"--config", "dino_fmnist_sslight", "--format", "idx", "--source", fmnistMini,
		"--out", shards, "--epochs", "1", "--quiet"}, tinySets...)); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--config", "dino_fmnist_sslight", "--shards", shards, "--out", out, "--epochs", "2", "--batch-size", "32",
		"--knn-train", fmnistMini, "--knn-val", fmnistMini, "--knn-format", "idx", "--knn-val-split", "t10k", "--quiet",
		"--set", "TRAIN.JOINT_LINEAR_PROBE=true"}, tinySets...)
	if err := runPretrain(ctx, args); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"kind":"monitor"`); n != 2 {
		t.Errorf("metrics.jsonl has %d monitor records, want 2", n)
	}
	// The joint linear probe: trained on every step, scored on the
	// monitor's validation features after every epoch.
	// 200 images / batch 32 = 6 steps per epoch; LOG_STEP 10 logs steps 0
	// and 10, and the run's last step (11) is logged too.
	if n := strings.Count(string(b), `"sup_accu":`); n != 3+2 {
		t.Errorf("metrics.jsonl has %d records with sup_accu, want 3 steps and 2 epochs", n)
	}
	if n := strings.Count(string(b), `"probe_top1":`); n != 2 {
		t.Errorf("metrics.jsonl has %d monitor records with probe_top1, want 2", n)
	}
	if _, err := os.Stat(filepath.Join(out, "monitor.png")); err != nil {
		t.Error(err)
	}
}
