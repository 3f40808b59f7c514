package evaluate

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
)

// ModelName is the table's name for a trained config: "DINO" or
// "DINO + SSLight".
func ModelName(cfg *configs.Config) string {
	if SettingOf(cfg) == report.SettingSSLight {
		return cfg.SSLMethod + " + SSLight"
	}
	return cfg.SSLMethod
}

// SettingOf says whether a config is the baseline or the SSLight recipe
// (report.SettingBaseline, report.SettingSSLight): the baseline's loss
// averages all view pairs (LAMBDAS = [1/(1+L), L/(1+L)] for L local
// views), SSLight re-balances it.
func SettingOf(cfg *configs.Config) string {
	l := cfg.MultiViewsTransforms.Lambdas
	n := float64(cfg.MultiViewsTransforms.LocalCropsNumber)
	if len(l) == 2 && math.Abs(l[0]-1/(1+n)) > 1e-3 {
		return report.SettingSSLight
	}
	return report.SettingBaseline
}

// Notes say under a report's table what its numbers came from: which
// linear protocol ran, how the detection AP was obtained.
func Notes(spec Spec) []string {
	var notes []string
	if slices.Contains(spec.Protocols, ProtocolLinear) {
		if spec.LinearMode == LinearReference {
			notes = append(notes, fmt.Sprintf("linear: the reference's protocol (augmented training images through the frozen backbone, LARS, %d epochs)", spec.RefLinear.Epochs))
		} else {
			notes = append(notes, "linear: fast mode (linear classifier on frozen precomputed features), not the reference's augmented-image protocol")
		}
	}
	if slices.Contains(spec.Protocols, ProtocolDetection) {
		notes = append(notes, "AP: CenterNet-style detector fine-tuned with the backbone on --det-train, box AP×100 of its --det-val detections (pycocotools COCOeval)")
	}
	return notes
}

// accuracyColumns are the metrics accuracy.png plots, where any row has
// them.
var accuracyColumns = []report.Column{{Key: "knn_top1", Title: "kNN top-1"}, {Key: "linear_top1", Title: "linear top-1"},
	{Key: "semi1_top1", Title: "1% top-1"}, {Key: "semi10_top1", Title: "10% top-1"}}

// WriteReport writes the report files (report.Write: metrics.json,
// metrics.csv, report.md) under out and, when any row has a top-1
// accuracy, accuracy.png: a bar per model and protocol.
func WriteReport(ctx context.Context, out string, rep *report.Report) error {
	if err := report.Write(ctx, out, rep); err != nil {
		return err
	}
	var series []report.Series
	for _, c := range accuracyColumns {
		s := report.Series{Name: c.Title}
		have := false
		for _, r := range rep.Rows {
			v, ok := r.Metrics[c.Key]
			have = have || ok
			s.Y = append(s.Y, v)
		}
		if have {
			series = append(series, s)
		}
	}
	if len(series) == 0 {
		return nil
	}
	labels := make([]string, len(rep.Rows))
	for i, r := range rep.Rows {
		labels[i] = r.Name
	}
	return report.BarPlot(ctx, storage.Join(out, "accuracy.png"), "top-1 accuracy", "%", labels, series)
}
