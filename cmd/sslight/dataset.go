package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path"
	"strings"

	"github.com/sslight-go/sslight/sinks/coco/synth"
	"github.com/sslight-go/sslight/sinks/idx"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/transforms/source"
)

func init() {
	register(&command{
		name:    "dataset",
		summary: "dataset utilities: export IDX (Fashion-MNIST) as PNG folders; make a COCO-format detection set from it",
		run:     runDataset,
	})
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
	fs := newFlagSet("dataset export-idx", "--images FILE --labels FILE --out DIR [--per-class N]", datasetDescription)
	images := fs.String("images", "", "IDX images file (uint8 [N,H,W]), e.g. /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
	labels := fs.String("labels", "", "IDX labels file matching --images")
	out := fs.String("out", "", "output folder or gs:// prefix")
	perClass := fs.Int("per-class", 0, "keep the first N records of each class (0 = all)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *images == "" || *labels == "" || *out == "" {
		return fmt.Errorf("--images, --labels and --out are required (see --help)")
	}
	n, err := ExportIDX(ctx, *images, *labels, *out, *perClass)
	if err != nil {
		return err
	}
	fmt.Printf("exported %d images to %s\n", n, *out)
	return nil
}

// ExportIDX writes the records of an IDX images/labels pair as PNGs in the
// ImageNet layout under out and returns how many it wrote.
func ExportIDX(ctx context.Context, imagesURI, labelsURI, out string, perClass int) (int, error) {
	m, l, err := readIDXPair(ctx, imagesURI, labelsURI)
	if err != nil {
		return 0, err
	}
	names := idxClassNames(imagesURI, maxLabel(l)+1)
	stem := strings.SplitN(path.Base(strings.ReplaceAll(imagesURI, "\\", "/")), "-", 2)[0]
	kept := map[uint8]int{}
	written := 0
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	for i := 0; i < m.N; i++ {
		lab := l[i]
		if perClass > 0 && kept[lab] >= perClass {
			continue
		}
		kept[lab]++
		g := &image.Gray{Pix: m.Record(i), Stride: m.W, Rect: image.Rect(0, 0, m.W, m.H)}
		buf.Reset()
		if err := enc.Encode(&buf, g); err != nil {
			return written, fmt.Errorf("encode record %d of %s: %w", i, imagesURI, err)
		}
		dir := fmt.Sprintf("%02d_%s", lab, folderName(names[lab]))
		uri := storage.Join(out, dir, fmt.Sprintf("%s_%06d.png", stem, i))
		if err := storage.WriteFile(ctx, uri, buf.Bytes()); err != nil {
			return written, err
		}
		written++
	}
	return written, nil
}

func runMakeCOCO(ctx context.Context, args []string) error {
	def := synth.DefaultConfig()
	fs := newFlagSet("dataset make-coco", "--idx-images FILE --idx-labels FILE --out DIR --images N [flags]", datasetDescription)
	images := fs.String("idx-images", "", "IDX images file of the items (uint8 [N,H,W]), e.g. /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
	labels := fs.String("idx-labels", "", "IDX labels file matching --idx-images")
	out := fs.String("out", "", "data set root (local folder or gs:// prefix)")
	n := fs.Int("images", 0, "number of images to generate")
	canvas := fs.Int("canvas", def.Canvas, "image side in pixels")
	seed := fs.Uint64("seed", 0, "seed of every draw")
	split := fs.String("split", def.Split, "split name: the image folder and annotations/instances_<split>.json")
	minObj := fs.Int("min-objects", def.MinObjects, "fewest items per image")
	maxObj := fs.Int("max-objects", def.MaxObjects, "most items per image")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *images == "" || *labels == "" || *out == "" || *n <= 0 {
		return fmt.Errorf("--idx-images, --idx-labels, --out and a positive --images are required (see --help)")
	}
	cfg := def
	cfg.Images, cfg.Canvas, cfg.Seed, cfg.Split, cfg.MinObjects, cfg.MaxObjects = *n, *canvas, *seed, *split, *minObj, *maxObj
	set, err := MakeCOCO(ctx, *images, *labels, *out, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d images with %d objects to %s (%s)\n", len(set.Dataset.Images), len(set.Dataset.Annotations), *out, synth.AnnotationsPath(cfg.Split))
	return nil
}

// MakeCOCO generates a synthetic COCO split from the items of an IDX
// images/labels pair and writes it under out.
func MakeCOCO(ctx context.Context, imagesURI, labelsURI, out string, cfg synth.Config) (*synth.Set, error) {
	m, l, err := readIDXPair(ctx, imagesURI, labelsURI)
	if err != nil {
		return nil, err
	}
	pix := make([]uint8, 0, m.N*m.H*m.W)
	for i := 0; i < m.N; i++ {
		pix = append(pix, m.Record(i)...)
	}
	items := synth.Items{N: m.N, H: m.H, W: m.W, Pix: pix, Labels: l, Classes: idxClassNames(imagesURI, maxLabel(l)+1)}
	set, err := synth.Generate(items, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", imagesURI, err)
	}
	if err := set.Write(ctx, out); err != nil {
		return nil, err
	}
	return set, nil
}

// readIDXPair reads an IDX images file and its labels and checks that
// they match.
func readIDXPair(ctx context.Context, imagesURI, labelsURI string) (*idx.Images, []uint8, error) {
	imgs, err := readIDX(ctx, imagesURI, func(b []byte, name string) (any, error) {
		r, err := idx.Decompress(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return idx.ReadImages(r, name)
	})
	if err != nil {
		return nil, nil, err
	}
	lbls, err := readIDX(ctx, labelsURI, func(b []byte, name string) (any, error) {
		r, err := idx.Decompress(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return idx.ReadLabels(r, name)
	})
	if err != nil {
		return nil, nil, err
	}
	m, l := imgs.(*idx.Images), lbls.([]uint8)
	if len(l) != m.N {
		return nil, nil, fmt.Errorf("%s has %d labels but %s has %d images", labelsURI, len(l), imagesURI, m.N)
	}
	return m, l, nil
}

func readIDX(ctx context.Context, uri string, parse func([]byte, string) (any, error)) (any, error) {
	b, err := storage.ReadFile(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	v, err := parse(b, uri)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", uri, err)
	}
	return v, nil
}

func maxLabel(l []uint8) int {
	m := 0
	for _, v := range l {
		m = max(m, int(v))
	}
	return m
}

// idxClassNames names n IDX labels: Fashion-MNIST's class names when the
// file looks like Fashion-MNIST (its path says so and it has 10 classes),
// else the label digits.
func idxClassNames(uri string, n int) []string {
	if n == len(source.FashionMNISTClasses) && strings.Contains(strings.ToLower(uri), "fashion") {
		return source.FashionMNISTClasses
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprint(i)
	}
	return names
}

// folderName turns a class name into a portable folder name: letters,
// digits and '-' kept, everything else '_'.
func folderName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return '_'
	}, s)
}
