package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/sslight-go/sslight/sinks/storage"
	cocoeval "github.com/sslight-go/sslight/trainer/eval/coco"
)

func init() {
	register(&command{
		name:    "eval",
		summary: "evaluate checkpoints (kNN, linear probe, semi-supervised 1%/10%) on Beam; coco: COCO AP as pycocotools",
		run:     runEval,
	})
}

// evalModes are the evaluations `sslight eval` knows, by name; without a
// mode name it scores checkpoints (runEvalClassify).
var evalModes = &modeSet{
	command: "eval", noun: "evaluation mode",
	header: "Usage: sslight eval --checkpoint URI[,URI...] --train SOURCE --val SOURCE --out URI [flags]\n" +
		"       sslight eval <mode> [flags]\n\n" +
		"Without a mode, scores pre-trained checkpoints with the classification protocols\n" +
		"(see sslight eval --checkpoint X --help for the flags).\n\nModes:\n",
	modes: map[string]mode{
		"coco": {"COCO box / mask AP of a result list against instances ground truth (pycocotools COCOeval)", runEvalCOCO},
	},
	fallback: func(ctx context.Context, args []string) error { return runEvalClassify(ctx, args) },
}

func runEval(ctx context.Context, args []string) error { return evalModes.run(ctx, args) }

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
	fs := flag.NewFlagSet("sslight eval coco", flag.ContinueOnError)
	gtURI := fs.String("gt", "", "ground truth: a COCO instances JSON file (local path or gs://...)")
	dtURI := fs.String("dt", "", "detections: a COCO result-list JSON file (local path or gs://...)")
	iouName := fs.String("iou-type", "bbox", "what to overlap: bbox or segm")
	out := fs.String("out", "", "write the JSON report here instead of stdout (local path or gs://...)")
	arrays := fs.Bool("arrays", false, "include the full precision [T,R,K,A,M] and recall [T,K,A,M] arrays in the report")
	quiet := fs.Bool("quiet", false, "do not print the summary table on stderr")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: sslight eval coco --gt GT.json --dt DT.json [--iou-type bbox|segm] [flags]\n\n%s\n\nFlags:\n", evalCOCODescription)
		printFlags(w, fs, func(*flag.Flag) bool { return true })
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags go before it; see --help)", fs.Arg(0))
	}
	if *gtURI == "" || *dtURI == "" {
		return errors.New("--gt and --dt are required (see sslight eval coco --help)")
	}
	iou, err := cocoeval.ParseIoUType(*iouName)
	if err != nil {
		return fmt.Errorf("--iou-type: %w", err)
	}

	gtFile, err := storage.Open(ctx, *gtURI)
	if err != nil {
		return err
	}
	gt, err := cocoeval.LoadGroundTruth(gtFile, *gtURI)
	gtFile.Close()
	if err != nil {
		return err
	}
	if iou == cocoeval.IoUSegm {
		// Ground-truth mask problems surface before the results are read.
		if err := gt.PrepareMasks(); err != nil {
			return err
		}
	}
	dtFile, err := storage.Open(ctx, *dtURI)
	if err != nil {
		return err
	}
	dt, err := cocoeval.ReadResults(dtFile, *dtURI, gt, iou)
	dtFile.Close()
	if err != nil {
		return err
	}
	e, err := cocoeval.Evaluate(ctx, gt, dt, cocoeval.DefaultParams(iou))
	if err != nil {
		return err
	}

	rep := cocoeval.NewReport(e, gt, dt, *arrays)
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
