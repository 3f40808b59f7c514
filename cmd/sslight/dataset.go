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

	"github.com/sslight-go/sslight/sinks/idx"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/transforms/source"
)

func init() {
	register(&command{
		name:    "dataset",
		summary: "dataset utilities: export IDX (Fashion-MNIST) as an ImageNet-layout folder of PNGs",
		run:     runDataset,
	})
}

const datasetDescription = `Dataset utilities.

  sslight dataset export-idx --images FILE --labels FILE --out DIR [--per-class N]

export-idx writes the records of an MNIST-style IDX pair (gzip or raw) as
PNG files in the ImageNet folder layout, <out>/<NN_class>/<name>_<index>.png,
so the ordinary decode path (and torchvision's ImageFolder) reads them. Class
folders are numbered so that their sorted order equals the IDX label order.
--per-class keeps the first N records of every class (class-balanced); 0
keeps all. --out may be a local folder or gs://bucket/prefix. The PNG bytes
are deterministic: the same input gives the same files.`

func runDataset(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, datasetDescription)
		if len(args) == 0 {
			return fmt.Errorf("missing dataset sub-command (export-idx)")
		}
		return nil
	}
	switch args[0] {
	case "export-idx":
		return runExportIDX(ctx, args[1:])
	default:
		return fmt.Errorf("unknown dataset sub-command %q (want export-idx)", args[0])
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
	imgs, err := readIDX(ctx, imagesURI, func(b []byte, name string) (any, error) {
		r, err := idx.Decompress(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return idx.ReadImages(r, name)
	})
	if err != nil {
		return 0, err
	}
	lbls, err := readIDX(ctx, labelsURI, func(b []byte, name string) (any, error) {
		r, err := idx.Decompress(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return idx.ReadLabels(r, name)
	})
	if err != nil {
		return 0, err
	}
	m, l := imgs.(*idx.Images), lbls.([]uint8)
	if len(l) != m.N {
		return 0, fmt.Errorf("%s has %d labels but %s has %d images", labelsURI, len(l), imagesURI, m.N)
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
