package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/trainer/features"
	"github.com/sslight-go/sslight/transforms"
	"github.com/sslight-go/sslight/transforms/source"
)

// referenceLinear runs the reference's linear protocol for one model:
// every epoch, the training images under the reference's training
// transform go through the frozen backbone in evaluation mode, and
// eval.ReferenceLinear trains the classifier on them; valF are the
// evaluation-transform features the pipeline already extracted.
func referenceLinear(ctx context.Context, m evalModel, spec evalSpec, trainList *source.Listing, valF eval.Features, classes int) (*eval.LinearResult, string, error) {
	model, cfg, err := featureModel(ctx, m)
	if err != nil {
		return nil, "", err
	}
	defer model.Close()
	view := transforms.LinearTrainView{Size: cfg.MultiViewsTransforms.GlobalCropSize, Mean: f32x3(cfg.Data.Mean), Std: f32x3(cfg.Data.Std),
		PixelLimit: cfg.Data.PixelLimit, Seed: spec.Seed}
	rc := spec.RefLinear
	start := time.Now()
	res, err := eval.ReferenceLinear(func(epoch int) (eval.Features, error) {
		f, err := augmentedFeatures(ctx, model, view, trainList.Items, epoch)
		if err == nil && spec.Progress != nil {
			el := time.Since(start)
			fmt.Fprintf(spec.Progress, "eval %s: reference linear epoch %d/%d (%.0f images/s, ETA %s)\n", m.Name, epoch+1, rc.Epochs,
				float64((epoch+1)*len(trainList.Items))/el.Seconds(), (el / time.Duration(epoch+1) * time.Duration(rc.Epochs-epoch-1)).Round(time.Second))
		}
		return f, err
	}, valF, classes, rc)
	if err != nil {
		return nil, "", err
	}
	desc := fmt.Sprintf("reference protocol: %d training images per epoch under RandomResizedCrop(%d, scale 0.08–1, bicubic) + flip through the frozen backbone (eval mode), linear layer N(0, 0.01) init, LARS momentum %.1f, lr %g·%d/256 cosine to %g, batch %d, %d epochs, wd %g; scored on %d evaluation-transform validation features",
		len(trainList.Items), view.Size, rc.Momentum, rc.BaseLR, rc.BatchSize, rc.MinLR, rc.BatchSize, rc.Epochs, rc.WeightDecay, valF.Len())
	return res, desc, nil
}

// featureModel builds the feature extractor of one evaluated model and the
// config its views follow.
func featureModel(ctx context.Context, m evalModel) (*features.Model, *configs.Config, error) {
	cfg := m.Config
	switch {
	case m.RawPixels:
		return features.NewRawPixels(), cfg, nil
	case m.RandomInit:
		arch := features.Arch{Name: cfg.Model.BackboneArch, Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem, PatchSize: cfg.ViT.PatchSize}
		fm, err := features.NewRandomInit(arch, uint64(cfg.Seed))
		return fm, cfg, err
	}
	fm, err := features.LoadCheckpoint(ctx, m.Checkpoint)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		if cfg, err = configs.Parse(fm.Meta().Config, "checkpoint config"); err != nil {
			return nil, nil, err
		}
	}
	return fm, cfg, nil
}

// augmentedFeatures returns the features of every item under view's
// training transform for epoch, in listing order. Decoding runs on every
// CPU while the model extracts full batches; an image that cannot be used
// is an error (the extraction pipeline has already dead-lettered and
// counted the bad ones).
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
		var wg sync.WaitGroup
		errs := make([]error, len(batch))
		workers := min(runtime.GOMAXPROCS(0), len(batch))
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sc := &transforms.EvalScratch{}
				for i := w; i < len(batch); i += workers {
					if stage, err := view.ApplyItem(ctx, batch[i], epoch, buf[i*n:(i+1)*n], sc); err != nil {
						errs[i] = fmt.Errorf("%s: %s: %w", batch[i].URI, stage, err)
					}
				}
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				return eval.Features{}, err
			}
			views[i] = buf[i*n : (i+1)*n]
			f.Labels[lo+i] = batch[i].Label
		}
		x, err := model.Extract(views[:len(batch)], s, s)
		if err != nil {
			return eval.Features{}, err
		}
		f.X = append(f.X, x...)
	}
	return f, nil
}
