package cocoeval

import (
	"fmt"
	"io"

	"github.com/sslight-go/sslight/sinks/coco"
)

// Detections is a result list loaded against a ground truth for one IoU
// type, as pycocotools' COCO.loadRes loads it.
type Detections struct {
	gt      *GroundTruth // the ground truth the indices below refer to
	name    string
	iouType IoUType
	list    []detection
	total   int
	ignored int
}

// detection is one evaluated result.
type detection struct {
	img     int32 // index into GroundTruth.images
	cat     int32 // index into GroundTruth.categories
	score   float64
	area    float64
	box     coco.BBox
	mask    *coco.RLE
	maskBox coco.BBox
}

// ReadResults parses a result list (name is used in errors) and loads it
// with LoadResults.
func ReadResults(r io.Reader, name string, gt *GroundTruth, t IoUType) (*Detections, error) {
	res, err := coco.ParseResults(r, name)
	if err != nil {
		return nil, err
	}
	return LoadResults(res, name, gt, t)
}

// LoadResults checks a result list against gt and derives what evaluation
// needs, with COCO.loadRes's rules:
//
//   - every result's image must be in gt (loadRes asserts this); results of
//     a category gt does not list are not evaluated (IgnoredResults counts
//     them);
//   - for IoUBBox, when the first result has a box every result needs one
//     and its area is width×height; otherwise every result needs a mask,
//     whose pixel count is the area and whose bounding box stands in for a
//     missing box;
//   - for IoUSegm every result needs a mask; any box is dropped first, as
//     detectron2 does before loadRes, so the area is the mask's pixel count.
//
// Masks are pycocotools' compressed RLE strings, uncompressed counts or
// polygons (rasterised at the image size); an RLE must have its image's
// size. Boxes of negative size are refused. An empty list evaluates as no
// detections.
func LoadResults(res []coco.Result, name string, gt *GroundTruth, t IoUType) (*Detections, error) {
	if _, err := ParseIoUType(string(t)); err != nil {
		return nil, err
	}
	bad := func(i int, key, format string, args ...any) error {
		return &coco.PathError{Name: name, Path: fmt.Sprintf("[%d]%s", i, key), Msg: fmt.Sprintf(format, args...)}
	}
	// Everything cheap is checked for every result before any mask is
	// decoded.
	boxMode := t == IoUBBox && len(res) > 0 && res[0].BBox != nil
	for i, r := range res {
		img, ok := gt.imageIndex[r.ImageID]
		if !ok {
			return nil, bad(i, ".image_id", "image %d is not in the ground truth %s", r.ImageID, gt.name)
		}
		if b := r.BBox; b != nil && (b[2] < 0 || b[3] < 0) {
			return nil, bad(i, ".bbox", "negative size %gx%g (want [x, y, width, height])", b[2], b[3])
		}
		switch {
		case boxMode && r.BBox == nil:
			return nil, bad(i, "", "has no bbox, but the first result has one (bbox evaluation needs a box for every result)")
		case !boxMode && r.Segmentation == nil:
			if t == IoUSegm {
				return nil, bad(i, "", "has no segmentation (segm evaluation needs a mask for every result)")
			}
			return nil, bad(i, "", "has no segmentation, and the first result has no bbox (then every result needs a mask)")
		case !boxMode:
			if err := checkSegmentation(r.Segmentation, gt.images[img]); err != nil {
				return nil, bad(i, ".segmentation", "%v", err)
			}
		}
	}
	d := &Detections{gt: gt, name: name, iouType: t, total: len(res), list: make([]detection, 0, len(res))}
	for _, r := range res {
		img := gt.imageIndex[r.ImageID]
		cat, ok := gt.catIndex[r.CategoryID]
		if !ok {
			d.ignored++
			continue
		}
		det := detection{img: img, cat: cat, score: r.Score}
		if boxMode {
			det.box = *r.BBox
			det.area = float64(det.box[2] * det.box[3])
		} else {
			im := gt.images[img]
			m, err := coco.SegmentationRLE(r.Segmentation, im.Height, im.Width)
			if err != nil { // checkSegmentation passed, so this is a bug
				panic(fmt.Sprintf("coco: rasterise checked result: %v", err))
			}
			det.mask, det.maskBox = m, m.BBox()
			det.area = float64(m.Area())
			det.box = det.maskBox
			if t == IoUBBox && r.BBox != nil {
				det.box = *r.BBox
			}
		}
		d.list = append(d.list, det)
	}
	return d, nil
}

// Name is the file name given when loading.
func (d *Detections) Name() string { return d.name }

// IoUType is the evaluation the results were loaded for.
func (d *Detections) IoUType() IoUType { return d.iouType }

// NumResults is the length of the result list.
func (d *Detections) NumResults() int { return d.total }

// IgnoredResults is the number of results whose category is not in the
// ground truth; evaluation does not look at them.
func (d *Detections) IgnoredResults() int { return d.ignored }
