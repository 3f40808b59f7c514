package evaluate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/transforms/source"
)

// knnProtocol scores DINO's weighted kNN on the features for every k and
// records k = 20 (or the only k) in row. The labels are checked again on
// the features (dead letters may have emptied a class).
func knnProtocol(trainF, valF eval.Features, classes []string, trainSource string, row *report.Row) error {
	if err := checkKNNLabels(trainF.Labels, valF.Labels, classes, trainSource); err != nil {
		return err
	}
	res, err := eval.KNN(trainF, valF, len(classes), eval.DefaultKs(), eval.DefaultKNNTemperature)
	if err != nil {
		return err
	}
	var desc []string
	for _, r := range res {
		desc = append(desc, fmt.Sprintf("k=%d %.2f/%.2f", r.K, r.Top1, r.Top5))
		if r.K == 20 || len(res) == 1 {
			row.Metrics["knn_top1"] = r.Top1
			if r.HasTop5 {
				row.Metrics["knn_top5"] = r.Top5
			}
		}
	}
	row.Protocols[ProtocolKNN] = fmt.Sprintf("DINO weighted kNN on L2-normalised features, T=%.2f, k ∈ {10, 20, 100, 200} (the table shows k=20), %d train / %d val images",
		eval.DefaultKNNTemperature, trainF.Len(), valF.Len())
	// The results by k are this row's numbers, not the protocol's settings.
	row.Protocols[ProtocolKNN+"_by_k"] = "top-1/top-5 by k: " + strings.Join(desc, ", ")
	return nil
}

// checkKNNLabels refuses the label sets on which a kNN accuracy means
// nothing: a training set of a single class, where every neighbour votes
// for it and top-1 is 100% whatever the features (what a fake class folder
// around unlabelled images gives), and validation labels that no training
// image has, which kNN can never predict. classes names the labels;
// trainSource is --train, for the message.
func checkKNNLabels(train, val []int, classes []string, trainSource string) error {
	if len(train) == 0 {
		return nil // an empty set is eval.KNN's error to name
	}
	seen := map[int]bool{}
	for _, l := range train {
		seen[l] = true
	}
	name := func(l int) string {
		if l >= 0 && l < len(classes) {
			return fmt.Sprintf("%q", classes[l])
		}
		return fmt.Sprint(l)
	}
	if len(seen) == 1 {
		return fmt.Errorf("knn: every --train %s image is of class %s: with a single class every neighbour votes for it and top-1 is 100%% whatever the features; "+
			"the classification protocols need at least two classes (for unlabelled images, run `sslight embed`)", trainSource, name(train[0]))
	}
	unseen := map[int]int{}
	for _, l := range val {
		if !seen[l] {
			unseen[l]++
		}
	}
	if len(unseen) == 0 {
		return nil
	}
	labels := make([]int, 0, len(unseen))
	n := 0
	for l, c := range unseen {
		labels = append(labels, l)
		n += c
	}
	slices.Sort(labels)
	names := make([]string, len(labels))
	for i, l := range labels {
		names[i] = name(l)
	}
	list := strings.Join(names, ", ")
	if len(names) > 6 {
		list = fmt.Sprintf("%s … %d in all", strings.Join(names[:6], ", "), len(names))
	}
	return fmt.Errorf("knn: %d --val images are of classes no --train image has (%s): kNN can never predict them, so its accuracy would be capped below 100%% by the split, not the features; "+
		"give --train images of every validation class", n, list)
}

// itemLabels are the labels of listed items.
func itemLabels(items []source.Item) []int {
	out := make([]int, len(items))
	for i, it := range items {
		out[i] = it.Label
	}
	return out
}

// classificationProtocols are the protocols of ps that need labelled
// classification sources.
func classificationProtocols(ps []string) []string {
	var out []string
	for _, p := range ps {
		if p != ProtocolDetection {
			out = append(out, p)
		}
	}
	return out
}
