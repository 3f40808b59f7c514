package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/sinks/coco"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/eval/cocoeval"
	"github.com/sslight-go/sslight/transforms/source"
)

// makeCOCO runs `sslight dataset make-coco` on fmnist-mini's items.
func makeCOCO(t *testing.T, out, split string, n int, seed int) {
	t.Helper()
	idxSplit := "train"
	if split == "val" {
		idxSplit = "t10k"
	}
	err := runDataset(context.Background(), []string{"make-coco",
		"--idx-images", filepath.Join(fmnistMini, idxSplit+"-images-idx3-ubyte.gz"),
		"--idx-labels", filepath.Join(fmnistMini, idxSplit+"-labels-idx1-ubyte.gz"),
		"--out", out, "--images", fmt.Sprint(n), "--canvas", "64", "--seed", fmt.Sprint(seed), "--split", split})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMakeCOCOCommand checks that the generated set is what the COCO
// readers of the project accept, and that it is byte-deterministic.
func TestMakeCOCOCommand(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	makeCOCO(t, a, "val", 6, 4)
	makeCOCO(t, b, "val", 6, 4)
	for _, f := range []string{"annotations/instances_val.json", "val/000000000001.png", "val/000000000006.png"} {
		x, err1 := os.ReadFile(filepath.Join(a, f))
		y, err2 := os.ReadFile(filepath.Join(b, f))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed (%v, %v)", f, err1, err2)
		}
	}
	l, err := source.List(context.Background(), source.FormatCOCO, a, source.Options{Split: "val"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 6 || len(l.Rejected) != 0 || len(l.Classes) != 10 {
		t.Errorf("the coco source lists %d items, %d rejections, classes %v; want 6, 0 and 10 classes", len(l.Items), len(l.Rejected), l.Classes)
	}
	f, err := os.Open(filepath.Join(a, "annotations/instances_val.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gt, err := cocoeval.LoadGroundTruth(f, "instances_val.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := gt.PrepareMasks(); err != nil {
		t.Errorf("segm ground truth: %v", err)
	}
	if n := gt.NumAnnotations(); n < 6 || n > 24 {
		t.Errorf("%d annotations on 6 images, want 1–4 each", n)
	}

	for _, args := range [][]string{
		{"make-coco", "--idx-labels", "x", "--out", a, "--images", "3"},
		{"make-coco", "--idx-images", filepath.Join(fmnistMini, "t10k-images-idx3-ubyte.gz"), "--idx-labels", filepath.Join(fmnistMini, "t10k-labels-idx1-ubyte.gz"), "--out", a, "--images", "3", "--canvas", "30"},
		{"make-coco", "--idx-images", filepath.Join(fmnistMini, "t10k-images-idx3-ubyte.gz"), "--idx-labels", filepath.Join(fmnistMini, "train-labels-idx1-ubyte.gz"), "--out", a, "--images", "3"},
	} {
		if err := runDataset(context.Background(), args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// writeCheckpoint writes a checkpoint folder of a randomly initialised
// width-0.125 ResNet-18 of the Fashion-MNIST preset, as the trainer lays
// one out, without training.
func writeCheckpoint(t *testing.T, dir string) {
	t.Helper()
	cfg, err := configs.Preset("dino_fmnist_sslight")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set("MODEL.WIDTH", "0.125"); err != nil {
		t.Fatal(err)
	}
	bb, err := backbone.New(cfg.Model.BackboneArch, backbone.Options{Seed: 9, Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, checkpoint.BackboneFile), backbone.StateDict(bb)); err != nil {
		t.Fatal(err)
	}
	meta := checkpoint.Meta{Method: cfg.SSLMethod, Arch: cfg.Model.BackboneArch, Width: cfg.Model.Width, SmallImageStem: true,
		EmbedDim: bb.EmbedDim(), ConfigHash: cfg.Hash(), Config: cfg.CanonicalJSON(), Reason: "final"}
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.MetaFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEvalDetectionProtocol runs `sslight eval --protocols detection` on a
// generated COCO-format set for a checkpoint and the random-init row and
// checks that AP numbers, the COCO results and the report come out.
func TestEvalDetectionProtocol(t *testing.T) {
	root := t.TempDir()
	data, ckpt, out := filepath.Join(root, "coco"), filepath.Join(root, "ckpt"), filepath.Join(root, "eval")
	makeCOCO(t, data, "train", 16, 1)
	makeCOCO(t, data, "val", 8, 2)
	writeCheckpoint(t, ckpt)
	ctx := context.Background()
	base := []string{"--checkpoint", ckpt, "--protocols", "detection", "--out", out}

	// Bad input stops the command before any training.
	if err := runEvalClassify(ctx, base); err == nil || !strings.Contains(err.Error(), "--det-train") {
		t.Errorf("without --det-train: err %v, want one naming the flag", err)
	}
	if err := runEvalClassify(ctx, append(base, "--det-train", data, "--det-val", data, "--det-val-split", "test")); err == nil ||
		!strings.Contains(err.Error(), "instances_test.json") {
		t.Errorf("a missing split: err %v, want one naming the annotations file", err)
	}

	args := append(base, "--random-init", "--det-train", data, "--det-val", data, "--det-epochs", "2", "--det-batch-size", "8")
	if err := runEvalClassify(ctx, args); err != nil {
		t.Fatal(err)
	}
	rep := readReport(t, out)
	if len(rep.Rows) != 2 || rep.Rows[0].Setting != report.SettingRandomInit {
		t.Fatalf("rows %+v: want random init and the checkpoint", rep.Rows)
	}
	for _, r := range rep.Rows {
		for _, k := range []string{"ap", "ap50", "ap75"} {
			if v, ok := r.Metrics[k]; !ok || v < 0 || v > 100 {
				t.Errorf("%s: %s = %v (present %v)", r.Name, k, v, ok)
			}
		}
		if r.Arch != "resnet18" || !strings.Contains(r.Protocols[evaluate.ProtocolDetection], "output stride 4") || r.Seconds[evaluate.ProtocolDetection] <= 0 {
			t.Errorf("%s: arch %q, protocol %q, seconds %v", r.Name, r.Arch, r.Protocols[evaluate.ProtocolDetection], r.Seconds)
		}
		res, err := os.ReadFile(evaluate.DetectionsFile(out, r.Name))
		if err != nil {
			t.Fatal(err)
		}
		dets, err := coco.ParseResults(bytes.NewReader(res), "detections.json")
		if err != nil || len(dets) == 0 || len(dets) > 8*100 {
			t.Errorf("%s: %d detections (%v)", r.Name, len(dets), err)
		}
	}
	if rep.Rows[1].Checkpoint == "" {
		t.Error("the checkpoint row does not name its checkpoint")
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(md), "AP50") {
		t.Errorf("report.md has no AP columns:\n%s", md)
	}
}

// TestEvalDetectionWithKNN mixes the detection protocol with a
// classification one: both sets of metrics land in one row, and the
// raw-pixel row gets no detection numbers.
func TestEvalDetectionWithKNN(t *testing.T) {
	root := t.TempDir()
	data, ckpt, out := filepath.Join(root, "coco"), filepath.Join(root, "ckpt"), filepath.Join(root, "eval")
	makeCOCO(t, data, "train", 8, 1)
	makeCOCO(t, data, "val", 4, 2)
	writeCheckpoint(t, ckpt)
	bucket := filepath.Join(root, "bucket")
	exportMini(t, "train", filepath.Join(bucket, "train"), 5)
	exportMini(t, "t10k", filepath.Join(bucket, "test"), 5)
	err := runEvalClassify(context.Background(), []string{"--checkpoint", ckpt, "--protocols", "knn,detection", "--raw-pixels",
		"--train", filepath.Join(bucket, "train"), "--val", filepath.Join(bucket, "test"), "--format", "imagenet",
		"--det-train", data, "--det-val", data, "--det-epochs", "1", "--det-batch-size", "4", "--out", out})
	if err != nil {
		t.Fatal(err)
	}
	rep := readReport(t, out)
	if len(rep.Rows) != 2 {
		t.Fatalf("%d rows, want raw pixels and the checkpoint", len(rep.Rows))
	}
	raw, model := rep.Rows[0], rep.Rows[1]
	if _, ok := raw.Metrics["ap"]; ok || raw.Metrics["knn_top1"] <= 0 {
		t.Errorf("raw pixels: metrics %v, want kNN only", raw.Metrics)
	}
	for _, k := range []string{"knn_top1", "ap", "ap50", "ap75"} {
		if _, ok := model.Metrics[k]; !ok {
			t.Errorf("checkpoint row lacks %s: %v", k, model.Metrics)
		}
	}
}
