package coco

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReport builds the report of the sparse_cats golden case and checks
// it against the case's own description (counts in expected.json, the
// categories and results in its files) and pycocotools' statistics.
func TestReport(t *testing.T) {
	dir := filepath.Join(goldenCOCODir(), "sparse_cats")
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
