package backbone

import (
	"math"
	"testing"

	"gorgonia.org/gorgonia"
)

// TestParamCounts checks the learnable parameter counts (classifier
// excluded) against the paper's table (Tan et al., ICLR 2023, Table 1), to
// the 0.1M it prints, and against the exact torchvision / timm counts.
func TestParamCounts(t *testing.T) {
	tests := []struct {
		arch     string
		patch    int
		millions float64
		exact    int
	}{
		{"mobilenet_v2", 0, 2.2, 2223872},
		{"resnet18", 0, 11.2, 11176512},
		{"resnet34", 0, 21.3, 21284672},
		{"resnet50", 0, 23.5, 23508032},
		{"vit_tiny", 16, 5.5, 5524416},
		{"vit_small", 16, 21.7, 21665664},
		// Patch 32 (the paper gives no count): a 3·32·32 patch projection
		// and a 7x7 grid.
		{"vit_tiny", 32, 0, 5524416 + 3*192*(32*32-16*16) + 192*(7*7-14*14)},
	}
	for _, tc := range tests {
		b, err := New(tc.arch, Options{PatchSize: tc.patch})
		if err != nil {
			t.Fatal(err)
		}
		n := NumParams(b)
		if tc.millions > 0 && math.Abs(float64(n)/1e6-tc.millions) >= 0.05 {
			t.Errorf("%s: %d parameters, paper says %.1fM", tc.arch, n, tc.millions)
		}
		if n != tc.exact {
			t.Errorf("%s: %d parameters, want %d", tc.arch, n, tc.exact)
		}
	}
}

func TestNewRejectsUnknown(t *testing.T) {
	for _, tc := range []struct {
		arch  string
		patch int
	}{{"resnet101", 0}, {"vit_tiny", 8}, {"", 0}} {
		if _, err := New(tc.arch, Options{PatchSize: tc.patch}); err == nil {
			t.Errorf("New(%q, patch %d) succeeded", tc.arch, tc.patch)
		}
	}
}

// TestWidthAndStem checks MODEL.WIDTH and MODEL.SMALL_IMAGE_STEM against
// counts taken from torchvision 0.14: mobilenet_v2(width_mult=w), and a
// torchvision ResNet-18 rebuilt with 16/32/64/128 channels and a 3x3
// stride-1 conv1 (the dino_fmnist presets' backbone).
func TestWidthAndStem(t *testing.T) {
	tests := []struct {
		arch  string
		opts  Options
		exact int
		dim   int
	}{
		{"mobilenet_v2", Options{Width: 0.5}, 687680, 1280},
		{"mobilenet_v2", Options{Width: 0.35, SmallImageStem: true}, 396128, 1280},
		{"mobilenet_v2", Options{Width: 1.4}, 4315776, 1792},
		{"resnet18", Options{Width: 0.25, SmallImageStem: true}, 700176, 128},
	}
	for _, tc := range tests {
		b, err := New(tc.arch, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if n := NumParams(b); n != tc.exact {
			t.Errorf("%s %+v: %d parameters, want %d", tc.arch, tc.opts, n, tc.exact)
		}
		if b.EmbedDim() != tc.dim {
			t.Errorf("%s %+v: EmbedDim %d, want %d", tc.arch, tc.opts, b.EmbedDim(), tc.dim)
		}
		// A 28 px image keeps a 4x4 map with the small stem (28→28→14→7→4)
		// and would shrink to 1x1 with the stride-4 one.
		g := gorgonia.NewGraph()
		x := inputNode(g, "x", randInput(1, 2, 3, 28, 28))
		out, err := b.Forward(x, true)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if tc.opts.SmallImageStem {
			want = 4
		}
		if tc.arch == "resnet18" {
			if s := out.FeatureMap.Shape(); s[2] != want || s[3] != want {
				t.Errorf("%s %+v: feature map %v at 28 px, want %dx%d", tc.arch, tc.opts, s, want, want)
			}
		}
	}
	if _, err := New("vit_tiny", Options{Width: 0.5}); err == nil {
		t.Error("vit_tiny accepted a width multiplier")
	}
}
