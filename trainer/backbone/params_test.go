package backbone

import (
	"math"
	"testing"
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
