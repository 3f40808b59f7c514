package main

import (
	"context"
	"fmt"
	"os"

	"github.com/sslight-go/sslight/internal/cli"
	"github.com/sslight-go/sslight/internal/datasets"
	"github.com/sslight-go/sslight/internal/datasets/cocosynth"
)

func init() {
	register(&command{name: "dataset", summary: "dataset utilities: export IDX (Fashion-MNIST) as PNG folders; make a COCO-format detection set from it", run: runDataset})
}

const datasetDescription = `Dataset utilities.

  sslight dataset export-idx --images FILE --labels FILE --out DIR [--per-class N]
  sslight dataset make-coco --idx-images FILE --idx-labels FILE --out DIR --images N
      [--canvas 96] [--seed S] [--split train|val] [--min-objects 1] [--max-objects 4]

export-idx writes the records of an MNIST-style IDX pair (gzip or raw) as
PNG files in the ImageNet folder layout, <out>/<NN_class>/<name>_<index>.png,
so the ordinary decode path (and torchvision's ImageFolder) reads them. Class
folders are numbered so that their sorted order equals the IDX label order.
--per-class keeps the first N records of every class (class-balanced); 0
keeps all. --out may be a local folder or gs://bucket/prefix. The PNG bytes
are deterministic: the same input gives the same files.

make-coco builds a COCO-format detection / instance-segmentation set (the
input of sslight eval's detection protocol) from the items of an IDX pair:
--images grayscale canvases of --canvas px, dark with pixel noise, each
holding 1–4 items (--min-objects / --max-objects) scaled 0.75–1.5× and
placed at random where their boxes overlap no other by more than a quarter.
Every item is an annotation: category = its class (Fashion-MNIST's names
when the file is Fashion-MNIST), bbox = the tight box of its mask, area =
the mask's pixel count, segmentation = the mask's exact outline as
polygons (holes filled; pixels later items cover are removed), iscrowd 0.
It writes <out>/<split>/<012d id>.png and
<out>/annotations/instances_<split>.json. Image i is a function of (--seed,
--split, i): the same arguments give the same bytes. Use the training IDX
files for --split train and the test files (another seed) for val:
  sslight dataset make-coco --idx-images /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
      --idx-labels /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz --out runs/coco-fmnist --images 1000
  sslight dataset make-coco --idx-images /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz \
      --idx-labels /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz --out runs/coco-fmnist --images 250 \
      --split val --seed 1`

func runDataset(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, datasetDescription)
		if len(args) == 0 {
			return fmt.Errorf("missing dataset sub-command (export-idx, make-coco)")
		}
		return nil
	}
	switch args[0] {
	case "export-idx":
		return runExportIDX(ctx, args[1:])
	case "make-coco":
		return runMakeCOCO(ctx, args[1:])
	default:
		return fmt.Errorf("unknown dataset sub-command %q (want export-idx or make-coco)", args[0])
	}
}

func runExportIDX(ctx context.Context, args []string) error {
	fs := cli.NewFlagSet("dataset export-idx", "--images FILE --labels FILE --out DIR [--per-class N]", datasetDescription)
	images := fs.String("images", "", "IDX images file (uint8 [N,H,W]), e.g. /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
	labels := fs.String("labels", "", "IDX labels file matching --images")
	out := fs.String("out", "", "output folder or gs:// prefix")
	perClass := fs.Int("per-class", 0, "keep the first N records of each class (0 = all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := fs.Require("images", "labels", "out"); err != nil {
		return err
	}
	if err := fs.AtLeast(0, "per-class"); err != nil {
		return err
	}
	n, err := datasets.ExportIDX(ctx, *images, *labels, *out, *perClass)
	if err != nil {
		return err
	}
	fmt.Printf("exported %d images to %s\n", n, *out)
	return nil
}

func runMakeCOCO(ctx context.Context, args []string) error {
	cfg := cocosynth.DefaultConfig()
	fs := cli.NewFlagSet("dataset make-coco", "--idx-images FILE --idx-labels FILE --out DIR --images N [flags]", datasetDescription)
	images := fs.String("idx-images", "", "IDX images file of the items (uint8 [N,H,W]), e.g. /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
	labels := fs.String("idx-labels", "", "IDX labels file matching --idx-images")
	out := fs.String("out", "", "data set root (local folder or gs:// prefix)")
	fs.IntVar(&cfg.Images, "images", 0, "number of images to generate")
	fs.IntVar(&cfg.Canvas, "canvas", cfg.Canvas, "image side in pixels")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of every draw")
	fs.StringVar(&cfg.Split, "split", cfg.Split, "split name: the image folder and annotations/instances_<split>.json")
	fs.IntVar(&cfg.MinObjects, "min-objects", cfg.MinObjects, "fewest items per image")
	fs.IntVar(&cfg.MaxObjects, "max-objects", cfg.MaxObjects, "most items per image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := fs.Require("idx-images", "idx-labels", "out", "images"); err != nil {
		return err
	}
	if err := fs.AtLeast(1, "images", "canvas", "max-objects"); err != nil {
		return err
	}
	if err := fs.AtLeast(0, "min-objects"); err != nil {
		return err
	}
	set, err := datasets.MakeCOCO(ctx, *images, *labels, *out, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d images with %d objects to %s (%s)\n", len(set.Dataset.Images), len(set.Dataset.Annotations), *out, cocosynth.AnnotationsPath(cfg.Split))
	return nil
}
