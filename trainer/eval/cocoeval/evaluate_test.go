package cocoeval

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/internal/goldencase"
)

// load builds a ground truth and result list from JSON text.
func load(t *testing.T, gtJSON, dtJSON string, typ IoUType) (*GroundTruth, *Detections) {
	t.Helper()
	gt, err := LoadGroundTruth(strings.NewReader(gtJSON), "gt.json")
	if err != nil {
		t.Fatal(err)
	}
	dt, err := ReadResults(strings.NewReader(dtJSON), "dt.json", gt, typ)
	if err != nil {
		t.Fatal(err)
	}
	return gt, dt
}

func evaluateJSON(t *testing.T, gtJSON, dtJSON string, typ IoUType) *Eval {
	t.Helper()
	gt, dt := load(t, gtJSON, dtJSON, typ)
	e, err := Evaluate(context.Background(), gt, dt, DefaultParams(typ))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Stat indices in Eval.Stats.
const (
	sAP = iota
	sAP50
	sAP75
	sAPs
	sAPm
	sAPl
	sAR1
	sAR10
	sAR100
	sARs
	sARm
	sARl
)

// The scenarios below are small enough to work out by hand; each comment
// gives the reasoning that yields the expected numbers.
func TestEvaluateScenarios(t *testing.T) {
	const images = `"images": [{"id": 1, "width": 200, "height": 200, "file_name": "a.jpg"}]`
	const cats = `"categories": [{"id": 1, "name": "thing"}]`
	tests := []struct {
		name   string
		gt, dt string
		typ    IoUType
		want   map[int]float64 // stat index → value
	}{{
		// One small object found exactly: every defined statistic is 1;
		// medium and large have no ground truth (−1).
		name: "perfect",
		gt:   `{` + images + `, ` + cats + `, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400}]}`,
		dt:   `[{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9}]`,
		want: map[int]float64{sAP: 1, sAP50: 1, sAP75: 1, sAPs: 1, sAPm: -1, sAPl: -1, sAR1: 1, sAR10: 1, sAR100: 1, sARs: 1, sARm: -1, sARl: -1},
	}, {
		// IoU 62/100 = 0.62 clears the thresholds 0.50, 0.55, 0.60 and no
		// others: precision 1 at 3 of 10 thresholds, 0 at the rest.
		name: "iou 0.62",
		gt:   `{` + images + `, ` + cats + `, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}]}`,
		dt:   `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 6.2], "score": 0.9}]`,
		want: map[int]float64{sAP: 0.3, sAP50: 1, sAP75: 0, sAR100: 0.3, sAR1: 0.3},
	}, {
		// A false positive scored above the true positive: precisions 0
		// then 1/2 at recalls 0 then 1; the envelope gives 1/2 at every
		// recall point. A duplicate below the true positive changes
		// nothing.
		name: "false positive first",
		gt:   `{` + images + `, ` + cats + `, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}]}`,
		dt: `[{"image_id": 1, "category_id": 1, "bbox": [100, 100, 10, 10], "score": 0.9},
		      {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.8},
		      {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.7}]`,
		want: map[int]float64{sAP: 0.5, sAP50: 0.5, sAR1: 0, sAR10: 1, sAR100: 1},
	}, {
		// Crowd region C [50,50,40,40] and object A [0,0,10,10]. d1
		// [45,45,20,20] overlaps C by 225 px over its own 400 px = 0.5625,
		// so it is ignored (matched to C) at thresholds 0.50 and 0.55 and a
		// false positive above. d2, d3 lie inside C (IoU 1): both ignored,
		// a crowd region matches any number of detections. d4 finds A.
		// AP = (2·1 + 8·½)/10 = 0.6. AR1 sees only d1: 0.
		name: "crowd",
		gt: `{` + images + `, ` + cats + `, "annotations": [
		      {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100},
		      {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 40, 40], "area": 1600, "iscrowd": 1}]}`,
		dt: `[{"image_id": 1, "category_id": 1, "bbox": [45, 45, 20, 20], "score": 0.95},
		      {"image_id": 1, "category_id": 1, "bbox": [55, 55, 10, 10], "score": 0.9},
		      {"image_id": 1, "category_id": 1, "bbox": [60, 60, 10, 10], "score": 0.8},
		      {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}]`,
		want: map[int]float64{sAP: 0.6, sAP50: 1, sAP75: 0.5, sAPs: 0.6, sAPm: -1, sAR1: 0, sAR10: 1, sAR100: 1},
	}, {
		// The large object is found; a small false positive scores higher.
		// In "all" it costs half the precision; in "large" it is unmatched
		// and outside the range, so ignored.
		name: "area range ignore",
		gt:   `{` + images + `, ` + cats + `, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 10000}]}`,
		dt: `[{"image_id": 1, "category_id": 1, "bbox": [150, 150, 10, 10], "score": 0.95},
		      {"image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "score": 0.9}]`,
		want: map[int]float64{sAP: 0.5, sAPs: -1, sAPm: -1, sAPl: 1, sARl: 1},
	}, {
		// Two images, one object each, one detection each with equal
		// scores: the hit in image 3 and the miss in image 7. Ties keep
		// image-id order (stable sort), so the hit comes first: precision
		// 1 up to recall ½, none beyond: AP = 51/101. The file lists image
		// 7 first, so file order would give 25.5/101.
		name: "tie order",
		gt: `{"images": [{"id": 7, "width": 50, "height": 50, "file_name": "7.jpg"}, {"id": 3, "width": 50, "height": 50, "file_name": "3.jpg"}], ` + cats + `,
		      "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100},
		                      {"id": 2, "image_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}]}`,
		dt: `[{"image_id": 7, "category_id": 1, "bbox": [30, 30, 10, 10], "score": 0.5},
		      {"image_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}]`,
		want: map[int]float64{sAP: 51.0 / 101, sAP50: 51.0 / 101, sAR100: 0.5},
	}, {
		// 100 false positives outrank the only hit, which maxDets=100 cuts
		// off: nothing is found.
		name: "beyond 100 detections",
		gt:   `{` + images + `, ` + cats + `, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}]}`,
		dt:   `[` + strings.Repeat(`{"image_id": 1, "category_id": 1, "bbox": [100, 100, 10, 10], "score": 0.9}, `, 100) + `{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.1}]`,
		want: map[int]float64{sAP: 0, sAR100: 0, sAR10: 0},
	}, {
		// pycocotools records a match as the ground truth's id, and id 0
		// reads as "unmatched": the perfect detection counts as a false
		// positive.
		name: "annotation id 0",
		gt:   `{` + images + `, ` + cats + `, "annotations": [{"id": 0, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}]}`,
		dt:   `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]`,
		want: map[int]float64{sAP: 0, sAR100: 0},
	}, {
		// Medium object (a 40×40 polygon, 1600 px). A false positive mask
		// of 1600 px carries a 1×1 box. For segm its area is the mask's
		// (medium), so it costs half the precision in "medium".
		name: "segm area from mask",
		typ:  IoUSegm,
		gt: `{` + images + `, ` + cats + `, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 1600,
		      "segmentation": [[0, 0, 40, 0, 40, 40, 0, 40]]}]}`,
		dt: `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.95, "segmentation": [[60, 60, 100, 60, 100, 100, 60, 100]]},
		      {"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.9, "segmentation": [[0, 0, 40, 0, 40, 40, 0, 40]]}]`,
		want: map[int]float64{sAP: 0.5, sAPm: 0.5, sAPs: -1, sARm: 1},
	}, {
		// The same for bbox: the false positive's area is its box's (1),
		// outside "medium", so it is ignored there.
		name: "bbox area from box",
		typ:  IoUBBox,
		gt: `{` + images + `, ` + cats + `, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 1600,
		      "segmentation": [[0, 0, 40, 0, 40, 40, 0, 40]]}]}`,
		dt: `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.95, "segmentation": [[60, 60, 100, 60, 100, 100, 60, 100]]},
		      {"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.9, "segmentation": [[0, 0, 40, 0, 40, 40, 0, 40]]}]`,
		want: map[int]float64{sAP: 0.5, sAPm: 1, sARm: 1},
	}, {
		// A crowd mask (uncompressed RLE, rows 0..9 of columns 0..9 in a
		// 20×20 image) and a detection mask half inside it: the crowd IoU
		// is the 50 shared pixels over the detection's 100, so it is
		// ignored at 0.50 only, a false positive above; no regular object,
		// so nothing is defined: all −1.
		name: "segm crowd only",
		typ:  IoUSegm,
		gt: `{"images": [{"id": 1, "width": 20, "height": 20, "file_name": "a.jpg"}], ` + cats + `, "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
		      "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 1, "segmentation": {"size": [20, 20], "counts": [0, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 210]}}]}`,
		dt:   `[{"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": {"size": [20, 20], "counts": [100, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 110]}}]`,
		want: map[int]float64{sAP: -1, sAR100: -1},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ := tc.typ
			if typ == "" {
				typ = IoUBBox
			}
			e := evaluateJSON(t, tc.gt, tc.dt, typ)
			for i, want := range tc.want {
				if math.Abs(e.Stats[i]-want) > 1e-12 {
					t.Errorf("%s = %.17g, want %.17g", StatNames[i], e.Stats[i], want)
				}
			}
		})
	}
}

func TestCategoriesWithoutGroundTruth(t *testing.T) {
	// Category 2 has detections but no ground truth: its entries stay −1
	// and do not pull the means down. Category 9 is not in the ground
	// truth at all: its result is not evaluated.
	gt := `{"images": [{"id": 1, "width": 50, "height": 50, "file_name": "a.jpg"}],
	        "categories": [{"id": 2, "name": "two"}, {"id": 1, "name": "one"}],
	        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}]}`
	dt := `[{"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.9},
	        {"image_id": 1, "category_id": 9, "bbox": [0, 0, 10, 10], "score": 0.9},
	        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}]`
	gtd, dtd := load(t, gt, dt, IoUBBox)
	if dtd.IgnoredResults() != 1 || dtd.NumResults() != 3 {
		t.Errorf("results %d, ignored %d; want 3, 1", dtd.NumResults(), dtd.IgnoredResults())
	}
	e, err := Evaluate(context.Background(), gtd, dtd, DefaultParams(IoUBBox))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.CategoryIDs, []int64{1, 2}) {
		t.Fatalf("category ids %v, want [1 2]", e.CategoryIDs)
	}
	// Precision is tp/(tp+fp+eps) as in pycocotools: 1/(1+2⁻⁵²) for a hit.
	hit := 1 / (1 + 0x1p-52)
	if e.Stats[sAP] != hit || e.Stats[sAR100] != 1 {
		t.Errorf("AP %v AR100 %v, want %v and 1", e.Stats[sAP], e.Stats[sAR100], hit)
	}
	for tt := range 10 {
		for a := range 4 {
			for m := range 3 {
				if v := e.RecallAt(tt, 1, a, m); v != -1 {
					t.Fatalf("recall[%d,1,%d,%d] = %v, want -1", tt, a, m, v)
				}
				if v := e.PrecisionAt(tt, 50, 1, a, m); v != -1 {
					t.Fatalf("precision[%d,50,1,%d,%d] = %v, want -1", tt, a, m, v)
				}
			}
		}
	}
	if got := e.CategoryAP(0); got != hit {
		t.Errorf("CategoryAP(one) = %v, want %v", got, hit)
	}
	if got := e.CategoryAP(1); got != -1 {
		t.Errorf("CategoryAP(two) = %v, want -1", got)
	}
}

func TestEmptyResults(t *testing.T) {
	// pycocotools cannot load an empty list; here it is a detector that
	// found nothing: recall 0, precision 0.
	gt := `{"images": [{"id": 1, "width": 50, "height": 50, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "one"}],
	        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}]}`
	for _, typ := range []IoUType{IoUBBox, IoUSegm} {
		gtd, err := LoadGroundTruth(strings.NewReader(gt), "gt.json")
		if err != nil {
			t.Fatal(err)
		}
		dt, err := ReadResults(strings.NewReader(`[]`), "dt.json", gtd, typ)
		if err != nil {
			t.Fatal(err)
		}
		p := DefaultParams(typ)
		if typ == IoUSegm {
			// No masks in this ground truth: segm must refuse it.
			if _, err := Evaluate(context.Background(), gtd, dt, p); err == nil || !strings.Contains(err.Error(), "annotations[0].segmentation") {
				t.Errorf("segm without masks: err %v", err)
			}
			continue
		}
		e, err := Evaluate(context.Background(), gtd, dt, p)
		if err != nil {
			t.Fatal(err)
		}
		if e.Stats[sAP] != 0 || e.Stats[sAR100] != 0 || e.Stats[sAPm] != -1 {
			t.Errorf("stats %v", e.Stats)
		}
	}
}

// TestEvaluateDeterministic evaluates a golden case with one worker and
// with several: the arrays must be identical (run with -race).
func TestEvaluateDeterministic(t *testing.T) {
	dir := filepath.Join(goldencase.Dir("coco"), "crowd_manydets")
	if _, err := os.Stat(dir); err != nil {
		// SSLIGHT_GOLDEN_DIR's cases lack it: the committed one.
		dir = filepath.Join(goldencase.RepoDir("coco"), "crowd_manydets")
	}
	gtRaw, err := os.ReadFile(filepath.Join(dir, "gt.json"))
	if err != nil {
		t.Fatal(err)
	}
	dtRaw, err := os.ReadFile(filepath.Join(dir, "dt.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []IoUType{IoUBBox, IoUSegm} {
		gt, dt := load(t, string(gtRaw), string(dtRaw), typ)
		var runs []*Eval
		for _, procs := range []int{1, 4} {
			old := runtime.GOMAXPROCS(procs)
			e, err := Evaluate(context.Background(), gt, dt, DefaultParams(typ))
			runtime.GOMAXPROCS(old)
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, e)
		}
		if !slices.Equal(runs[0].Precision, runs[1].Precision) || !slices.Equal(runs[0].Recall, runs[1].Recall) || !slices.Equal(runs[0].Stats, runs[1].Stats) {
			t.Errorf("%s: results depend on the number of workers", typ)
		}
	}
}

func TestEvaluateCanceled(t *testing.T) {
	gt, dt := load(t, `{"images": [{"id": 1, "width": 50, "height": 50, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "one"}], "annotations": []}`,
		`[]`, IoUBBox)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, gt, dt, DefaultParams(IoUBBox)); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

func TestEvaluateRefusesMismatchedType(t *testing.T) {
	gt, dt := load(t, `{"images": [{"id": 1, "width": 50, "height": 50, "file_name": "a.jpg"}], "categories": [], "annotations": []}`, `[]`, IoUBBox)
	if _, err := Evaluate(context.Background(), gt, dt, DefaultParams(IoUSegm)); err == nil {
		t.Error("bbox results evaluated as segm: no error")
	}
	p := DefaultParams(IoUBBox)
	p.MaxDets = []int{10, 1}
	if _, err := Evaluate(context.Background(), gt, dt, p); err == nil {
		t.Error("descending maxDets: no error")
	}
}

func TestDefaultParamsAreNumpys(t *testing.T) {
	p := DefaultParams(IoUBBox)
	// numpy.linspace(.5, .95, 10) and numpy.linspace(0, 1, 101), printed
	// by numpy 1.24 with repr: only 0.9 is not the short decimal.
	wantIoU := []float64{0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95}
	if !slices.Equal(p.IoUThresholds, wantIoU) {
		t.Errorf("IoU thresholds %v, want %v", p.IoUThresholds, wantIoU)
	}
	// numpy gives i·0.01, which differs from i/100 at these i.
	differ := []int{}
	for i, v := range p.RecallThresholds {
		if v != float64(i)/100 {
			differ = append(differ, i)
		}
	}
	if want := []int{35, 41, 47, 57, 69, 70, 82, 83, 94, 95}; !slices.Equal(differ, want) {
		t.Errorf("recall thresholds differ from i/100 at %v, numpy's at %v", differ, want)
	}
}

func TestPairwiseSum(t *testing.T) {
	// Against a plain left-to-right sum where the grouping cannot matter
	// (integers), and on a case where it does: 1 followed by many tiny
	// values that a sequential sum loses but blocks of eight keep.
	ints := make([]float64, 1000)
	for i := range ints {
		ints[i] = float64(i % 7)
	}
	want := 0.0
	for _, v := range ints {
		want += v
	}
	if got := pairwiseSum(ints); got != want {
		t.Errorf("sum of integers %v, want %v", got, want)
	}
	tiny := make([]float64, 16)
	tiny[0] = 1
	for i := 1; i < 16; i++ {
		tiny[i] = 0x1p-53
	}
	// Eight running sums: r[0] = 1 + 2⁻⁵³ rounds to 1, r[1..7] = 2·2⁻⁵³;
	// combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) every step is exact:
	// 1 + 7·2⁻⁵². A sequential sum would stay at 1.
	if got, want := pairwiseSum(tiny), 1+7*0x1p-52; got != want {
		t.Errorf("pairwise sum %v, want %v", got, want)
	}
}

func TestNumpySumChunks(t *testing.T) {
	// numpy 1.24: v = zeros(8194); v[0] = 1; v[8191] = v[8192] = 2⁻⁵³;
	// np.add.reduce(v) is 1.0, because the first 8192 values are summed
	// (1 + 2⁻⁵³ rounds to 1) before the last two are added one piece at
	// a time. One pairwise pass over all 8194 would keep 2⁻⁵² of them.
	v := make([]float64, 8194)
	v[0], v[8191], v[8192] = 1, 0x1p-53, 0x1p-53
	if got := numpySum(v); got != 1 {
		t.Errorf("numpySum = %v, want 1", got)
	}
	if got := pairwiseSum(v); got != 1+0x1p-52 {
		t.Errorf("pairwiseSum = %v, want 1+2⁻⁵²", got)
	}
}

func TestEvaluateRefusesForeignResults(t *testing.T) {
	const gtJSON = `{"images": [{"id": 1, "width": 50, "height": 50, "file_name": "a.jpg"}], "categories": [], "annotations": []}`
	gt1, dt1 := load(t, gtJSON, `[]`, IoUBBox)
	gt2, _ := load(t, gtJSON, `[]`, IoUBBox)
	if _, err := Evaluate(context.Background(), gt2, dt1, DefaultParams(IoUBBox)); err == nil {
		t.Error("results loaded against another ground truth: no error")
	}
	if _, err := Evaluate(context.Background(), gt1, dt1, DefaultParams(IoUBBox)); err != nil {
		t.Error(err)
	}
}
