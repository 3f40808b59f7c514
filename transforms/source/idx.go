package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sslight-go/sslight/sinks/idx"
	"github.com/sslight-go/sslight/sinks/storage"
)

// DefaultIDXSplit is the IDX file prefix listed when Options.Split is empty.
const DefaultIDXSplit = "train"

// FashionMNISTClasses are Fashion-MNIST's class names, indexed by label.
var FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// fashionLabelDigests are the SHA-256 of Fashion-MNIST's label files after
// decompression (so gzip level and raw copies do not matter). MNIST uses
// the same file names, so names alone cannot tell the two apart.
var fashionLabelDigests = map[string]string{
	"bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9": "train",
	"0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34": "t10k",
}

// listIDX lists one record per image of an IDX images file. The file is
// read end to end (its gzip checksum included) without keeping pixels; a
// truncated body keeps every complete record as an item and becomes one
// rejection for the missing tail, so the usable part of a damaged download
// still trains and the loss is on record. Structural errors (wrong magic,
// dimensions over the limit, label count unlike the image count, labels
// outside the class range) fail the listing: they mean the files are not
// what the caller thinks.
func listIDX(ctx context.Context, root string, opts Options) (*Listing, error) {
	split := opts.Split
	if split == "" {
		split = DefaultIDXSplit
	}
	imagesURI, labelsURI, err := findIDX(ctx, root, split)
	if err != nil {
		return nil, err
	}
	img, err := storage.Stat(ctx, imagesURI)
	if err != nil {
		return nil, fmt.Errorf("source: images file %s: %w", imagesURI, err)
	}
	info, trunc, err := scanIDX(ctx, imagesURI)
	var fe *idx.FormatError
	if errors.As(err, &fe) {
		// Not an IDX images file at all (wrong magic, bad dimensions): no
		// record can be read, so the file itself is the one refused input,
		// recorded as a dead letter rather than failing the run.
		base := path.Base(filepath.ToSlash(imagesURI))
		return &Listing{Rejected: []Rejection{{URI: imagesURI, Key: base, Stage: StageList, Error: err.Error(), IsItem: true}}}, nil
	}
	if err != nil {
		return nil, err
	}
	complete := info.Complete

	l := &Listing{}
	var labels []uint8
	if labelsURI != "" {
		var digest string
		labels, digest, err = readIDXLabels(ctx, labelsURI, info.N, imagesURI)
		if err != nil {
			return nil, err
		}
		complete = min(complete, len(labels))
		maxLabel := 0
		for _, v := range labels {
			maxLabel = max(maxLabel, int(v))
		}
		if _, ok := fashionLabelDigests[digest]; ok || looksFashion(root) {
			if maxLabel >= len(FashionMNISTClasses) {
				i := slices.IndexFunc(labels, func(v uint8) bool { return int(v) >= len(FashionMNISTClasses) })
				return nil, fmt.Errorf("source: labels file %s: record %d has label %d, outside Fashion-MNIST's 0..%d",
					labelsURI, i, labels[i], len(FashionMNISTClasses)-1)
			}
			l.Classes = append([]string(nil), FashionMNISTClasses...)
		} else if len(labels) > 0 {
			for c := 0; c <= maxLabel; c++ {
				l.Classes = append(l.Classes, strconv.Itoa(c))
			}
		}
	}

	base := path.Base(filepath.ToSlash(imagesURI))
	width := max(6, len(strconv.Itoa(max(info.N-1, 0))))
	key := func(i int) string { return fmt.Sprintf("%s#%0*d", base, width, i) }
	l.Items = make([]Item, complete)
	for i := range complete {
		label := -1
		if labels != nil {
			label = int(labels[i])
		}
		l.Items[i] = Item{URI: imagesURI, Key: key(i), Index: i, Label: label, Size: img.Size, MTime: img.MTime, Generation: img.Generation}
	}
	if complete < info.N {
		why := fmt.Sprintf("records %d..%d of %d are missing", complete, info.N-1, info.N)
		if trunc != nil {
			why += ": " + trunc.Error()
		}
		if len(labels) < info.Complete {
			why += fmt.Sprintf("; labels file %s holds %d labels", labelsURI, len(labels))
		}
		l.Rejected = append(l.Rejected, Rejection{URI: imagesURI, Key: fmt.Sprintf("%s-%0*d", key(complete), width, info.N-1),
			Stage: StageList, Error: why, IsItem: true})
	}
	return l, nil
}

// findIDX resolves the images and labels files: root is either an images
// file ("…-images-idx3-ubyte[.gz]", its labels file beside it) or a folder
// holding <split>-images-idx3-ubyte[.gz]. A missing labels file leaves the
// records unlabeled; gzip is preferred when both forms are present.
func findIDX(ctx context.Context, root, split string) (images, labels string, err error) {
	base := path.Base(filepath.ToSlash(root))
	if strings.HasSuffix(strings.TrimSuffix(base, ".gz"), "idx3-ubyte") {
		stem := strings.TrimSuffix(base, ".gz")
		if strings.Contains(stem, "images-idx3") {
			labels, err = firstExisting(ctx, join(parent(root), strings.Replace(stem, "images-idx3", "labels-idx1", 1)))
		}
		return root, labels, err
	}
	if images, err = firstExisting(ctx, join(root, split+"-images-idx3-ubyte")); err != nil {
		return "", "", err
	}
	if images == "" {
		return "", "", fmt.Errorf("source: %w: no %s-images-idx3-ubyte[.gz] in %s: expected an IDX images file or a folder holding <split>-images-idx3-ubyte[.gz] and <split>-labels-idx1-ubyte[.gz] (MNIST layout)",
			ErrLayout, split, root)
	}
	labels, err = firstExisting(ctx, join(root, split+"-labels-idx1-ubyte"))
	return images, labels, err
}

// firstExisting returns stem+".gz" or stem, whichever exists first, or ""
// when neither does. Any other failure (storage gave up, permission) is an
// error: it must not pass for a missing file.
func firstExisting(ctx context.Context, stem string) (string, error) {
	for _, u := range []string{stem + ".gz", stem} {
		_, err := storage.Stat(ctx, u)
		if err == nil {
			return u, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("source: %w", err)
		}
	}
	return "", nil
}

// looksFashion reports whether a path names Fashion-MNIST, as the Debian
// package's /usr/share/datasets/fashion-mnist and Zalando's own
// repository layout do.
func looksFashion(p string) bool {
	p = strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(p))
	return strings.Contains(p, "fashionmnist")
}

// scanIDX checks an images file end to end. A truncated body is not an
// error here: it comes back as trunc with info.Complete set.
func scanIDX(ctx context.Context, uri string) (idx.ImagesInfo, *idx.TruncatedError, error) {
	rc, err := storage.Open(ctx, uri)
	if err != nil {
		return idx.ImagesInfo{}, nil, fmt.Errorf("source: images file %s: %w", uri, err)
	}
	defer rc.Close()
	info, err := idx.ScanImages(rc, uri)
	var te *idx.TruncatedError
	if errors.As(err, &te) {
		return info, te, nil
	}
	if err != nil {
		return info, nil, fmt.Errorf("source: %w", err)
	}
	return info, nil, nil
}

// readIDXLabels reads a labels file and the SHA-256 of its decompressed
// bytes, and checks it declares one label per image record. A truncated
// labels file returns the labels that arrived.
func readIDXLabels(ctx context.Context, uri string, records int, imagesURI string) ([]uint8, string, error) {
	rc, err := storage.Open(ctx, uri)
	if err != nil {
		return nil, "", fmt.Errorf("source: labels file %s: %w", uri, err)
	}
	defer rc.Close()
	raw, err := idx.Decompress(rc)
	if err != nil {
		return nil, "", fmt.Errorf("source: labels file %s: %w", uri, err)
	}
	h := sha256.New()
	labels, err := idx.ReadLabels(io.TeeReader(raw, h), uri)
	declared := len(labels)
	var te *idx.TruncatedError
	if errors.As(err, &te) {
		declared = te.Declared
	} else if err != nil {
		return nil, "", fmt.Errorf("source: %w", err)
	}
	if declared != records {
		return nil, "", fmt.Errorf("source: labels file %s declares %d labels, images file %s declares %d records",
			uri, declared, imagesURI, records)
	}
	return labels, hex.EncodeToString(h.Sum(nil)), nil
}
