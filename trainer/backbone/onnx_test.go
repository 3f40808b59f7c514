package backbone

import (
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/onnx"
)

// TestONNXGraphShape checks each architecture's ONNX graph against
// counts taken from torchvision and DINO's modules (convolutions of
// torchvision's resnet18/34/50 and mobilenet_v2, one Softmax and one GELU
// per ViT block) and the last feature map's shape. The numerical check
// against OpenCV is trainer/export's TestONNXMatchesOpenCV.
func TestONNXGraphShape(t *testing.T) {
	for _, tc := range []struct {
		arch         string
		o            Options
		size         int
		fold         bool
		ops          map[string]int
		featureShape [3]int
	}{
		{"resnet18", Options{}, 64, true, map[string]int{"Conv": 20, "BatchNormalization": 0, "MaxPool": 1, "Add": 8}, [3]int{512, 2, 2}},
		{"resnet18", Options{Width: 0.25, SmallImageStem: true}, 32, false,
			map[string]int{"Conv": 20, "BatchNormalization": 20, "MaxPool": 0}, [3]int{128, 4, 4}},
		{"resnet34", Options{}, 32, true, map[string]int{"Conv": 36, "Add": 16}, [3]int{512, 1, 1}},
		{"resnet50", Options{}, 32, false, map[string]int{"Conv": 53, "BatchNormalization": 53, "Add": 16}, [3]int{2048, 1, 1}},
		{"mobilenet_v2", Options{}, 224, true, map[string]int{"Conv": 52, "Add": 10, "Relu": 2 * 35}, [3]int{1280, 7, 7}},
		{"mobilenet_v2", Options{Width: 0.5, SmallImageStem: true}, 32, false, map[string]int{"Conv": 52, "BatchNormalization": 52}, [3]int{1280, 2, 2}},
		{"vit_tiny", Options{}, 48, true, map[string]int{"Conv": 1, "Softmax": 12, "Erf": 12, "Pad": 1, "Slice": 1, "BatchNormalization": 0}, [3]int{}},
		{"vit_small", Options{PatchSize: 32}, 64, false, map[string]int{"Conv": 1, "Softmax": 12, "Erf": 12}, [3]int{}},
	} {
		b, err := New(tc.arch, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		g := onnx.NewGraph(tc.arch)
		x, _ := g.Input("x", onnx.Symbolic("N"), onnx.Fixed(3), onnx.Fixed(tc.size), onnx.Fixed(tc.size))
		out, err := ONNX(b, g, x, ONNXOptions{Height: tc.size, Width: tc.size, FoldBN: tc.fold})
		if err != nil {
			t.Fatalf("%s: %v", tc.arch, err)
		}
		ops := g.OpCounts()
		for op, n := range tc.ops {
			if ops[op] != n {
				t.Errorf("%s %+v: %d %s nodes, want %d (all: %v)", tc.arch, tc.o, ops[op], op, n, ops)
			}
		}
		for _, bad := range []string{"Identity", "Clip", "LayerNormalization", "Gather", "Expand"} {
			if ops[bad] > 0 {
				t.Errorf("%s: %d %s nodes", tc.arch, ops[bad], bad)
			}
		}
		if out.EmbedDim != b.EmbedDim() || out.FeatureShape != tc.featureShape || (out.FeatureMap == "") != strings.HasPrefix(tc.arch, "vit") {
			t.Errorf("%s: output %+v, want embed dim %d, feature map %v", tc.arch, out, b.EmbedDim(), tc.featureShape)
		}
	}
}

func TestONNXRejects(t *testing.T) {
	b, _ := New("resnet18", Options{})
	g := onnx.NewGraph("g")
	x, _ := g.Input("x", onnx.Fixed(1), onnx.Fixed(3), onnx.Fixed(8), onnx.Fixed(8))
	if _, err := ONNX(b, g, x, ONNXOptions{}); err == nil || !strings.Contains(err.Error(), "input size 0x0") {
		t.Errorf("size 0: %v", err)
	}
	v, _ := New("vit_tiny", Options{})
	if _, err := ONNX(v, g, x, ONNXOptions{Height: 8, Width: 8}); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("ViT on 8x8: %v", err)
	}
	if _, err := ONNX(foreign{b}, g, x, ONNXOptions{Height: 8, Width: 8}); err == nil || !strings.Contains(err.Error(), "not a backbone of this package") {
		t.Errorf("foreign backbone: %v", err)
	}
	if g.Nodes() != 0 {
		t.Errorf("rejected exports wrote %d nodes", g.Nodes())
	}
}
