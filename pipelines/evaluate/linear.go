package evaluate

import (
	"context"
	"fmt"
	"time"

	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/trainer/features"
	"github.com/sslight-go/sslight/transforms"
	"github.com/sslight-go/sslight/transforms/source"
)

// linearProtocol runs the linear probe Spec.LinearMode names and records
// its numbers and settings in row.
func linearProtocol(ctx context.Context, m Model, spec Spec, data *classificationData, trainF, valF eval.Features, row *report.Row) error {
	var res *eval.LinearResult
	var err error
	if spec.LinearMode == LinearReference {
		res, row.Protocols[ProtocolLinear], err = referenceLinear(ctx, m, spec, data, valF)
	} else {
		cfg := spec.Linear
		cfg.Seed = spec.Seed
		res, err = eval.Linear(trainF, valF, data.classes, cfg)
		row.Protocols[ProtocolLinear] = fmt.Sprintf("fast mode: linear classifier on frozen precomputed features (standardised=%v), SGD momentum %.1f, lr %g cosine, batch %d, %d epochs, wd %g",
			cfg.Standardize, cfg.Momentum, cfg.LR, cfg.BatchSize, cfg.Epochs, cfg.WeightDecay)
	}
	if err != nil {
		return err
	}
	row.Metrics["linear_top1"] = res.Top1
	if res.HasTop5 {
		row.Metrics["linear_top5"] = res.Top5
	}
	return nil
}

// referenceLinear runs the reference's linear protocol for one model:
// every epoch, the training images under the reference's training
// transform go through the frozen backbone in evaluation mode, and
// eval.ReferenceLinear trains the classifier on them; valF are the
// evaluation-transform features the pipeline already extracted.
func referenceLinear(ctx context.Context, m Model, spec Spec, data *classificationData, valF eval.Features) (*eval.LinearResult, string, error) {
	model, cfg, err := featureModel(ctx, m)
	if err != nil {
		return nil, "", err
	}
	defer model.Close()
	mean, std := cfg.Data.MeanStd32()
	view := transforms.LinearTrainView{Size: cfg.MultiViewsTransforms.GlobalCropSize, Mean: mean, Std: std, PixelLimit: cfg.Data.PixelLimit, Seed: spec.Seed,
		DecodeMemoryMB: spec.DecodeMemoryMB}
	items := data.train.Items
	rc := spec.RefLinear
	start := time.Now()
	res, err := eval.ReferenceLinear(func(epoch int) (eval.Features, error) {
		f, err := augmentedFeatures(ctx, model, view, items, epoch)
		if err == nil {
			el := time.Since(start)
			logf(spec.Progress, "eval %s: reference linear epoch %d/%d (%.0f images/s, ETA %s)", m.Name, epoch+1, rc.Epochs,
				float64((epoch+1)*len(items))/el.Seconds(), (el / time.Duration(epoch+1) * time.Duration(rc.Epochs-epoch-1)).Round(time.Second))
		}
		return f, err
	}, valF, data.classes, rc)
	if err != nil {
		return nil, "", err
	}
	desc := fmt.Sprintf("reference protocol: %d training images per epoch under RandomResizedCrop(%d, scale 0.08–1, bicubic) + flip through the frozen backbone (eval mode), linear layer N(0, 0.01) init, LARS momentum %.1f, lr %g·%d/256 cosine to %g, batch %d, %d epochs, wd %g; scored on %d evaluation-transform validation features",
		len(items), view.Size, rc.Momentum, rc.BaseLR, rc.BatchSize, rc.MinLR, rc.BatchSize, rc.Epochs, rc.WeightDecay, valF.Len())
	return res, desc, nil
}

// augmentedFeatures returns the features of every item under view's
// training transform for epoch, in listing order: a batch of views is
// rendered on every CPU, then the model extracts it. An image that cannot
// be used is an error (the extraction pipeline has already dead-lettered
// and counted the bad ones).
func augmentedFeatures(ctx context.Context, model *features.Model, view transforms.LinearTrainView, items []source.Item, epoch int) (eval.Features, error) {
	s := view.Size
	n := 3 * s * s
	bs := features.DefaultBatchSize(s, s)
	dim := model.Dim(s, s)
	f := eval.Features{Dim: dim, X: make([]float32, 0, len(items)*dim), Labels: make([]int, len(items))}
	buf := make([]float32, bs*n)
	views := make([][]float32, bs)
	for lo := 0; lo < len(items); lo += bs {
		batch := items[lo:min(lo+bs, len(items))]
		if err := view.ApplyItems(ctx, batch, epoch, buf); err != nil {
			return eval.Features{}, err
		}
		for i, it := range batch {
			views[i] = buf[i*n : (i+1)*n]
			f.Labels[lo+i] = it.Label
		}
		x, err := model.Extract(views[:len(batch)], s, s)
		if err != nil {
			return eval.Features{}, err
		}
		f.X = append(f.X, x...)
	}
	return f, nil
}
