package transforms

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/transforms/source"
)

// DetectionImage is one image of a COCO listing prepared for the detection
// protocol: decoded, resized to a square and its objects' boxes scaled
// along.
type DetectionImage struct {
	// ID is the COCO image id, under which its detections are reported.
	ID int64
	// Pix is Size×Size RGB, interleaved, row-major.
	Pix []uint8
	// ScaleX and ScaleY convert input pixels back to the original image's
	// (original size / Size).
	ScaleX, ScaleY float64
	// Objects are the image's non-crowd annotations.
	Objects []DetectionObject
}

// DetectionObject is one annotated object.
type DetectionObject struct {
	CategoryID int64
	// Box is x, y, width, height in the resized image's pixels.
	Box [4]float64
}

// LoadDetectionImages decodes the items of a COCO listing (source.List
// with source.FormatCOCO) on every CPU, resizes each to size×size (PIL
// bicubic; an image of that size is kept as it is) and scales its boxes
// along. Crowd regions are left out: they are not objects to find, and
// COCO's evaluation ignores detections matched to them. An image that
// cannot be used is an error naming it (the first in listing order).
func LoadDetectionImages(ctx context.Context, items []source.Item, size int, pixelLimit int64) ([]DetectionImage, error) {
	if size < 1 || size > augment.MaxViewSize {
		return nil, fmt.Errorf("detection input size %d: want 1..%d", size, augment.MaxViewSize)
	}
	out := make([]DetectionImage, len(items))
	err := forEachItem(items, func(i int, sc *EvalScratch) error {
		it := items[i]
		var meta source.COCOMeta
		if err := json.Unmarshal(it.Meta, &meta); err != nil {
			return fmt.Errorf("%s: annotations: %w", it.URI, err)
		}
		release, _, err := loadItem(ctx, it, &sc.src, pixelLimit, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", it.URI, err)
		}
		defer release()
		img := &sc.src
		if img.W != size || img.H != size {
			if err := augment.Resize(&sc.view, img, size, size); err != nil {
				return fmt.Errorf("%s: resize to %d px: %w", it.URI, size, err)
			}
			img = &sc.view
		}
		sx, sy := float64(sc.src.W)/float64(size), float64(sc.src.H)/float64(size)
		im := DetectionImage{ID: meta.ImageID, Pix: slices.Clone(img.Tight()), ScaleX: sx, ScaleY: sy}
		for _, a := range meta.Annotations {
			if a.IsCrowd != 0 {
				continue
			}
			b := a.BBox
			im.Objects = append(im.Objects, DetectionObject{CategoryID: a.CategoryID, Box: [4]float64{b[0] / sx, b[1] / sy, b[2] / sx, b[3] / sy}})
		}
		out[i] = im
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
