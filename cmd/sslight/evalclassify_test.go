package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// TestEvalRejectsBadInputEarly checks that every bad input the issue names
// (a label set that does not match, an empty validation set, unlabelled
// training data, a checkpoint with a missing tensor or of another
// architecture) fails `sslight eval` with an error naming the problem
// before any feature extraction starts: nothing is written under --out.
func TestEvalRejectsBadInputEarly(t *testing.T) {
	root := t.TempDir()
	train, val := filepath.Join(root, "train"), filepath.Join(root, "val")
	exportMini(t, "train", train, 3)
	exportMini(t, "t10k", val, 2)

	// A validation set missing one class.
	fewer := filepath.Join(root, "val-9")
	exportMini(t, "t10k", fewer, 2)
	ents, err := os.ReadDir(fewer)
	if err != nil || len(ents) != 10 {
		t.Fatalf("exported %d class folders (%v), want 10", len(ents), err)
	}
	if err := os.RemoveAll(filepath.Join(fewer, ents[9].Name())); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(root, "bare") // no class folders at all
	if err := os.MkdirAll(bare, 0o755); err != nil {
		t.Fatal(err)
	}
	// An IDX validation set whose header promises zero images.
	empty := filepath.Join(root, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, header := range map[string][]byte{
		"t10k-images-idx3-ubyte": {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28},
		"t10k-labels-idx1-ubyte": {0, 0, 8, 1, 0, 0, 0, 0},
	} {
		if err := os.WriteFile(filepath.Join(empty, name), header, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	good := filepath.Join(root, "good")
	writeCheckpoint(t, good)
	missing := filepath.Join(root, "missing")
	writeCheckpoint(t, missing)
	f, err := safetensors.ReadFile(filepath.Join(missing, checkpoint.BackboneFile))
	if err != nil {
		t.Fatal(err)
	}
	g := safetensors.NewFile()
	for _, n := range f.Names {
		if n != "layer4.1.bn2.running_var" {
			g.Add(n, f.Tensors[n])
		}
	}
	if err := safetensors.WriteFile(filepath.Join(missing, checkpoint.BackboneFile), g); err != nil {
		t.Fatal(err)
	}
	// meta.json of one architecture over another's tensors.
	other := filepath.Join(root, "other")
	writeCheckpoint(t, other)
	meta, err := os.ReadFile(filepath.Join(other, checkpoint.MetaFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, checkpoint.MetaFile), []byte(strings.Replace(string(meta), `"resnet18"`, `"resnet34"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"classes differ", []string{"--checkpoint", good, "--train", train, "--val", fewer},
			[]string{"label sets do not match", "--train has classes", "--val"}},
		{"empty validation set", []string{"--checkpoint", good, "--format", "idx", "--train", fmnistMini, "--train-split", "train",
			"--val", empty, "--val-split", "t10k"},
			[]string{"--val " + empty + " lists no images"}},
		{"validation root without class folders", []string{"--checkpoint", good, "--train", train, "--val", bare},
			[]string{"--val", "no class folders under " + bare}},
		{"unlabelled training data", []string{"--checkpoint", good, "--train", train, "--val", val, "--format", "folder"},
			[]string{"has no class labels"}},
		{"second checkpoint misses a tensor", []string{"--checkpoint", good + "," + missing, "--train", train, "--val", val},
			[]string{missing, "layer4.1.bn2.running_var"}},
		{"checkpoint of another architecture", []string{"--checkpoint", other, "--train", train, "--val", val},
			[]string{other, "resnet34"}},
		{"unknown protocol", []string{"--checkpoint", good, "--train", train, "--val", val, "--protocols", "knn,linaer"},
			[]string{`unknown protocol "linaer"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "eval")
			args := append([]string{"--out", out, "--format", "imagenet"}, tc.args...)
			err := runEvalClassify(context.Background(), args)
			if err == nil {
				t.Fatalf("sslight eval %v: no error", tc.args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
				t.Errorf("--out %s was written before the bad input was found (%v)", out, statErr)
			}
		})
	}
}

// TestEvalReferenceLinear runs `sslight eval --linear-mode reference` for a
// checkpoint and the random-init row on Fashion-MNIST images: both rows
// get linear numbers that say they come from the reference protocol, and
// the report says so too.
func TestEvalReferenceLinear(t *testing.T) {
	root := t.TempDir()
	train, val, ckpt, out := filepath.Join(root, "train"), filepath.Join(root, "val"), filepath.Join(root, "ckpt"), filepath.Join(root, "eval")
	exportMini(t, "train", train, 6)
	exportMini(t, "t10k", val, 3)
	writeCheckpoint(t, ckpt)
	err := runEvalClassify(context.Background(), []string{"--checkpoint", ckpt, "--train", train, "--val", val, "--format", "imagenet",
		"--protocols", "linear", "--linear-mode", "reference", "--linear-epochs", "2", "--random-init", "--out", out})
	if err != nil {
		t.Fatal(err)
	}
	rep := readReport(t, out)
	if len(rep.Rows) != 2 {
		t.Fatalf("%d rows, want random init and the checkpoint", len(rep.Rows))
	}
	for _, r := range rep.Rows {
		top1, ok := r.Metrics["linear_top1"]
		if !ok || top1 < 0 || top1 > 100 {
			t.Errorf("%s: linear_top1 %v (present %v)", r.Name, top1, ok)
		}
		if d := r.Protocols["linear"]; !strings.Contains(d, "reference protocol") || !strings.Contains(d, "60 training images per epoch") || !strings.Contains(d, "2 epochs") {
			t.Errorf("%s: linear protocol %q", r.Name, d)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "the reference's protocol") {
		t.Errorf("report.md does not say which linear protocol ran:\n%s", md)
	}
	if err := runEvalClassify(context.Background(), []string{"--checkpoint", ckpt, "--train", train, "--val", val, "--format", "imagenet",
		"--linear-mode", "slow", "--out", filepath.Join(root, "x")}); err == nil || !strings.Contains(err.Error(), `--linear-mode "slow"`) {
		t.Errorf("unknown linear mode: err %v", err)
	}
}

// TestEvalSemiSubsetList fine-tunes on the images a reference-format
// subset list names instead of a stratified fraction, and refuses a list
// naming an image the training set lacks.
func TestEvalSemiSubsetList(t *testing.T) {
	root := t.TempDir()
	train, val, ckpt := filepath.Join(root, "train"), filepath.Join(root, "val"), filepath.Join(root, "ckpt")
	exportMini(t, "train", train, 4)
	exportMini(t, "t10k", val, 2)
	writeCheckpoint(t, ckpt)
	var names []string
	err := filepath.WalkDir(train, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && len(names) < 7 {
			names = append(names, filepath.Base(p))
		}
		return err
	})
	if err != nil || len(names) != 7 {
		t.Fatalf("listing the exported images: %v (%d names)", err, len(names))
	}
	list := filepath.Join(root, "semi_1percent.txt")
	os.WriteFile(list, []byte(strings.Join(names, "\r\n")+"\n\n"), 0o644)
	out := filepath.Join(root, "eval")
	if err := runEvalClassify(context.Background(), []string{"--checkpoint", ckpt, "--train", train, "--val", val, "--format", "imagenet",
		"--protocols", "semi1", "--semi1-list", list, "--finetune-epochs", "1", "--out", out}); err != nil {
		t.Fatal(err)
	}
	rep := readReport(t, out)
	if d := rep.Rows[0].Protocols["semi1"]; !strings.Contains(d, "on 7 labelled images") || !strings.Contains(d, list) {
		t.Errorf("semi1 protocol %q: want the 7 images the list names", d)
	}
	bad := filepath.Join(root, "bad.txt")
	os.WriteFile(bad, []byte(names[0]+"\nn01440764_10026.JPEG\n"), 0o644)
	err = runEvalClassify(context.Background(), []string{"--checkpoint", ckpt, "--train", train, "--val", val, "--format", "imagenet",
		"--protocols", "semi1", "--semi1-list", bad, "--finetune-epochs", "1", "--out", filepath.Join(root, "eval2")})
	if err == nil || !strings.Contains(err.Error(), "1 of 2 names match no path") || !strings.Contains(err.Error(), "n01440764_10026.JPEG") {
		t.Errorf("list naming a missing image: err %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "eval2", "features")); !os.IsNotExist(err) {
		t.Errorf("features were extracted before the bad list was found (%v)", err)
	}
}
