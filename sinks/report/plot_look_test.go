package report

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestPlotsForLooking writes the demo's two plots with real-looking values
// to $SSLIGHT_PLOT_DIR, to be looked at (skipped when unset).
func TestPlotsForLooking(t *testing.T) {
	dir := os.Getenv("SSLIGHT_PLOT_DIR")
	if dir == "" {
		t.Skip("set SSLIGHT_PLOT_DIR to write the plots to look at")
	}
	ctx := context.Background()
	labels := []string{"raw pixels", "random init", "DINO", "DINO + SSLight"}
	if err := BarPlot(ctx, filepath.Join(dir, "accuracy.png"), "top-1 accuracy", "%", labels, []Series{
		{Name: "kNN top-1", Y: []float64{81.0, 73.4, 63.3, 62.5}}, {Name: "linear top-1", Y: []float64{80.2, 74.1, 63.9, 63.9}}}); err != nil {
		t.Fatal(err)
	}
	x := []float64{0, 10, 20, 30, 40, 50, 60, 70, 77}
	if err := LinePlot(ctx, filepath.Join(dir, "loss.png"), "pre-training loss", "step", "loss", []Series{
		{Name: "DINO", X: x, Y: []float64{6.89, 7.06, 7.05, 7.02, 6.98, 6.96, 6.94, 6.95, 6.93}},
		{Name: "DINO + SSLight", X: x, Y: []float64{6.89, 7.04, 7.03, 7.0, 6.97, 6.95, 6.93, 6.94, 6.92}}}); err != nil {
		t.Fatal(err)
	}
}

// TestDistinctTicks: a loss curve between 6.95 and 7.05 gets tick labels
// that differ ("7" twice was the default's).
func TestDistinctTicks(t *testing.T) {
	for _, r := range [][2]float64{{6.95, 7.05}, {6.89, 7.06}, {0, 100}, {0.001, 0.0012}} {
		seen := map[string]bool{}
		n := 0
		for _, tk := range (distinctTicks{}).Ticks(r[0], r[1]) {
			if tk.Label == "" {
				continue
			}
			n++
			if seen[tk.Label] {
				t.Errorf("range %v: label %q twice", r, tk.Label)
			}
			seen[tk.Label] = true
		}
		if n < 2 {
			t.Errorf("range %v: %d labelled ticks", r, n)
		}
	}
}
