package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/sslight-go/sslight/internal/cli"

	"github.com/sslight-go/sslight/pipelines/evaluate"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/detect"
	"github.com/sslight-go/sslight/trainer/eval/cocoeval"
	"github.com/sslight-go/sslight/trainer/finetune"
)

func init() {
	register(&command{name: "eval", summary: "evaluate checkpoints (kNN, linear probe, semi-supervised 1%/10%) on Beam; coco: COCO AP as pycocotools", run: runEval})
}

// evalModes are the evaluations `sslight eval` knows, by name; without a
// mode name it scores checkpoints (runEvalClassify).
var evalModes = &cli.ModeSet{
	Command: "eval", Noun: "evaluation mode",
	Header: "Usage: sslight eval --checkpoint URI[,URI...] --train SOURCE --val SOURCE --out URI [flags]\n" +
		"       sslight eval <mode> [flags]\n\n" +
		"Without a mode, scores pre-trained checkpoints with the classification protocols\n" +
		"(see sslight eval --checkpoint X --help for the flags).\n\nModes:\n",
	Modes: map[string]cli.Mode{
		"coco": {Summary: "COCO box / mask AP of a result list against instances ground truth (pycocotools COCOeval)", Run: runEvalCOCO},
	},
	Fallback: func(ctx context.Context, args []string) error { return runEvalClassify(ctx, args) },
}

func runEval(ctx context.Context, args []string) error { return evalModes.Run(ctx, args) }

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
--random-init and --raw-pixels add the paper's reference rows. --weights
teacher scores each checkpoint's teacher instead of its student (DINO's
EMA teacher, MoCo's key encoder: teacher_backbone.safetensors, or the
teacher's entries of checkpoint.safetensors in older checkpoints); every
protocol then uses it, and the report's weights column says which ran.
The classification protocols need labelled sets: for a folder of
unlabelled images use sslight embed.

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
	fs := cli.NewPipelineFlagSet("eval", "--checkpoint URI[,URI...] --train SOURCE --val SOURCE --out URI [flags]", evalClassifyDescription)
	ckpts := fs.String("checkpoint", "", "checkpoint folders or training output folders (newest checkpoint), comma-separated")
	spec := evaluate.Spec{Finetune: finetune.DefaultConfig(), Detection: evaluate.DetectionSpec{Config: detect.DefaultConfig()}, Progress: os.Stderr}
	fs.StringVar(&spec.Train, "train", "", "labelled source the kNN/linear/semi-supervised protocols train on")
	fs.StringVar(&spec.Val, "val", "", "labelled validation source")
	fs.StringVar(&spec.Format, "format", "", "source layout: imagenet, idx, folder, coco (default: the checkpoint config's DATA.FORMAT)")
	fs.StringVar(&spec.TrainSplit, "train-split", "", "split of --train (idx: train; coco: train2017)")
	fs.StringVar(&spec.ValSplit, "val-split", "", "split of --val (idx: t10k; coco: val2017)")
	protocols := fs.String("protocols", "knn,linear", "comma-separated: knn, linear, semi1, semi10, detection")
	job := evaluate.Checkpoints{}
	fs.StringVar(&job.Out, "out", "", "where features, metrics and the report go")
	fs.BoolVar(&job.RandomInit, "random-init", false, "also score the first checkpoint's architecture at random initialisation")
	fs.BoolVar(&job.RawPixels, "raw-pixels", false, "also score the raw normalised pixels")
	weights := fs.String("weights", string(checkpoint.Student), "which network of each checkpoint every protocol uses: student (the trained network)\n"+
		"or teacher (DINO's EMA teacher, MoCo's key encoder; SwAV has none)")
	fs.IntVar(&spec.DecodeMemoryMB, "decode-memory-mb", 0, "bound on the memory of the decodes running at once in each worker, estimated from the image headers; an image over it is decoded alone (0 = a quarter of the worker's memory)")
	linearEpochs := fs.Int("linear-epochs", 0, "linear probe epochs (0: the mode's default, 30 fast / 100 reference)")
	semi1List := fs.String("semi1-list", "", "semi1: the reference's subset list (semi_1percent.txt: one file name per line) instead of a class-stratified 1%")
	semi10List := fs.String("semi10-list", "", "semi10: the reference's subset list (semi_10percent.txt) instead of a class-stratified 10%")
	linearMode := fs.String("linear-mode", evaluate.LinearFast, "linear protocol: fast (precomputed features) or reference (augmented images every epoch)")
	fs.IntVar(&spec.Finetune.Epochs, "finetune-epochs", spec.Finetune.Epochs, "semi-supervised fine-tuning epochs")
	fs.Uint64Var(&spec.Seed, "seed", 0, "seed of subsets, shuffles and the random-init backbone")
	det := &spec.Detection
	fs.StringVar(&det.Train, "det-train", "", "detection: COCO-format root to fine-tune on (annotations/instances_<split>.json, <split>/)")
	fs.StringVar(&det.Val, "det-val", "", "detection: COCO-format root to score on")
	fs.StringVar(&det.TrainSplit, "det-train-split", "train", "detection: split of --det-train")
	fs.StringVar(&det.ValSplit, "det-val-split", "val", "detection: split of --det-val")
	fs.IntVar(&det.Size, "det-size", 0, "detection: square input size in px (0: the first training image's width)")
	fs.IntVar(&det.Config.Epochs, "det-epochs", det.Config.Epochs, "detection: fine-tuning epochs")
	fs.IntVar(&det.Config.BatchSize, "det-batch-size", det.Config.BatchSize, "detection: batch size")
	fs.Float64Var(&det.Config.LR, "det-lr", det.Config.LR, "detection: peak learning rate (AdamW, cosine)")
	quiet := fs.Bool("quiet", false, "no progress lines (the report is still printed)")
	fs.StringVar(&spec.Device, "device", "", deviceUsage+" (the feature extraction; fine-tuning and detection train on the CPU)")
	storageOpts := addStorageFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := storageOpts.apply(); err != nil {
		return err
	}
	if *quiet {
		spec.Progress = nil
	}
	spec.Protocols = strings.Split(*protocols, ",")
	required := []string{"checkpoint", "out"}
	if evaluate.HasClassification(spec.Protocols) {
		required = append(required, "train", "val") // the detection protocol alone needs neither
	}
	if err := fs.Require(required...); err != nil {
		return err
	}
	if err := fs.AtLeast(0, "linear-epochs", "det-size"); err != nil {
		return err
	}
	if err := fs.AtLeast(1, "finetune-epochs", "det-epochs", "det-batch-size"); err != nil {
		return err
	}
	// A missing GPU stops the command before any checkpoint is read.
	var err error
	if spec.Device, err = evaluate.PlaceModels(deviceOf(spec.Device, ""), func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }); err != nil {
		return err
	}
	w, err := checkpoint.ParseWeights(*weights)
	if err != nil {
		return fmt.Errorf("--weights: %w", err)
	}
	job.Weights = w
	spec.SemiLists = map[string]string{evaluate.ProtocolSemi1: *semi1List, evaluate.ProtocolSemi10: *semi10List}
	if err := spec.SetLinear(*linearMode, *linearEpochs); err != nil {
		return err
	}
	job.Dirs, job.Spec = strings.Split(*ckpts, ","), spec
	rep, err := job.Report(ctx)
	if err != nil {
		return err
	}
	fmt.Print(report.Markdown(rep))
	return nil
}

const evalCOCODescription = `Evaluate detections against COCO instances ground truth exactly as
pycocotools' COCOeval does (evaluate, accumulate, summarize with the default
parameters: IoU 0.50:0.05:0.95, 101 recall points, maxDets 1/10/100, areas
all / small < 32² / medium < 96² / large).

--gt is an instances file (images, annotations, categories). --dt is a
result list, a JSON array of {"image_id", "category_id", "score", "bbox":
[x, y, w, h], "segmentation": RLE or polygons}, as detectron2 and
mmdetection write it. Results are loaded as pycocotools' loadRes loads them:

  bbox  the boxes as given, area = w·h (if the first result has no box, every
        result needs a mask, whose bounding box and pixel count are used)
  segm  the masks (compressed RLE strings, uncompressed counts or polygons);
        any box is dropped first, as detectron2 does, so area = mask area

Every result's image must be in the ground truth; results of a category the
ground truth does not list are not evaluated (counted in results_ignored).
Bad input (invalid JSON, missing fields, unknown images, boxes of negative
size, masks that do not fit their image) stops the command with an error
naming the file and the JSON path before any matching starts.

The JSON report goes to stdout (or --out); "stats" are summarize()'s 12
numbers in the order of "stat_names"; per-category AP is over IoU
0.50:0.95, area all, 100 detections, -1 for a category without ground
truth. A pycocotools-style table goes to stderr unless --quiet.

Example (a test scene of this repository):
  sslight eval coco --iou-type segm --gt testdata/golden/coco/crowd_manydets/gt.json \
      --dt testdata/golden/coco/crowd_manydets/dt.json

  {"stats":[0.3324,0.4933,0.4069,0.3375,0.4021,0.3964,0.3800,0.5264,0.5264,0.5544,0.5428,0.4083],
   "stat_names":["AP","AP50","AP75","APs","APm","APl","AR1","AR10","AR100","ARs","ARm","ARl"],
   "iou_type":"segm","gt":"testdata/golden/coco/crowd_manydets/gt.json","dt":"...dt.json",
   "images":36,"categories":4,"gt_annotations":105,"gt_ignored":0,
   "results":257,"results_ignored":1,
   "per_category":[{"id":1,"name":"person","ap":0.3966},{"id":3,"name":"car","ap":0.4049},...]}
  (numbers shortened here; the report carries full double precision)`

func runEvalCOCO(ctx context.Context, args []string) error {
	fs := cli.NewFlagSet("eval coco", "--gt GT.json --dt DT.json [--iou-type bbox|segm] [flags]", evalCOCODescription)
	gtURI := fs.String("gt", "", "ground truth: a COCO instances JSON file (local path or gs://...)")
	dtURI := fs.String("dt", "", "detections: a COCO result-list JSON file (local path or gs://...)")
	iouName := fs.String("iou-type", "bbox", "what to overlap: bbox or segm")
	out := fs.String("out", "", "write the JSON report here instead of stdout (local path or gs://...)")
	arrays := fs.Bool("arrays", false, "include the full precision [T,R,K,A,M] and recall [T,K,A,M] arrays in the report")
	quiet := fs.Bool("quiet", false, "do not print the summary table on stderr")
	storageOpts := addStorageFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := storageOpts.apply(); err != nil {
		return err
	}
	if err := fs.Require("gt", "dt"); err != nil {
		return err
	}
	iou, err := cocoeval.ParseIoUType(*iouName)
	if err != nil {
		return fmt.Errorf("--iou-type: %w", err)
	}

	e, rep, err := cocoeval.EvaluateFiles(ctx, *gtURI, *dtURI, iou, *arrays)
	if err != nil {
		return err
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	b = append(b, '\n')
	if !*quiet {
		if err := cocoeval.WriteTable(os.Stderr, e); err != nil {
			return err
		}
	}
	if *out != "" {
		return storage.WriteFile(ctx, *out, b)
	}
	_, err = os.Stdout.Write(b)
	return err
}
