package backbone

import (
	"math"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
)

// TestFLOPsPaperTable checks the counts at 224 against the paper's table
// (Tan et al., ICLR 2023, Table 1: GFLOPs, classifier excluded) to the
// precision it prints.
func TestFLOPsPaperTable(t *testing.T) {
	tests := []struct {
		arch     string
		patch    int
		gflops   float64
		decimals int
	}{
		{"mobilenet_v2", 0, 0.31, 2},
		{"resnet18", 0, 1.8, 1},
		{"resnet34", 0, 3.7, 1},
		{"resnet50", 0, 4.1, 1},
		{"vit_tiny", 32, 0.31, 2},
		{"vit_tiny", 16, 1.26, 2},
		{"vit_small", 16, 4.6, 1},
	}
	for _, tc := range tests {
		b, err := New(tc.arch, Options{PatchSize: tc.patch})
		if err != nil {
			t.Fatal(err)
		}
		n, err := FLOPs(b, 224, 224)
		if err != nil {
			t.Fatal(err)
		}
		g := float64(n) / 1e9
		if half := 0.5 * math.Pow(10, -float64(tc.decimals)); math.Abs(g-tc.gflops) >= half {
			t.Errorf("%s/%d: %.4f GFLOPs, paper prints %.*f", tc.arch, tc.patch, g, tc.decimals, tc.gflops)
		}
	}
}

// TestFLOPsExact compares every kind of operation with counts made in
// PyTorch 1.13 by re-doing fvcore's default handles over a TorchScript
// trace (torch.jit._get_trace_graph) of the model in eval mode:
// aten::_convolution, aten::linear, aten::matmul as MACs,
// aten::batch_norm 2 and aten::layer_norm 5 per input element,
// aten::adaptive_avg_pool2d 1 per input element. CNNs are torchvision 0.14's
// models with the classifier replaced by Identity; the small-stem ResNet is
// torchvision's ResNet with 16/32/64/128 channels, a 3x3 stride-1 conv1 and
// no max-pool, the small-stem MobileNetV2 torchvision's with features.0
// at stride 1; ViTs are DINO's VisionTransformer (attention as q @ kᵀ and
// attn @ v). The resnet18 96 px figure was also counted with forward hooks
// on the Conv2d / BatchNorm2d / AdaptiveAvgPool2d modules.
func TestFLOPsExact(t *testing.T) {
	tests := []struct {
		arch string
		opts Options
		h, w int
		want FLOPCount
	}{
		{"resnet18", Options{}, 96, 96, FLOPCount{Conv: 333103104, Norm: 912384, Pool: 4608}},
		{"resnet18", Options{}, 160, 96, FLOPCount{Conv: 555171840, Norm: 1520640, Pool: 7680}},
		{"resnet18", Options{Width: 0.25, SmallImageStem: true}, 32, 32, FLOPCount{Conv: 35045376, Norm: 307200, Pool: 2048}},
		{"resnet34", Options{}, 96, 96, FLOPCount{Conv: 672841728, Norm: 1373184, Pool: 4608}},
		{"resnet50", Options{}, 224, 224, FLOPCount{Conv: 4087136256, Norm: 22227968, Pool: 100352}},
		{"mobilenet_v2", Options{}, 224, 224, FLOPCount{Conv: 299494272, Norm: 13356224, Pool: 62720}},
		{"mobilenet_v2", Options{}, 96, 96, FLOPCount{Conv: 55009152, Norm: 2453184, Pool: 11520}},
		{"mobilenet_v2", Options{Width: 0.35, SmallImageStem: true}, 32, 32, FLOPCount{Conv: 4735168, Norm: 467392, Pool: 5120}},
		{"mobilenet_v2", Options{Width: 1.4}, 224, 224, FLOPCount{Conv: 580403824, Norm: 19146848, Pool: 87808}},
		{"vit_tiny", Options{PatchSize: 16}, 224, 224, FLOPCount{Conv: 28901376, Linear: 1045757952, Matmul: 178831872, Norm: 4728000}},
		{"vit_tiny", Options{PatchSize: 32}, 224, 224, FLOPCount{Conv: 28901376, Linear: 265420800, Matmul: 11520000, Norm: 1200000}},
		{"vit_small", Options{PatchSize: 16}, 224, 224, FLOPCount{Conv: 57802752, Linear: 4183031808, Matmul: 357663744, Norm: 9456000}},
		{"vit_tiny", Options{PatchSize: 16}, 96, 96, FLOPCount{Conv: 5308416, Linear: 196411392, Matmul: 6308352, Norm: 888000}},
		{"vit_small", Options{PatchSize: 32}, 160, 96, FLOPCount{Conv: 17694720, Linear: 339738624, Matmul: 2359296, Norm: 768000}},
	}
	for _, tc := range tests {
		b, err := New(tc.arch, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := CountFLOPs(b, tc.h, tc.w)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s %+v at %dx%d: %+v, want %+v", tc.arch, tc.opts, tc.h, tc.w, got, tc.want)
		}
		if n, _ := FLOPs(b, tc.h, tc.w); n != tc.want.Total() {
			t.Errorf("%s %+v at %dx%d: FLOPs %d, want %d", tc.arch, tc.opts, tc.h, tc.w, n, tc.want.Total())
		}
	}
}

// TestFLOPsFollowsForward checks the counter's walk against the graph
// Forward builds: the pooled map (CNNs) or the token count (ViTs) the
// counter implies must be the shape gorgonia infers, on odd sizes where
// the rounding of strided layers matters.
func TestFLOPsFollowsForward(t *testing.T) {
	tests := []struct {
		arch string
		opts Options
		h, w int
	}{
		{"resnet18", Options{}, 37, 53},
		{"resnet50", Options{Width: 0.25}, 29, 17},
		{"mobilenet_v2", Options{}, 45, 31},
		{"mobilenet_v2", Options{Width: 0.5, SmallImageStem: true}, 15, 22},
		{"vit_tiny", Options{PatchSize: 32}, 70, 100},
	}
	for _, tc := range tests {
		b, err := New(tc.arch, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		c, err := CountFLOPs(b, tc.h, tc.w)
		if err != nil {
			t.Fatal(err)
		}
		g := gorgonia.NewGraph()
		out, err := b.Forward(inputNode(g, "x", randInput(1, 1, 3, tc.h, tc.w)), false)
		if err != nil {
			t.Fatal(err)
		}
		if out.FeatureMap != nil {
			s := out.FeatureMap.Shape()
			if want := int64(s[1] * s[2] * s[3]); c.Pool != want {
				t.Errorf("%s %+v at %dx%d: pooled %d elements, forward pools %v", tc.arch, tc.opts, tc.h, tc.w, c.Pool, s)
			}
			continue
		}
		s := out.Tokens.Shape() // [1, T, d]: the final norm costs 5·T·d
		if want := int64(5 * s[1] * s[2]); c.Norm%want != 0 || c.Norm/want != 2*int64(len(b.(*ViT).blocks))+1 {
			t.Errorf("%s at %dx%d: norm count %d does not match %v tokens", tc.arch, tc.h, tc.w, c.Norm, s)
		}
	}
}

func TestFLOPsErrors(t *testing.T) {
	vit32, err := New("vit_tiny", Options{PatchSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	resnet, err := New("resnet18", Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		b    Backbone
		h, w int
		want string
	}{
		{resnet, 0, 224, "input size 0x224"},
		{resnet, 224, -1, "input size 224x-1"},
		{vit32, 31, 224, "patch_embed.proj: a 31x224 map is too small for its 32x32 kernel"},
		{foreign{resnet}, 224, 224, "not a backbone of this package"},
	}
	for _, tc := range tests {
		_, err := FLOPs(tc.b, tc.h, tc.w)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FLOPs(%s, %d, %d): err %v, want %q", tc.b.Arch(), tc.h, tc.w, err, tc.want)
		}
	}
	// ResNet's padded stem and pools keep any positive size alive.
	if n, err := FLOPs(resnet, 1, 1); err != nil || n <= 0 {
		t.Errorf("resnet18 at 1x1: %d, %v", n, err)
	}
}

// foreign is a Backbone the counter does not know.
type foreign struct{ Backbone }
