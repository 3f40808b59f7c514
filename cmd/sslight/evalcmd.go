package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/detect"
	"github.com/sslight-go/sslight/trainer/eval"
	"github.com/sslight-go/sslight/trainer/finetune"
)

const evalClassifyDescription = `Score pre-trained checkpoints with the paper's classification protocols.

For every model, a Beam pipeline extracts features of the --train and --val
images with the evaluation transform (Resize to S·256/224, CenterCrop S, S =
the config's GLOBAL_CROP_SIZE; model loaded once per worker), then:
  knn     DINO's weighted kNN on L2-normalised features, T = 0.07,
          k ∈ {10, 20, 100, 200} (the table shows k = 20)
  linear  --linear-mode fast (default): a linear classifier on the frozen
          precomputed features (standardised, SGD + cosine, 30 epochs).
          --linear-mode reference: the reference's protocol — every epoch the
          training images under RandomResizedCrop (0.08–1) + flip go through
          the frozen backbone (eval mode) into a linear layer (N(0, 0.01)
          init, LARS, lr 0.05·batch/256 cosine to 1e-6, batch 512, wd 0,
          100 epochs): one backbone pass per image and epoch, so 100× the
          extraction time. The report says which mode a number came from.
  semi1   fine-tune backbone + linear head on a class-stratified 1% of the
  semi10  train labels (10%), or on the images --semi1-list / --semi10-list
          name (the reference's ImageNet semi_1percent.txt / semi_10percent.txt:
          one file name per line), score the whole validation set (in
          memory: small data sets only)
  detection  a CenterNet-style detector (class heatmap, box size and offset
          heads on the last feature map, upsampled once) fine-tuned with the
          backbone on the COCO-format --det-train set; box AP, AP50, AP75
          (APs/m/l in metrics.json) of its --det-val detections by
          pycocotools' COCOeval. CNN backbones only; not for --raw-pixels.
          sslight dataset make-coco builds such sets from Fashion-MNIST.
          Alone, it needs no --train / --val.
--random-init and --raw-pixels add the paper's reference rows.

Writes under --out: features/<model>/{train,val}/ (feature parts, dead
letters), detection/<model>/detections.json (COCO results), metrics.json
(every number with checkpoint, config hash, data set, protocol settings,
wall time), metrics.csv, report.md (paper-style table with SSLight −
baseline deltas) and accuracy.png.

Examples:
  sslight eval --checkpoint runs/x/dino_fmnist_sslight/pretrain --train runs/bucket/fashion-mnist/train \
      --val runs/bucket/fashion-mnist/test --format imagenet --protocols knn,linear --random-init --out runs/x/eval
  sslight eval --checkpoint gs://b/ckpt/a,gs://b/ckpt/b --train /usr/share/datasets/fashion-mnist --train-split train \
      --val /usr/share/datasets/fashion-mnist --val-split t10k --format idx --out gs://b/eval
  sslight eval --checkpoint runs/x/dino_fmnist_sslight/pretrain --protocols detection --random-init \
      --det-train runs/coco-fmnist --det-val runs/coco-fmnist --out runs/x/eval-det`

func runEvalClassify(ctx context.Context, args []string) error {
	fs := newPipelineFlagSet("eval", "--checkpoint URI[,URI...] --train SOURCE --val SOURCE --out URI [flags]", evalClassifyDescription)
	ckpts := fs.String("checkpoint", "", "checkpoint folders or training output folders (newest checkpoint), comma-separated")
	train := fs.String("train", "", "labelled source the kNN/linear/semi-supervised protocols train on")
	val := fs.String("val", "", "labelled validation source")
	format := fs.String("format", "", "source layout: imagenet, idx, folder, coco (default: the checkpoint config's DATA.FORMAT)")
	trainSplit := fs.String("train-split", "", "split of --train (idx: train; coco: train2017)")
	valSplit := fs.String("val-split", "", "split of --val (idx: t10k; coco: val2017)")
	protocols := fs.String("protocols", "knn,linear", "comma-separated: knn, linear, semi1, semi10, detection")
	out := fs.String("out", "", "where features, metrics and the report go")
	randomInit := fs.Bool("random-init", false, "also score the first checkpoint's architecture at random initialisation")
	rawPixels := fs.Bool("raw-pixels", false, "also score the raw normalised pixels")
	linearEpochs := fs.Int("linear-epochs", 0, "linear probe epochs (0: the mode's default, 30 fast / 100 reference)")
	semi1List := fs.String("semi1-list", "", "semi1: the reference's subset list (semi_1percent.txt: one file name per line) instead of a class-stratified 1%")
	semi10List := fs.String("semi10-list", "", "semi10: the reference's subset list (semi_10percent.txt) instead of a class-stratified 10%")
	linearMode := fs.String("linear-mode", linearFast, "linear protocol: fast (precomputed features) or reference (augmented images every epoch)")
	ftEpochs := fs.Int("finetune-epochs", finetune.DefaultConfig().Epochs, "semi-supervised fine-tuning epochs")
	seed := fs.Uint64("seed", 0, "seed of subsets, shuffles and the random-init backbone")
	detDefaults := detect.DefaultConfig()
	detTrain := fs.String("det-train", "", "detection: COCO-format root to fine-tune on (annotations/instances_<split>.json, <split>/)")
	detVal := fs.String("det-val", "", "detection: COCO-format root to score on")
	detTrainSplit := fs.String("det-train-split", "train", "detection: split of --det-train")
	detValSplit := fs.String("det-val-split", "val", "detection: split of --det-val")
	detSize := fs.Int("det-size", 0, "detection: square input size in px (0: the first training image's width)")
	detEpochs := fs.Int("det-epochs", detDefaults.Epochs, "detection: fine-tuning epochs")
	detBatch := fs.Int("det-batch-size", detDefaults.BatchSize, "detection: batch size")
	detLR := fs.Float64("det-lr", detDefaults.LR, "detection: peak learning rate (AdamW, cosine)")
	if err := fs.parse(args); err != nil {
		return err
	}
	protoList := strings.Split(*protocols, ",")
	if *ckpts == "" || *out == "" || (hasClassification(protoList) && (*train == "" || *val == "")) {
		return errors.New("--checkpoint, --out and (for the classification protocols) --train and --val are required (see sslight eval --checkpoint X --help)")
	}
	spec := evalSpec{Train: *train, Val: *val, Format: *format, TrainSplit: *trainSplit, ValSplit: *valSplit,
		Protocols: protoList, Seed: *seed, Linear: eval.DefaultLinearConfig(), Finetune: finetune.DefaultConfig(), Progress: os.Stderr,
		Detection: detectSpec{Train: *detTrain, Val: *detVal, TrainSplit: *detTrainSplit, ValSplit: *detValSplit, Size: *detSize, Config: detDefaults}}
	switch *linearMode {
	case linearFast:
		if *linearEpochs > 0 {
			spec.Linear.Epochs = *linearEpochs
		}
	case linearReference:
		spec.LinearMode, spec.RefLinear = linearReference, eval.DefaultReferenceLinearConfig()
		spec.RefLinear.Seed = *seed
		if *linearEpochs > 0 {
			spec.RefLinear.Epochs = *linearEpochs
		}
	default:
		return fmt.Errorf("--linear-mode %q: want %s or %s", *linearMode, linearFast, linearReference)
	}
	spec.Finetune.Epochs = *ftEpochs
	spec.SemiLists = map[string]string{protoSemi1: *semi1List, protoSemi10: *semi10List}
	spec.Detection.Config.Epochs, spec.Detection.Config.BatchSize, spec.Detection.Config.LR = *detEpochs, *detBatch, *detLR
	var models []evalModel
	var first *configs.Config
	for _, c := range strings.Split(*ckpts, ",") {
		cfg, meta, err := checkpointConfig(ctx, c)
		if err != nil {
			return fmt.Errorf("--checkpoint %s: %w", c, err)
		}
		if first == nil {
			first = cfg
		}
		models = append(models, evalModel{Name: modelName(cfg), Method: meta.Method, Setting: settingOf(cfg), Checkpoint: c, Config: cfg})
	}
	var refs []evalModel
	if *rawPixels {
		refs = append(refs, evalModel{Name: "raw pixels", Setting: report.SettingRawPixels, RawPixels: true, Config: first})
	}
	if *randomInit {
		rc := first.Clone()
		if err := rc.Set("SEED", fmt.Sprint(*seed)); err != nil {
			return err
		}
		refs = append(refs, evalModel{Name: "random init", Setting: report.SettingRandomInit, RandomInit: true, Config: rc})
	}
	rows, err := evaluateModels(ctx, append(refs, models...), spec, *out)
	if err != nil {
		return err
	}
	rep := &report.Report{RunID: uuid.Must(uuid.NewV7()).String(), Created: time.Now().UTC().Format(time.RFC3339), Dataset: rows[0].Dataset, Rows: rows}
	if slices.Contains(protoList, protoLinear) {
		if spec.LinearMode == linearReference {
			rep.Notes = append(rep.Notes, fmt.Sprintf("linear: the reference's protocol (augmented training images through the frozen backbone, LARS, %d epochs)", spec.RefLinear.Epochs))
		} else {
			rep.Notes = append(rep.Notes, "linear: fast mode (linear classifier on frozen precomputed features), not the reference's augmented-image protocol")
		}
	}
	if slices.Contains(protoList, protoDetection) {
		rep.Notes = append(rep.Notes, "AP: CenterNet-style detector fine-tuned with the backbone on --det-train, box AP×100 of its --det-val detections (pycocotools COCOeval)")
	}
	if err := writeReport(ctx, *out, rep); err != nil {
		return err
	}
	fmt.Print(report.Markdown(rep))
	return nil
}

// modelName is the table's name for a trained config: "DINO" or
// "DINO + SSLight" (an SSLight setting is recognised by its re-balanced
// LAMBDAS differing from the plain view average).
func modelName(cfg *configs.Config) string {
	if settingOf(cfg) == report.SettingSSLight {
		return cfg.SSLMethod + " + SSLight"
	}
	return cfg.SSLMethod
}

// settingOf says whether a config is the baseline or the SSLight recipe:
// the baseline's loss averages all view pairs (LAMBDAS = [1/(1+L),
// L/(1+L)] for L local views), SSLight re-balances it.
func settingOf(cfg *configs.Config) string {
	l := cfg.MultiViewsTransforms.Lambdas
	n := float64(cfg.MultiViewsTransforms.LocalCropsNumber)
	if len(l) == 2 && (abs(l[0]-1/(1+n)) > 1e-3) {
		return report.SettingSSLight
	}
	return report.SettingBaseline
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// writeReport writes the report files and a bar plot of top-1 accuracies.
func writeReport(ctx context.Context, out string, rep *report.Report) error {
	if err := report.Write(ctx, out, rep); err != nil {
		return err
	}
	var labels []string
	var series []report.Series
	for _, c := range []report.Column{{Key: "knn_top1", Title: "kNN top-1"}, {Key: "linear_top1", Title: "linear top-1"},
		{Key: "semi1_top1", Title: "1% top-1"}, {Key: "semi10_top1", Title: "10% top-1"}} {
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
	for _, r := range rep.Rows {
		labels = append(labels, r.Name)
	}
	if len(series) == 0 {
		return nil
	}
	return report.BarPlot(ctx, storage.Join(out, "accuracy.png"), "top-1 accuracy", "%", labels, series)
}
