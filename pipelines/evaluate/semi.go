package evaluate

import (
	"bytes"
	"context"
	"fmt"

	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/trainer/finetune"
	"github.com/sslight-go/sslight/transforms"
	"github.com/sslight-go/sslight/transforms/source"
)

// semiFraction is the share of the training labels a semi-supervised
// protocol fine-tunes on.
var semiFraction = map[string]float64{ProtocolSemi1: 0.01, ProtocolSemi10: 0.10}

// semiProtocol fine-tunes the model's backbone with a linear head on the
// protocol's subset of the training labels (in memory: small data sets
// only), scores the whole validation set and records it in row.
func semiProtocol(ctx context.Context, m Model, spec Spec, data *classificationData, proto string, row *report.Row) error {
	bb, cfg, _, err := modelBackbone(ctx, m)
	if err != nil {
		return err
	}
	idx, how, err := semiSubset(ctx, spec, data, proto)
	if err != nil {
		return err
	}
	mean, std := cfg.Data.MeanStd32()
	view := transforms.EvalView{Size: cfg.MultiViewsTransforms.GlobalCropSize, Mean: mean, Std: std, PixelLimit: cfg.Data.PixelLimit,
		DecodeMemoryMB: spec.DecodeMemoryMB}
	sub := make([]source.Item, len(idx))
	for i, j := range idx {
		sub[i] = data.train.Items[j]
	}
	train, err := evalImages(ctx, view, sub)
	if err != nil {
		return err
	}
	val, err := evalImages(ctx, view, data.val.Items)
	if err != nil {
		return err
	}
	ft := spec.Finetune
	ft.Seed = spec.Seed
	res, err := finetune.Run(bb, train, val, data.classes, ft)
	if err != nil {
		return err
	}
	row.Metrics[proto+"_top1"] = res.Top1
	if res.HasTop5 {
		row.Metrics[proto+"_top5"] = res.Top5
	}
	row.Protocols[proto] = fmt.Sprintf("fine-tune backbone + linear head on %d labelled images (%.0f%%, %s): SGD momentum %.1f, lr %g cosine, batch %d, %d epochs, wd %g, flips=%v; scored on %d validation images",
		train.N, 100*semiFraction[proto], how, ft.Momentum, ft.LR, ft.BatchSize, ft.Epochs, ft.WeightDecay, ft.Flip, val.N)
	return nil
}

// evalImages are the evaluation views of items with their labels.
func evalImages(ctx context.Context, view transforms.EvalView, items []source.Item) (finetune.Images, error) {
	s := view.Size
	im := finetune.Images{N: len(items), H: s, W: s, X: make([]float32, len(items)*3*s*s), Labels: make([]int, len(items))}
	if err := view.ApplyItems(ctx, items, im.X); err != nil {
		return finetune.Images{}, err
	}
	for i, it := range items {
		im.Labels[i] = it.Label
	}
	return im, nil
}

// semiSubset picks the labelled training images of a semi-supervised
// protocol: the names of its subset list when one was given, matched on
// the listed items' file names, otherwise a class-stratified fraction. It
// also says which it took, for the report.
func semiSubset(ctx context.Context, spec Spec, data *classificationData, proto string) ([]int, string, error) {
	items := data.train.Items
	if list := spec.SemiLists[proto]; list != "" {
		raw, err := storage.ReadFile(ctx, list)
		if err != nil {
			return nil, "", fmt.Errorf("%s subset list: %w", proto, err)
		}
		names, err := eval.ParseSubsetList(bytes.NewReader(raw))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", list, err)
		}
		paths := make([]string, len(items))
		for i, it := range items {
			paths[i] = it.Key
		}
		idx, err := eval.MatchSubset(names, paths)
		if err != nil {
			return nil, "", fmt.Errorf("%s against --train %s: %w", list, spec.Train, err)
		}
		return idx, "the images " + list + " names", nil
	}
	labels := make([]int, len(items))
	for i, it := range items {
		labels[i] = it.Label
	}
	idx, err := eval.StratifiedSubset(labels, data.classes, semiFraction[proto], spec.Seed)
	if err != nil {
		return nil, "", err
	}
	return idx, fmt.Sprintf("class-stratified, seed %d", spec.Seed), nil
}
