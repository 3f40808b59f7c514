package cocoeval

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sslight-go/sslight/sinks/storage"
)

// Report is an evaluation as a JSON document: summarize()'s statistics,
// what was evaluated (file names, counts of images, categories, ground
// truth and results, with those left out) and each category's AP. It is
// what `sslight eval coco` writes; the stats come first, so a log line
// starts with them.
type Report struct {
	// Stats are Eval.Stats in the order of StatNames.
	Stats     []float64 `json:"stats"`
	StatNames []string  `json:"stat_names"`
	IoUType   string    `json:"iou_type"`
	// GT and DT are the names the ground truth and results were loaded
	// under.
	GT             string `json:"gt"`
	DT             string `json:"dt"`
	Images         int    `json:"images"`
	Categories     int    `json:"categories"`
	GTAnnotations  int    `json:"gt_annotations"`
	GTIgnored      int    `json:"gt_ignored"`
	Results        int    `json:"results"`
	ResultsIgnored int    `json:"results_ignored"`
	// PerCategory is every ground-truth category's AP over IoU 0.50:0.95,
	// area all, the largest budget (−1 without ground truth), by id.
	PerCategory []CategoryAP `json:"per_category"`
	// Precision [T,R,K,A,M] and Recall [T,K,A,M] are the full arrays, when
	// asked for.
	Precision *Array `json:"precision,omitempty"`
	Recall    *Array `json:"recall,omitempty"`
}

// CategoryAP is one category's AP.
type CategoryAP struct {
	ID   int64   `json:"id"`
	Name string  `json:"name"`
	AP   float64 `json:"ap"`
}

// Array is an n-d float64 array in the golden files' layout: its shape and
// the values in row-major order.
type Array struct {
	Shape []int     `json:"shape"`
	Dtype string    `json:"dtype"`
	Data  []float64 `json:"data"`
}

// EvaluateFiles evaluates the result list at dtURI against the instances
// file at gtURI (local paths or gs://, through sinks/storage) with the
// default parameters for t and returns the evaluation and its report
// (arrays adds the full precision and recall arrays). The ground truth is
// loaded, and for segm its masks checked, before the results are read, so
// that its problems surface first; every input problem names its file.
func EvaluateFiles(ctx context.Context, gtURI, dtURI string, t IoUType, arrays bool) (*Eval, *Report, error) {
	gtFile, err := storage.Open(ctx, gtURI)
	if err != nil {
		return nil, nil, err
	}
	gt, err := LoadGroundTruth(gtFile, gtURI)
	gtFile.Close()
	if err != nil {
		return nil, nil, err
	}
	if t == IoUSegm {
		if err := gt.PrepareMasks(); err != nil {
			return nil, nil, err
		}
	}
	dtFile, err := storage.Open(ctx, dtURI)
	if err != nil {
		return nil, nil, err
	}
	dt, err := ReadResults(dtFile, dtURI, gt, t)
	dtFile.Close()
	if err != nil {
		return nil, nil, err
	}
	e, err := Evaluate(ctx, gt, dt, DefaultParams(t))
	if err != nil {
		return nil, nil, err
	}
	return e, NewReport(e, gt, dt, arrays), nil
}

// NewReport describes e, the evaluation of dt against gt; arrays adds the
// full precision and recall arrays.
func NewReport(e *Eval, gt *GroundTruth, dt *Detections, arrays bool) *Report {
	r := &Report{
		Stats: e.Stats, StatNames: StatNames, IoUType: string(dt.IoUType()),
		GT: gt.Name(), DT: dt.Name(),
		Images: len(gt.Images()), Categories: len(gt.Categories()),
		GTAnnotations: gt.NumAnnotations(), GTIgnored: gt.IgnoredAnnotations(),
		Results: dt.NumResults(), ResultsIgnored: dt.IgnoredResults(),
		PerCategory: make([]CategoryAP, len(gt.Categories())),
	}
	for k, c := range gt.Categories() {
		r.PerCategory[k] = CategoryAP{ID: c.ID, Name: c.Name, AP: e.CategoryAP(k)}
	}
	if arrays {
		p := e.Params
		T, R, K, A, M := len(p.IoUThresholds), len(p.RecallThresholds), len(e.CategoryIDs), len(p.AreaRanges), len(p.MaxDets)
		r.Precision = &Array{Shape: []int{T, R, K, A, M}, Dtype: "float64", Data: e.Precision}
		r.Recall = &Array{Shape: []int{T, K, A, M}, Dtype: "float64", Data: e.Recall}
	}
	return r
}

// WriteTable prints the 12 statistics in the layout pycocotools'
// summarize() prints, which people grep logs for (the labels are those of
// the default parameters).
func WriteTable(w io.Writer, e *Eval) error {
	rows := []struct {
		ap     bool
		iou    string
		area   string
		maxDet int
	}{
		{true, "0.50:0.95", "all", 100}, {true, "0.50", "all", 100}, {true, "0.75", "all", 100},
		{true, "0.50:0.95", "small", 100}, {true, "0.50:0.95", "medium", 100}, {true, "0.50:0.95", "large", 100},
		{false, "0.50:0.95", "all", 1}, {false, "0.50:0.95", "all", 10}, {false, "0.50:0.95", "all", 100},
		{false, "0.50:0.95", "small", 100}, {false, "0.50:0.95", "medium", 100}, {false, "0.50:0.95", "large", 100},
	}
	if len(e.Stats) != len(rows) {
		return fmt.Errorf("coco: %d statistics, want %d", len(e.Stats), len(rows))
	}
	var b strings.Builder
	for i, r := range rows {
		title, kind := "Average Precision", "(AP)"
		if !r.ap {
			title, kind = "Average Recall", "(AR)"
		}
		fmt.Fprintf(&b, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %.3f\n", title, kind, r.iou, r.area, r.maxDet, e.Stats[i])
	}
	_, err := io.WriteString(w, b.String())
	return err
}
