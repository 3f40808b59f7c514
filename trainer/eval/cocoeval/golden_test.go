package cocoeval

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sslight-go/sslight/internal/goldencase"
)

// The golden harness runs every case folder under the golden directory
// (gt.json, dt.json, expected.json; see /work/shared/golden/README.md,
// section coco/) for each IoU type it lists and compares stats, the listed
// precision samples and the whole recall array with pycocotools' values.
// The directory defaults to testdata/golden/coco at the repository root;
// SSLIGHT_GOLDEN_DIR=<dir> points it at <dir>/coco instead (for held-back
// cases). A case of an unknown kind, with unknown fields, an unknown IoU
// type or parameters other than pycocotools' defaults fails, so a new case
// can never pass silently. Folder, array encoding and tolerance rule are
// internal/goldencase's.

type goldenCase struct {
	Kind        string `json:"kind"`
	Description string `json:"description"`
	Config      struct {
		IoUTypes   []string              `json:"iouTypes"`
		UseCats    int                   `json:"useCats"`
		IoUThrs    []float64             `json:"iouThrs"`
		RecThrs    string                `json:"recThrs"`
		MaxDets    []int                 `json:"maxDets"`
		AreaRng    map[string][2]float64 `json:"areaRng"`
		CatIDs     []int64               `json:"catIds"`
		StatsOrder []string              `json:"stats_order"`
		Counts     map[string]int        `json:"counts"`
	} `json:"config"`
	Inputs struct {
		GT string `json:"gt"`
		DT string `json:"dt"`
	} `json:"inputs"`
	Expected  map[string]goldenExpected `json:"expected"`
	Tolerance goldencase.Tolerance      `json:"tolerance"`
}

type goldenExpected struct {
	Stats            []float64 `json:"stats"`
	PrecisionShape   []int     `json:"precision_shape"`
	PrecisionSamples []struct {
		Index [5]int  `json:"index"`
		Value float64 `json:"value"`
	} `json:"precision_samples"`
	Recall goldencase.Array `json:"recall"`
}

func TestGoldenCOCO(t *testing.T) {
	root := goldencase.Dir("coco")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("golden coco: %v", err)
	}
	cases := 0
	for _, ent := range entries {
		if !ent.IsDir() {
			continue
		}
		dir := filepath.Join(root, ent.Name())
		t.Run(ent.Name(), func(t *testing.T) { runGoldenCase(t, dir) })
		cases++
	}
	if cases == 0 {
		t.Fatalf("golden coco: no case folders in %s", root)
	}
	t.Logf("golden coco: %d cases checked", cases)
}

func runGoldenCase(t *testing.T, dir string) {
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCase
	goldencase.DecodeStrict(t, "expected.json", raw, &c)
	if c.Kind != "coco_eval" {
		t.Fatalf("unknown case kind %q", c.Kind)
	}
	// One pair covers every value: stats, precision and recall are not
	// outputs a per_output entry could name.
	if len(c.Tolerance.PerOutput) > 0 {
		t.Fatalf("tolerance.per_output %v: this harness has no named outputs", c.Tolerance.PerOutput)
	}
	checkDefaultConfig(t, &c)
	if len(c.Config.IoUTypes) == 0 {
		t.Fatal("config.iouTypes is empty")
	}
	for name := range c.Expected {
		if !slices.Contains(c.Config.IoUTypes, name) {
			t.Fatalf("expected holds %q, which config.iouTypes does not list", name)
		}
	}
	open := func(name string) *os.File {
		t.Helper()
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	gt, err := LoadGroundTruth(open(c.Inputs.GT), c.Inputs.GT)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(gt.Images()), c.Config.Counts["images"]; got != want {
		t.Errorf("images: got %d, want %d", got, want)
	}
	if got, want := gt.NumAnnotations(), c.Config.Counts["annotations"]; got != want {
		t.Errorf("annotations: got %d, want %d", got, want)
	}
	var catIDs []int64
	for _, cat := range gt.Categories() {
		catIDs = append(catIDs, cat.ID)
	}
	if !slices.Equal(catIDs, c.Config.CatIDs) {
		t.Fatalf("category ids %v, want %v", catIDs, c.Config.CatIDs)
	}
	for _, iou := range c.Config.IoUTypes {
		t.Run(iou, func(t *testing.T) {
			typ, err := ParseIoUType(iou)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := c.Expected[iou]
			if !ok {
				t.Fatalf("no expected values for %s", iou)
			}
			dt, err := ReadResults(open(c.Inputs.DT), c.Inputs.DT, gt, typ)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := dt.NumResults(), c.Config.Counts["detections"]; got != want {
				t.Errorf("detections: got %d, want %d", got, want)
			}
			e, err := Evaluate(context.Background(), gt, dt, DefaultParams(typ))
			if err != nil {
				t.Fatal(err)
			}
			near := c.Tolerance.Within
			if len(want.Stats) != 12 {
				t.Fatalf("expected %d stats, want 12", len(want.Stats))
			}
			for i, w := range want.Stats {
				if !near(e.Stats[i], w) {
					t.Errorf("stats[%d] %s = %.17g, want %.17g", i, StatNames[i], e.Stats[i], w)
				}
			}
			T, R, K, A, M := 10, 101, len(catIDs), 4, 3
			if !slices.Equal(want.PrecisionShape, []int{T, R, K, A, M}) {
				t.Fatalf("precision shape %v, want %v", want.PrecisionShape, []int{T, R, K, A, M})
			}
			if len(want.PrecisionSamples) == 0 {
				t.Fatal("no precision samples")
			}
			for _, s := range want.PrecisionSamples {
				i := s.Index
				if got := e.PrecisionAt(i[0], i[1], i[2], i[3], i[4]); !near(got, s.Value) {
					t.Errorf("precision%v = %.17g, want %.17g", i, got, s.Value)
				}
			}
			if !slices.Equal(want.Recall.Shape, []int{T, K, A, M}) || want.Recall.Dtype != "float64" || len(want.Recall.Data) != T*K*A*M {
				t.Fatalf("recall is %v %s with %d values, want [%d %d %d %d] float64", want.Recall.Shape, want.Recall.Dtype, len(want.Recall.Data), T, K, A, M)
			}
			bad := 0
			for i, w := range want.Recall.Data {
				if !near(e.Recall[i], w) {
					if bad++; bad <= 10 {
						t.Errorf("recall%v = %.17g, want %.17g", unravel(i, T, K, A, M), e.Recall[i], w)
					}
				}
			}
			if bad > 10 {
				t.Errorf("... %d recall values differ in all", bad)
			}
		})
	}
}

// checkDefaultConfig fails a case whose parameters are not pycocotools'
// defaults, which is all this harness evaluates with.
func checkDefaultConfig(t *testing.T, c *goldenCase) {
	t.Helper()
	p := DefaultParams(IoUBBox)
	cfg := c.Config
	if cfg.UseCats != 1 {
		t.Fatalf("useCats %d: only 1 is supported", cfg.UseCats)
	}
	if len(cfg.IoUThrs) != len(p.IoUThresholds) {
		t.Fatalf("iouThrs %v, want the 10 defaults", cfg.IoUThrs)
	}
	for i, v := range cfg.IoUThrs {
		if math.Abs(v-p.IoUThresholds[i]) > 1e-12 {
			t.Fatalf("iouThrs %v, want 0.5:0.05:0.95", cfg.IoUThrs)
		}
	}
	if cfg.RecThrs != "101 points: linspace(0, 1, 101)" {
		t.Fatalf("recThrs %q, want the 101 defaults", cfg.RecThrs)
	}
	if !slices.Equal(cfg.MaxDets, p.MaxDets) {
		t.Fatalf("maxDets %v, want %v", cfg.MaxDets, p.MaxDets)
	}
	if len(cfg.AreaRng) != len(p.AreaRanges) {
		t.Fatalf("areaRng %v, want %v", cfg.AreaRng, p.AreaRanges)
	}
	for _, r := range p.AreaRanges {
		if got, ok := cfg.AreaRng[r.Label]; !ok || got != [2]float64{r.Min, r.Max} {
			t.Fatalf("areaRng[%s] = %v, want [%g, %g]", r.Label, got, r.Min, r.Max)
		}
	}
	if !slices.Equal(cfg.StatsOrder, StatNames) {
		t.Fatalf("stats_order %v, want %v", cfg.StatsOrder, StatNames)
	}
}

func unravel(i int, dims ...int) []int {
	idx := make([]int, len(dims))
	for j := len(dims) - 1; j >= 0; j-- {
		idx[j] = i % dims[j]
		i /= dims[j]
	}
	return idx
}
