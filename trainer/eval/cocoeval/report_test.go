package cocoeval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoCase is a golden case of this repository (not of
// SSLIGHT_GOLDEN_DIR: these tests know their cases).
func repoCase(name string) string {
	return filepath.Join("..", "..", "..", "testdata", "golden", "coco", name)
}

// TestReport builds the report of the sparse_cats golden case and checks
// it against the case's own description (counts in expected.json, the
// categories and results in its files) and pycocotools' statistics.
func TestReport(t *testing.T) {
	dir := repoCase("sparse_cats")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var want struct {
		Config struct {
			CatIDs []int64        `json:"catIds"`
			Counts map[string]int `json:"counts"`
		} `json:"config"`
		Expected map[string]struct {
			Stats []float64 `json:"stats"`
		} `json:"expected"`
	}
	if err := json.Unmarshal(read("expected.json"), &want); err != nil {
		t.Fatal(err)
	}
	var results []struct {
		CategoryID int64 `json:"category_id"`
	}
	if err := json.Unmarshal(read("dt.json"), &results); err != nil {
		t.Fatal(err)
	}
	known := map[int64]bool{}
	for _, id := range want.Config.CatIDs {
		known[id] = true
	}
	unknown := 0
	for _, r := range results {
		if !known[r.CategoryID] {
			unknown++
		}
	}
	if unknown == 0 {
		t.Fatal("sparse_cats has no result of an unlisted category any more: the test below checks nothing of results_ignored")
	}

	gt, err := LoadGroundTruth(bytes.NewReader(read("gt.json")), "gt.json")
	if err != nil {
		t.Fatal(err)
	}
	dt, err := ReadResults(bytes.NewReader(read("dt.json")), "dt.json", gt, IoUBBox)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Evaluate(context.Background(), gt, dt, DefaultParams(IoUBBox))
	if err != nil {
		t.Fatal(err)
	}
	r := NewReport(e, gt, dt, true)
	c := want.Config.Counts
	if r.GT != "gt.json" || r.DT != "dt.json" || r.IoUType != "bbox" || r.Images != c["images"] || r.Categories != len(want.Config.CatIDs) ||
		r.GTAnnotations != c["annotations"] || r.GTIgnored != 0 || r.Results != c["detections"] || r.ResultsIgnored != unknown {
		t.Errorf("report %+v; want %d images, %d categories, %d annotations, %d results of which %d ignored",
			r, c["images"], len(want.Config.CatIDs), c["annotations"], c["detections"], unknown)
	}
	for i, id := range want.Config.CatIDs {
		if r.PerCategory[i].ID != id {
			t.Errorf("per_category[%d] is category %d, want %d", i, r.PerCategory[i].ID, id)
		}
	}
	// Category 90 has no ground truth: its AP is undefined.
	if last := r.PerCategory[len(r.PerCategory)-1]; last.AP != -1 {
		t.Errorf("category %d without ground truth has AP %v, want -1", last.ID, last.AP)
	}
	K := len(want.Config.CatIDs)
	if r.Precision == nil || fmt.Sprint(r.Precision.Shape) != fmt.Sprint([]int{10, 101, K, 4, 3}) || len(r.Precision.Data) != 10*101*K*4*3 ||
		r.Recall == nil || fmt.Sprint(r.Recall.Shape) != fmt.Sprint([]int{10, K, 4, 3}) || len(r.Recall.Data) != 10*K*4*3 {
		t.Errorf("arrays: precision %+v, recall %+v", r.Precision != nil, r.Recall != nil)
	}
	if NewReport(e, gt, dt, false).Precision != nil {
		t.Error("arrays left out, but the report has a precision array")
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"stats":[`) {
		t.Errorf("the JSON report does not start with the stats: %.40s", b)
	}

	// The table prints pycocotools' lines with its rounding.
	var tab strings.Builder
	if err := WriteTable(&tab, e); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(tab.String(), "\n"), "\n")
	ws := want.Expected["bbox"].Stats
	for i, w := range []string{
		fmt.Sprintf(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = %.3f", ws[0]),
		fmt.Sprintf(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = %.3f", ws[1]),
		fmt.Sprintf(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = %.3f", ws[6]),
		fmt.Sprintf(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = %.3f", ws[11]),
	} {
		at := []int{0, 1, 6, 11}[i]
		if len(lines) != 12 || lines[at] != w {
			t.Errorf("table line %d:\n got %q\nwant %q", at, lines[min(at, len(lines)-1)], w)
		}
	}
	if err := WriteTable(&tab, &Eval{Stats: []float64{1}}); err == nil {
		t.Error("a table of one statistic: no error")
	}
}

// TestEvaluateFiles evaluates a golden case from its files for both IoU
// types against pycocotools' statistics, and names the file at fault.
func TestEvaluateFiles(t *testing.T) {
	ctx := context.Background()
	dir := repoCase("basic")
	var want struct {
		Expected map[string]struct {
			Stats []float64 `json:"stats"`
		} `json:"expected"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	gt, dt := filepath.Join(dir, "gt.json"), filepath.Join(dir, "dt.json")
	for _, typ := range []IoUType{IoUBBox, IoUSegm} {
		e, r, err := EvaluateFiles(ctx, gt, dt, typ, false)
		if err != nil {
			t.Fatal(err)
		}
		ws := want.Expected[string(typ)].Stats
		if len(ws) != 12 || r.GT != gt || r.DT != dt || r.IoUType != string(typ) || r.Precision != nil {
			t.Fatalf("%s: report %+v (%d expected stats)", typ, r, len(ws))
		}
		for i, w := range ws {
			if math.Abs(e.Stats[i]-w) > 1e-12 || r.Stats[i] != e.Stats[i] {
				t.Errorf("%s stats[%d] = %v, want %v", typ, i, e.Stats[i], w)
			}
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`[{"image_id": 424242, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ gt, dt, want string }{
		{filepath.Join(dir, "missing.json"), dt, "missing.json"},
		{gt, filepath.Join(dir, "missing.json"), "missing.json"},
		{gt, bad, bad + ": [0].image_id: image 424242 is not in the ground truth " + gt},
	} {
		if _, _, err := EvaluateFiles(ctx, tc.gt, tc.dt, IoUBBox, false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("EvaluateFiles(%s, %s): err %v, want %q", tc.gt, tc.dt, err, tc.want)
		}
	}
}
