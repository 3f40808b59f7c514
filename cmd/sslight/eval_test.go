package main

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/eval/cocoeval"
)

func goldenCOCOCase(name string) string {
	return filepath.Join("..", "..", "testdata", "golden", "coco", name)
}

// TestEvalCOCOCommand runs `sslight eval coco` on a golden case for both
// IoU types and compares the report's stats with pycocotools' values.
func TestEvalCOCOCommand(t *testing.T) {
	dir := goldenCOCOCase("sparse_cats")
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Expected map[string]struct {
			Stats []float64 `json:"stats"`
		} `json:"expected"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for _, iou := range []string{"bbox", "segm"} {
		out := filepath.Join(t.TempDir(), "report.json")
		err := runEval(context.Background(), []string{"coco", "--gt", filepath.Join(dir, "gt.json"), "--dt", filepath.Join(dir, "dt.json"),
			"--iou-type", iou, "--out", out, "--quiet", "--arrays"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var rep cocoeval.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), `{"stats":[`) {
			t.Errorf("report does not start with the stats: %.40s", b)
		}
		for i, w := range want.Expected[iou].Stats {
			if math.Abs(rep.Stats[i]-w) > 1e-6 {
				t.Errorf("%s stats[%d] = %v, want %v", iou, i, rep.Stats[i], w)
			}
		}
		// sparse_cats: category 90 has no ground truth, and results of
		// category 99 are ignored.
		last := rep.PerCategory[len(rep.PerCategory)-1]
		if last.ID != 90 || last.AP != -1 || rep.ResultsIgnored == 0 {
			t.Errorf("per-category %+v, results ignored %d", rep.PerCategory, rep.ResultsIgnored)
		}
		if rep.Precision == nil || len(rep.Precision.Data) != 10*101*5*4*3 || rep.Recall == nil || len(rep.Recall.Data) != 10*5*4*3 {
			t.Errorf("--arrays: precision %v recall %v", rep.Precision != nil, rep.Recall != nil)
		}
	}
}

func TestEvalCOCOCommandErrors(t *testing.T) {
	dir := goldenCOCOCase("basic")
	gt, dt := filepath.Join(dir, "gt.json"), filepath.Join(dir, "dt.json")
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`[{"image_id": 424242, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "missing --checkpoint, --out, --train and --val\n"}, // every missing flag at once
		{[]string{"knn"}, `unknown evaluation mode "knn"`},
		{[]string{"coco", "--gt", gt}, "missing --dt\n"},
		{[]string{"coco", "--gt", gt, "--dtt", dt}, "unknown flag --dtt; did you mean --dt?"},
		{[]string{"coco", "--gt", gt, "--dt", dt, "--iou-type", "keypoints"}, `unknown iou type "keypoints"`},
		{[]string{"coco", "--gt", gt, "--dt", dt, "extra"}, `unexpected argument "extra"`},
		{[]string{"coco", "--gt", gt, "--dt", bad, "--quiet"}, bad + ": [0].image_id: image 424242 is not in the ground truth " + gt},
		{[]string{"coco", "--gt", filepath.Join(dir, "missing.json"), "--dt", dt}, "missing.json"},
	}
	for _, tc := range tests {
		err := runEval(context.Background(), tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sslight eval %v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	if err := runEval(context.Background(), []string{"coco", "--help"}); err != flag.ErrHelp {
		t.Errorf("--help: err %v, want flag.ErrHelp", err)
	}
}
