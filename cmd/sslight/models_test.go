package main

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/pipelines/embed"
	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/featurefile"
	"github.com/sslight-go/sslight/sinks/npy"
	"github.com/sslight-go/sslight/sinks/onnx"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/features"
)

// python is Debian's interpreter with numpy and OpenCV (the python3 first
// on PATH may have neither).
const python = "/usr/bin/python3"

const testPhotos = "../../testdata/photos"

// writeTeacher adds teacher_backbone.safetensors to a writeCheckpoint
// folder: the same architecture with other random weights.
func writeTeacher(t *testing.T, dir string) backbone.Backbone {
	t.Helper()
	bb, err := backbone.New("resnet18", backbone.Options{Seed: 21, Width: 0.125, SmallImageStem: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, checkpoint.TeacherBackboneFile), backbone.StateDict(bb)); err != nil {
		t.Fatal(err)
	}
	return bb
}

// photoViews are the first n testdata photos as 3×s×s evaluation views of
// the Fashion-MNIST preset (its DATA.MEAN / DATA.STD).
func photoViews(t *testing.T, n, s int) [][]float32 {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testPhotos, "*.jpg"))
	if err != nil || len(paths) < n {
		t.Fatalf("%d photos (%v), want %d", len(paths), err, n)
	}
	cfg, err := configs.Preset("dino_fmnist_sslight")
	if err != nil {
		t.Fatal(err)
	}
	mean, std := cfg.Data.MeanStd32()
	var out [][]float32
	for _, p := range paths[:n] {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var src, view augment.Image
		if _, err := decode.DecodeInto(&src, b, decode.Options{}); err != nil {
			t.Fatal(err)
		}
		if err := augment.EvalTransform(&view, &src, s); err != nil {
			t.Fatal(err)
		}
		x := make([]float32, 3*s*s)
		if err := augment.ToTensorNormalize(x, &view, mean, std); err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

// TestExportCommandRefusesBadFlags: every bad flag stops `sslight export`
// with an error naming it before any weights are read; nothing is written.
func TestExportCommandRefusesBadFlags(t *testing.T) {
	root := t.TempDir()
	ck := filepath.Join(root, "ckpt")
	writeCheckpoint(t, ck)
	out := filepath.Join(root, "m.onnx")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", out}, "missing --checkpoint\n"},
		{[]string{"--checkpoint", ck}, "missing --out\n"},
		{[]string{"--checkpoint", ck, "--out", out, "--batch", "many"}, `--batch "many": want a positive batch size or dynamic`},
		{[]string{"--checkpoint", ck, "--out", out, "--batch", "0"}, `--batch "0"`},
		{[]string{"--checkpoint", ck, "--out", out, "--format", "tflite"}, `format "tflite": want onnx or safetensors`},
		{[]string{"--checkpoint", ck, "--out", out, "--weights", "ema"}, `weights "ema": want student or teacher`},
		{[]string{"--checkpoint", ck, "--out", out, "--size", "-3"}, "size -3"},
		{[]string{"--checkpoint", ck, "--out", out, "--fold-bn=maybe"}, "fold-bn"},
		{[]string{"--checkpoint", ck, "--out", out, "extra"}, `unexpected argument "extra"`},
		{[]string{"--checkpoint", filepath.Join(root, "nothing"), "--out", out}, filepath.Join(root, "nothing")},
		// A DINO checkpoint without its teacher's tensors anywhere.
		{[]string{"--checkpoint", ck, "--out", out, "--weights", "teacher"}, checkpoint.TeacherBackboneFile},
	} {
		err := runExport(context.Background(), tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sslight export %v: err %v, want %q", tc.args, err, tc.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("sslight export %v wrote %s (%v)", tc.args, out, err)
		}
	}
}

// TestExportCommand exports a tiny checkpoint: ONNX with a fixed and a
// dynamic batch (inputs, outputs and metadata as the help describes; with
// OpenCV, when installed, the embedding of real photos equals sslight's),
// and the teacher as safetensors (its tensors the teacher's).
func TestExportCommand(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	ck := filepath.Join(root, "ckpt")
	writeCheckpoint(t, ck)
	teacher := writeTeacher(t, ck)

	for _, tc := range []struct {
		name  string
		args  []string
		batch onnx.Dim
	}{
		{"fixed", []string{"--batch", "2", "--size", "32"}, onnx.Fixed(2)},
		{"dynamic", []string{"--size", "32", "--fold-bn=false"}, onnx.Symbolic("N")},
	} {
		out := filepath.Join(root, tc.name+".onnx")
		if err := runExport(ctx, append([]string{"--checkpoint", ck, "--out", out}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		m, err := onnx.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		g := m.GetGraph()
		in := g.GetInput()[0]
		dims := in.GetType().GetTensorType().GetShape().GetDim()
		if in.GetName() != "input" || len(dims) != 4 || dims[0].GetDimValue() != tc.batch.Value || dims[0].GetDimParam() != tc.batch.Param ||
			dims[1].GetDimValue() != 3 || dims[2].GetDimValue() != 32 || dims[3].GetDimValue() != 32 {
			t.Errorf("%s: input %s %v, want input [%v, 3, 32, 32]", tc.name, in.GetName(), dims, tc.batch)
		}
		var outputs []string
		for _, o := range g.GetOutput() {
			outputs = append(outputs, o.GetName())
		}
		if !slices.Equal(outputs, []string{"embedding", "feature_map"}) {
			t.Errorf("%s: outputs %v, want embedding and feature_map", tc.name, outputs)
		}
		md := onnx.Metadata(m)
		if md["weights"] != "student" || md["normalize_mean"] == "" || md["normalize_std"] == "" || md["arch"] != "resnet18" {
			t.Errorf("%s: metadata %v", tc.name, md)
		}
	}
	checkWithOpenCV(t, ck, filepath.Join(root, "fixed.onnx"), 2, 32)

	st := filepath.Join(root, "teacher.safetensors")
	if err := runExport(ctx, []string{"--checkpoint", ck, "--format", "safetensors", "--weights", "teacher", "--out", st}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(st)
	if err != nil {
		t.Fatal(err)
	}
	want := backbone.StateDict(teacher)
	if f.Metadata["weights"] != "teacher" || !slices.Equal(f.Names, want.Names) {
		t.Fatalf("teacher export: metadata %v, %d tensors (want %d)", f.Metadata, len(f.Names), len(want.Names))
	}
	for _, n := range want.Names {
		if !slices.Equal(f.Tensors[n].F32, want.Tensors[n].F32) || !slices.Equal(f.Tensors[n].I64, want.Tensors[n].I64) {
			t.Errorf("teacher export: %s is not the teacher's", n)
		}
	}
}

// checkWithOpenCV runs the ONNX model with OpenCV's DNN module on n real
// photos and compares its "embedding" with sslight's features of the same
// views; it skips without python3-opencv.
func checkWithOpenCV(t *testing.T, ck, model string, n, s int) {
	t.Helper()
	if err := exec.Command(python, "-c", "import numpy, cv2").Run(); err != nil {
		t.Logf("no numpy and cv2 for %s (%v): the OpenCV check of the export is skipped", python, err)
		return
	}
	views := photoViews(t, n, s)
	dir := t.TempDir()
	x := filepath.Join(dir, "x.npy")
	f, err := os.Create(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFloat32(f, []int{n, 3, s, s}, slices.Concat(views...)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	y := filepath.Join(dir, "y.npy")
	script := `import sys, numpy as np, cv2
net = cv2.dnn.readNetFromONNX(sys.argv[1])
net.setInput(np.load(sys.argv[2]))
np.save(sys.argv[3], net.forward("embedding").astype(np.float32))`
	if out, err := exec.Command(python, "-c", script, model, x, y).CombinedOutput(); err != nil {
		t.Fatalf("OpenCV: %v\n%s", err, out)
	}
	r, err := os.Open(y)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, got, err := npy.ReadFloat32(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := features.LoadCheckpoint(context.Background(), ck, checkpoint.Student)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Extract(views, s, s)
	if err != nil {
		t.Fatal(err)
	}
	var d, mx float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i]-want[i])))
		mx = math.Max(mx, math.Abs(float64(want[i])))
	}
	if len(got) != len(want) || mx == 0 || d/mx > 1e-4 {
		t.Errorf("OpenCV's embedding of %d photos differs from sslight's: %d vs %d values, max difference %.3g of %.3g", n, len(got), len(want), d, mx)
	}
}

// TestEmbedCommand embeds testdata/photos with a truncated and an empty
// file beside them: one row per photo, a dead letter per unreadable file,
// neighbours for each row; bad flags are refused before any work.
func TestEmbedCommand(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	ck := filepath.Join(root, "ckpt")
	writeCheckpoint(t, ck)
	src := filepath.Join(root, "photos")
	if err := os.CopyFS(src, os.DirFS(testPhotos)); err != nil {
		t.Fatal(err)
	}
	aqua, err := os.ReadFile(filepath.Join(testPhotos, "21_1_Aqua.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "corrupt.jpg"), aqua[:500], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "empty.jpg"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "emb")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--source", src, "--out", out}, "missing --checkpoint\n"},
		{[]string{"--checkpoint", ck, "--out", out}, "missing --source\n"},
		{[]string{"--model", "m.onnx", "--source", src, "--out", out}, "no ONNX runtime"},
		{[]string{"--checkpoint", ck, "--source", src, "--out", out, "--weights", "ema"}, `--weights "ema"`},
		{[]string{"--checkpoint", ck, "--source", src, "--out", out, "--nearest", "-2"}, "--nearest -2"},
		{[]string{"--checkpoint", ck, "--source", src, "--out", out, "--format", "webdataset"}, `--format "webdataset"`},
		{[]string{"--checkpoint", ck, "--source", src, "--out", out, "--weights", "teacher"}, checkpoint.TeacherBackboneFile},
	} {
		err := runEmbed(ctx, append(tc.args, "--quiet"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sslight embed %v: err %v, want %q", tc.args, err, tc.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("sslight embed %v wrote %s before refusing (%v)", tc.args, out, err)
		}
	}

	if err := runEmbed(ctx, []string{"--checkpoint", ck, "--source", src, "--out", out, "--nearest", "2", "--quiet"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(out, embed.EmbeddingsFile))
	if err != nil {
		t.Fatal(err)
	}
	shape, x, err := npy.ReadFloat32(f, nil)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shape, []int{8, 64}) {
		t.Errorf("embeddings.npy is %v, want the 8 photos × 64 (an eighth-width ResNet-18)", shape)
	}
	// The rows are the features the pipeline wrote, in key order.
	all, _, err := featurefile.ReadAll(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(all.X, x) {
		t.Error("embeddings.npy differs from the feature parts")
	}
	dead, err := deadletter.Read(ctx, filepath.Join(out, deadletter.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dead {
		names = append(names, filepath.Base(d.URI))
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"README.md", "corrupt.jpg", "empty.jpg"}) {
		t.Errorf("dead letters for %v, want README.md, corrupt.jpg and empty.jpg", names)
	}
	nb, err := os.ReadFile(filepath.Join(out, embed.NeighboursFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(nb), "\n"); n != 8 || strings.Count(string(nb), `"similarity"`) != 16 {
		t.Errorf("neighbours.jsonl: %d lines, %d neighbours; want 8 and 16", n, strings.Count(string(nb), `"similarity"`))
	}
}

// TestEvalTeacherWeights scores a checkpoint's teacher: the row says so
// (metrics.json, report.md), and its features are the teacher's.
func TestEvalTeacherWeights(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	train, val := filepath.Join(root, "train"), filepath.Join(root, "val")
	exportMini(t, "train", train, 3)
	exportMini(t, "t10k", val, 2)
	ck := filepath.Join(root, "ckpt")
	writeCheckpoint(t, ck)
	writeTeacher(t, ck)
	outs := map[checkpoint.Weights]string{}
	for _, w := range []checkpoint.Weights{checkpoint.Student, checkpoint.Teacher} {
		out := filepath.Join(root, "eval-"+string(w))
		outs[w] = out
		if err := runEvalClassify(ctx, []string{"--checkpoint", ck, "--train", train, "--val", val, "--format", "imagenet",
			"--protocols", "knn", "--weights", string(w), "--out", out}); err != nil {
			t.Fatal(err)
		}
		rep := readReport(t, out)
		if len(rep.Rows) != 1 || rep.Rows[0].Weights != string(w) {
			t.Fatalf("%s: rows %+v, want one naming its weights", w, rep.Rows)
		}
		if w == checkpoint.Teacher && !strings.HasSuffix(rep.Rows[0].Name, "(teacher)") {
			t.Errorf("the teacher's row is named %q", rep.Rows[0].Name)
		}
		md, err := os.ReadFile(filepath.Join(out, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(md), "| weights |") || !strings.Contains(string(md), "| "+string(w)+" |") {
			t.Errorf("%s: report.md does not say the weights:\n%s", w, md)
		}
	}
	rowName := map[checkpoint.Weights]string{}
	for w, out := range outs {
		rowName[w] = readReport(t, out).Rows[0].Name
	}
	s, _, err := featurefile.ReadAll(ctx, filepath.Join(evaluate.FeaturesDir(outs[checkpoint.Student], rowName[checkpoint.Student]), "val"))
	if err != nil {
		t.Fatal(err)
	}
	tf, tix, err := featurefile.ReadAll(ctx, filepath.Join(evaluate.FeaturesDir(outs[checkpoint.Teacher], rowName[checkpoint.Teacher]), "val"))
	if err != nil {
		t.Fatal(err)
	}
	if tix.Model.Weights != "teacher" || slices.Equal(s.X, tf.X) {
		t.Errorf("teacher features: index weights %q, equal to the student's: %v", tix.Model.Weights, slices.Equal(s.X, tf.X))
	}
	if err := runEvalClassify(ctx, []string{"--checkpoint", ck, "--train", train, "--val", val, "--weights", "ema", "--out", filepath.Join(root, "x")}); err == nil ||
		!strings.Contains(err.Error(), `--weights: weights "ema"`) {
		t.Errorf("--weights ema: %v", err)
	}
}

// TestEvalRefusesUnlabelledAndOneClass: a folder-layout (unlabelled)
// source points to sslight embed, and the kNN protocol refuses a training
// set of one class (the k=2 100.00/0.00 trap) and validation classes no
// training image has, as errors before or after extraction.
func TestEvalRefusesUnlabelledAndOneClass(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	full := filepath.Join(root, "full")
	exportMini(t, "train", full, 2)
	classes, err := os.ReadDir(full)
	if err != nil || len(classes) < 2 {
		t.Fatalf("%d class folders (%v)", len(classes), err)
	}
	// One class only: a fake class folder around the images.
	one := filepath.Join(root, "one")
	if err := os.CopyFS(filepath.Join(one, classes[0].Name()), os.DirFS(filepath.Join(full, classes[0].Name()))); err != nil {
		t.Fatal(err)
	}
	// The last class's images are all unreadable: its folder lists, but no
	// training image of that class gives a feature.
	broken := filepath.Join(root, "broken")
	if err := os.CopyFS(broken, os.DirFS(full)); err != nil {
		t.Fatal(err)
	}
	last := filepath.Join(broken, classes[len(classes)-1].Name())
	ents, err := os.ReadDir(last)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.WriteFile(filepath.Join(last, e.Name()), []byte("not an image"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ck := filepath.Join(root, "ckpt")
	writeCheckpoint(t, ck)
	for _, tc := range []struct {
		name       string
		args       []string
		want       []string
		nothingOut bool
	}{
		{"folder layout", []string{"--train", full, "--val", full, "--format", "folder"}, []string{"has no class labels", "sslight embed"}, true},
		{"one class", []string{"--train", one, "--val", one, "--format", "imagenet"}, []string{"every --train " + one + " image is of class", "100%", "sslight embed"}, true},
		{"a class without training features", []string{"--train", broken, "--val", full, "--format", "imagenet"},
			[]string{"2 --val images are of classes no --train image has", classes[len(classes)-1].Name()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "eval")
			err := runEvalClassify(ctx, append([]string{"--checkpoint", ck, "--protocols", "knn", "--out", out}, tc.args...))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, err := os.Stat(out); tc.nothingOut && !os.IsNotExist(err) {
				t.Errorf("--out was written before the refusal (%v)", err)
			}
		})
	}
}
