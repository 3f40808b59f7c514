// Package datasets makes data sets out of others, for demos and tests
// that must run without the real thing: ExportIDX writes an MNIST-style
// IDX pair (Fashion-MNIST) as an ImageNet-layout folder of PNG files, and
// MakeCOCO composes a COCO-format detection set from its items (the
// generator itself is cocosynth). Both write through sinks/storage, so the
// output may be a local folder or a gs:// prefix, and both are
// deterministic: the same input gives the same bytes.
package datasets

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"path"
	"strconv"
	"strings"

	"github.com/sslight-go/sslight/internal/datasets/cocosynth"
	"github.com/sslight-go/sslight/sinks/idx"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/transforms/source"
)

// ExportIDX writes the records of an IDX images/labels pair as PNGs in the
// ImageNet layout under out, <out>/<NN_class>/<stem>_<index>.png, and
// returns how many it wrote. Class folders are numbered so that their
// sorted order is the label order; perClass > 0 keeps the first perClass
// records of every class (0 keeps all).
func ExportIDX(ctx context.Context, imagesURI, labelsURI, out string, perClass int) (int, error) {
	m, l, err := readIDXPair(ctx, imagesURI, labelsURI)
	if err != nil {
		return 0, err
	}
	names := classNames(imagesURI, maxLabel(l)+1)
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
		uri := storage.Join(out, ClassFolder(int(lab), len(names)-1, names[lab]), fmt.Sprintf("%s_%06d.png", stem, i))
		if err := storage.WriteFile(ctx, uri, buf.Bytes()); err != nil {
			return written, err
		}
		written++
	}
	return written, nil
}

// MakeCOCO generates a synthetic COCO split from the items of an IDX
// images/labels pair (cocosynth.Generate with cfg) and writes it under out
// in the COCO layout.
func MakeCOCO(ctx context.Context, imagesURI, labelsURI, out string, cfg cocosynth.Config) (*cocosynth.Set, error) {
	m, l, err := readIDXPair(ctx, imagesURI, labelsURI)
	if err != nil {
		return nil, err
	}
	pix := make([]uint8, 0, m.N*m.H*m.W)
	for i := 0; i < m.N; i++ {
		pix = append(pix, m.Record(i)...)
	}
	items := cocosynth.Items{N: m.N, H: m.H, W: m.W, Pix: pix, Labels: l, Classes: classNames(imagesURI, maxLabel(l)+1)}
	set, err := cocosynth.Generate(items, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", imagesURI, err)
	}
	if err := set.Write(ctx, out); err != nil {
		return nil, err
	}
	return set, nil
}

// readIDXPair reads an IDX images file and its labels (gzip or raw) and
// checks that they match.
func readIDXPair(ctx context.Context, imagesURI, labelsURI string) (*idx.Images, []uint8, error) {
	imgs, err := readIDX(ctx, imagesURI, func(r *bytes.Reader, name string) (*idx.Images, error) {
		d, err := idx.Decompress(r)
		if err != nil {
			return nil, err
		}
		return idx.ReadImages(d, name)
	})
	if err != nil {
		return nil, nil, err
	}
	lbls, err := readIDX(ctx, labelsURI, func(r *bytes.Reader, name string) ([]uint8, error) {
		d, err := idx.Decompress(r)
		if err != nil {
			return nil, err
		}
		return idx.ReadLabels(d, name)
	})
	if err != nil {
		return nil, nil, err
	}
	if len(lbls) != imgs.N {
		return nil, nil, fmt.Errorf("%s has %d labels but %s has %d images", labelsURI, len(lbls), imagesURI, imgs.N)
	}
	return imgs, lbls, nil
}

func readIDX[T any](ctx context.Context, uri string, parse func(*bytes.Reader, string) (T, error)) (T, error) {
	var zero T
	b, err := storage.ReadFile(ctx, uri)
	if err != nil {
		return zero, fmt.Errorf("read %s: %w", uri, err)
	}
	v, err := parse(bytes.NewReader(b), uri)
	if err != nil {
		return zero, fmt.Errorf("parse %s: %w", uri, err)
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

// classNames names n IDX labels: Fashion-MNIST's class names when the
// file looks like Fashion-MNIST (its path says so and it has 10 classes),
// else the label digits.
func classNames(uri string, n int) []string {
	if n == len(source.FashionMNISTClasses) && strings.Contains(strings.ToLower(uri), "fashion") {
		return source.FashionMNISTClasses
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprint(i)
	}
	return names
}

// ClassFolder is the folder ExportIDX writes class label's images to:
// the label zero-padded to the digits of the largest label (at least two),
// so that folders sort in label order as ImageFolder sorts them, and the
// class name made portable (letters, digits and '-' kept, anything else
// '_'): "00_T-shirt_top".
func ClassFolder(label, maxLabel int, name string) string {
	width := max(2, len(strconv.Itoa(maxLabel)))
	return fmt.Sprintf("%0*d_%s", width, label, strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return '_'
	}, name))
}
