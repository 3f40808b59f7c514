package export

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sslight-go/sslight/sinks/onnx"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// TestRunRejectsBadOptions: every bad option is an error naming it, found
// before any weights are read (the checkpoints here have an unreadable
// backbone.safetensors and no checkpoint.safetensors, so an error about
// those would mean the weights were read first).
func TestRunRejectsBadOptions(t *testing.T) {
	root := t.TempDir()
	swav := writeCkpt(t, filepath.Join(root, "swav"), testConfig(t, "swav_cnn_sslight", sets(swavHead,
		map[string]string{"MODEL.BACKBONE_ARCH": "resnet18", "MODEL.WIDTH": "0.25"})), 1, false)
	vit := writeCkpt(t, filepath.Join(root, "vit"), testConfig(t, "dino_vit_sslight", dinoHead), 2, false)
	for _, c := range []*ckpt{swav, vit} {
		if err := os.WriteFile(filepath.Join(c.dir, checkpoint.BackboneFile), []byte("not safetensors"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(root, "out.onnx")
	for _, tc := range []struct {
		name string
		o    Options
		want []string
	}{
		{"no checkpoint", Options{Out: out}, []string{"no checkpoint", "--checkpoint"}},
		{"no out", Options{Checkpoint: swav.dir}, []string{"no output file", "--out"}},
		{"format", Options{Checkpoint: swav.dir, Out: out, Format: "tflite"}, []string{`format "tflite"`, "onnx", "safetensors"}},
		{"weights", Options{Checkpoint: swav.dir, Out: out, Weights: "ema"}, []string{`weights "ema"`, "student", "teacher"}},
		{"batch", Options{Checkpoint: swav.dir, Out: out, Batch: -1}, []string{"batch -1"}},
		{"size", Options{Checkpoint: swav.dir, Out: out, Size: -3}, []string{"size -3"}},
		{"teacher of SwAV", Options{Checkpoint: swav.dir, Out: out, Weights: WeightsTeacher}, []string{"SWAV", "no teacher"}},
		{"ViT size", Options{Checkpoint: vit.dir, Out: out, Size: 40}, []string{"size 40", "patch size 16", "32 or 48"}},
	} {
		_, err := Run(context.Background(), tc.o)
		if !errors.Is(err, ErrOptions) {
			t.Errorf("%s: error %v, want ErrOptions", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a rejected export wrote %s (%v)", out, err)
	}
	// Unusable checkpoints: no meta.json anywhere, weights that do not fit.
	if _, err := Run(context.Background(), Options{Checkpoint: filepath.Join(root, "nothing"), Out: out}); !errors.Is(err, checkpoint.ErrUnusable) {
		t.Errorf("missing checkpoint: %v, want ErrUnusable", err)
	}
	if _, err := Run(context.Background(), Options{Checkpoint: swav.dir, Out: out}); !errors.Is(err, checkpoint.ErrUnusable) {
		t.Errorf("corrupt backbone.safetensors: %v, want ErrUnusable", err)
	}
	if _, err := Run(context.Background(), Options{Checkpoint: vit.dir, Out: out, Size: 32, WithHead: true}); !errors.Is(err, checkpoint.ErrUnusable) ||
		!strings.Contains(err.Error(), checkpoint.StateFile) {
		t.Errorf("head without checkpoint.safetensors: %v, want ErrUnusable naming %s", err, checkpoint.StateFile)
	}
}

// TestRunRejectsMismatchedHead: the head's tensors load strictly, so a
// checkpoint whose head does not match its config fails, naming tensors.
func TestRunRejectsMismatchedHead(t *testing.T) {
	root := t.TempDir()
	cfg := testConfig(t, "dino_fmnist_sslight", dinoHead)
	c := writeCkpt(t, root, cfg, 3, true)
	path := filepath.Join(c.dir, checkpoint.StateFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := safetensors.NewFile()
	for _, n := range f.Names {
		if n == "student.head.mlp.0.bias" {
			continue // missing
		}
		if err := bad.Add(n, f.Tensors[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := bad.Add("student.head.extra.weight", safetensors.Tensor{DType: safetensors.F32, Shape: []int{1}, F32: []float32{1}}); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(path, bad); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), Options{Checkpoint: root, Out: filepath.Join(root, "x.onnx"), WithHead: true})
	if !errors.Is(err, checkpoint.ErrUnusable) || !strings.Contains(err.Error(), "mlp.0.bias") || !strings.Contains(err.Error(), "extra.weight") {
		t.Errorf("error %v: want ErrUnusable naming the missing and the unexpected tensor", err)
	}
	// The teacher's tensors are untouched and the student's backbone too:
	// without the head the export works.
	if _, err := Run(context.Background(), Options{Checkpoint: root, Out: filepath.Join(root, "t.onnx"), Weights: WeightsTeacher}); err != nil {
		t.Errorf("teacher without head: %v", err)
	}
}

// TestFoldBNOnViTIsANoOp: a ViT has no BatchNorm; --fold-bn is accepted,
// said to change nothing, and the two files hold the same graph.
func TestFoldBNOnViTIsANoOp(t *testing.T) {
	root := t.TempDir()
	c := writeCkpt(t, root, testConfig(t, "dino_vit_sslight", dinoHead), 4, false)
	var files [][]byte
	for _, fold := range []bool{false, true} {
		out := filepath.Join(root, map[bool]string{false: "a.onnx", true: "b.onnx"}[fold])
		sum, err := Run(context.Background(), Options{Checkpoint: c.dir, Out: out, Size: 32, FoldBN: fold})
		if err != nil {
			t.Fatal(err)
		}
		if fold != (len(sum.Notes) == 1 && strings.Contains(sum.Notes[0], "no BatchNorm")) || sum.BatchNorms != 0 {
			t.Errorf("fold %v: notes %q, %d BatchNorms", fold, sum.Notes, sum.BatchNorms)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	var graphs []*onnx.GraphProto
	for _, b := range files {
		m, err := onnx.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		graphs = append(graphs, m.GetGraph())
	}
	if !proto.Equal(graphs[0], graphs[1]) {
		t.Error("the folded and the unfolded ViT graphs differ")
	}
}

// TestSafetensorsExport writes the student and the teacher with and without
// the head, and expects the torchvision-named tensors of the networks the
// checkpoint was made from, bit for bit, with the architecture in the
// metadata.
func TestSafetensorsExport(t *testing.T) {
	root := t.TempDir()
	cfg := testConfig(t, "moco_cnn_sslight", sets(mocoHead, map[string]string{"MODEL.BACKBONE_ARCH": "resnet18",
		"MODEL.WIDTH": "0.25", "MODEL.SMALL_IMAGE_STEM": "true"}))
	c := writeCkpt(t, root, cfg, 5, true)
	for _, tc := range []struct {
		weights string
		head    bool
		net     backbone.Backbone
		prefix  string
	}{
		{WeightsStudent, false, c.student, "student.head."},
		{WeightsTeacher, true, c.teacher, "key.head."},
	} {
		out := filepath.Join(root, tc.weights+".safetensors")
		sum, err := Run(context.Background(), Options{Checkpoint: root, Format: FormatSafetensors, Weights: tc.weights,
			WithHead: tc.head, FoldBN: true, Size: 32, Out: out})
		if err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want := backbone.StateDict(tc.net)
		var names []string
		for _, n := range f.Names {
			if !strings.HasPrefix(n, "head.") {
				names = append(names, n)
			}
		}
		if !reflect.DeepEqual(names, want.Names) {
			t.Fatalf("%s: backbone tensors %v, want torchvision's %v", tc.weights, names, want.Names)
		}
		for _, n := range want.Names {
			if !reflect.DeepEqual(f.Tensors[n], want.Tensors[n]) {
				t.Errorf("%s: %s differs from the network's", tc.weights, n)
			}
		}
		heads := len(f.Names) - len(names)
		if tc.head {
			entries := c.heads[tc.prefix].Entries()
			if heads != len(entries) {
				t.Errorf("%s: %d head tensors, want %d", tc.weights, heads, len(entries))
			}
			for _, e := range entries {
				got, ok := f.Tensors["head."+strings.TrimPrefix(e.Name, tc.prefix)]
				if !ok || (e.Count == nil && !reflect.DeepEqual(got.F32, e.F32)) {
					t.Errorf("%s: head tensor %s missing or different", tc.weights, e.Name)
				}
			}
		} else if heads != 0 {
			t.Errorf("%s: %d head tensors without --with-head", tc.weights, heads)
		}
		for k, v := range map[string]string{"arch": "resnet18", "width": "0.25", "small_image_stem": "true", "weights": tc.weights,
			"method": "MOCO", "embed_dim": "128", "format": "pt", "checkpoint_step": "12", "normalize_std": "[0.229, 0.224, 0.225]"} {
			if f.Metadata[k] != v {
				t.Errorf("%s: metadata %s = %q, want %q", tc.weights, k, f.Metadata[k], v)
			}
		}
		if len(sum.Notes) != 1 || !strings.Contains(sum.Notes[0], "--size applies to ONNX only") {
			t.Errorf("%s: notes %q: want the note that --size does nothing here", tc.weights, sum.Notes)
		}
	}
}
