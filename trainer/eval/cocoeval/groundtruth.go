package cocoeval

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/sslight-go/sslight/sinks/coco"
)

// GroundTruth is an instances file prepared for evaluation: images and
// categories sorted by id (the order of pycocotools' imgIds and catIds) and
// the annotations that evaluation looks at.
type GroundTruth struct {
	name       string
	images     []coco.Image
	categories []coco.Category
	imageIndex map[int64]int32
	catIndex   map[int64]int32
	anns       []gtAnn
	ignored    int

	// Masks are rasterised once, on the first segm evaluation.
	masksOnce sync.Once
	masksErr  error
}

// gtAnn is one evaluated ground-truth object.
type gtAnn struct {
	pos     int   // index in the file's annotations list, for errors
	id      int64 // annotation id; a detection matched to id 0 counts as unmatched, as in pycocotools
	img     int32 // index into GroundTruth.images
	cat     int32 // index into GroundTruth.categories
	area    float64
	crowd   bool
	box     coco.BBox
	seg     *coco.Segmentation
	mask    *coco.RLE
	maskBox coco.BBox // mask.BBox(), for rleIou's box pre-test
}

// LoadGroundTruth parses an instances file (name is used in errors) and
// prepares it with NewGroundTruth.
func LoadGroundTruth(r io.Reader, name string) (*GroundTruth, error) {
	d, err := coco.Parse(r, name)
	if err != nil {
		return nil, err
	}
	return NewGroundTruth(d, name)
}

// NewGroundTruth prepares a parsed instances file. It refuses what would
// make pycocotools' results meaningless: duplicate image, category or
// annotation ids, images without a positive size, boxes of negative size.
// Annotations of an image or category the file does not list are left out,
// as pycocotools leaves them out (IgnoredAnnotations counts them).
// Segmentations are checked only by a segm evaluation, so a box-only file
// (empty or missing segmentations) serves bbox evaluation.
func NewGroundTruth(d *coco.Dataset, name string) (*GroundTruth, error) {
	g := &GroundTruth{
		name:       name,
		imageIndex: make(map[int64]int32, len(d.Images)),
		catIndex:   make(map[int64]int32, len(d.Categories)),
	}
	bad := func(path, format string, args ...any) error {
		return &coco.PathError{Name: name, Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	firstImage := make(map[int64]int, len(d.Images))
	for i, im := range d.Images {
		if j, dup := firstImage[im.ID]; dup {
			return nil, bad(fmt.Sprintf("images[%d].id", i), "duplicate image id %d (first at images[%d])", im.ID, j)
		}
		firstImage[im.ID] = i
		if im.Width <= 0 || im.Height <= 0 {
			return nil, bad(fmt.Sprintf("images[%d]", i), "image %d: width and height must be positive, got %dx%d", im.ID, im.Width, im.Height)
		}
	}
	firstCat := make(map[int64]int, len(d.Categories))
	for i, c := range d.Categories {
		if j, dup := firstCat[c.ID]; dup {
			return nil, bad(fmt.Sprintf("categories[%d].id", i), "duplicate category id %d (first at categories[%d])", c.ID, j)
		}
		firstCat[c.ID] = i
	}
	g.images = slices.Clone(d.Images)
	slices.SortFunc(g.images, func(a, b coco.Image) int { return cmp.Compare(a.ID, b.ID) })
	for i, im := range g.images {
		g.imageIndex[im.ID] = int32(i)
	}
	g.categories = slices.Clone(d.Categories)
	slices.SortFunc(g.categories, func(a, b coco.Category) int { return cmp.Compare(a.ID, b.ID) })
	for i, c := range g.categories {
		g.catIndex[c.ID] = int32(i)
	}

	firstAnn := make(map[int64]int, len(d.Annotations))
	g.anns = make([]gtAnn, 0, len(d.Annotations))
	for i, a := range d.Annotations {
		if j, dup := firstAnn[a.ID]; dup {
			return nil, bad(fmt.Sprintf("annotations[%d].id", i), "duplicate annotation id %d (first at annotations[%d])", a.ID, j)
		}
		firstAnn[a.ID] = i
		if a.BBox[2] < 0 || a.BBox[3] < 0 {
			return nil, bad(fmt.Sprintf("annotations[%d].bbox", i), "negative size %gx%g (want [x, y, width, height])", a.BBox[2], a.BBox[3])
		}
		img, okImg := g.imageIndex[a.ImageID]
		cat, okCat := g.catIndex[a.CategoryID]
		if !okImg || !okCat {
			g.ignored++
			continue
		}
		g.anns = append(g.anns, gtAnn{pos: i, id: a.ID, img: img, cat: cat, area: a.Area,
			crowd: a.IsCrowd != 0, box: a.BBox, seg: a.Segmentation})
	}
	return g, nil
}

// Name is the file name given when loading.
func (g *GroundTruth) Name() string { return g.name }

// Images returns the images sorted by id (evaluation's image order).
func (g *GroundTruth) Images() []coco.Image { return g.images }

// Categories returns the categories sorted by id; a category's position
// is its index K in Eval's precision and recall arrays.
func (g *GroundTruth) Categories() []coco.Category { return g.categories }

// NumAnnotations is the number of annotations evaluation looks at.
func (g *GroundTruth) NumAnnotations() int { return len(g.anns) }

// IgnoredAnnotations is the number of annotations left out because their
// image or category is not listed in the file.
func (g *GroundTruth) IgnoredAnnotations() int { return g.ignored }

// PrepareMasks checks every evaluated annotation's segmentation and
// rasterises it (pycocotools' annToRLE), once; later calls return the
// first call's result. Segm evaluation calls it; calling it earlier
// reports mask problems before any other work. All checks run before any
// rasterising, so a bad file fails fast.
func (g *GroundTruth) PrepareMasks() error {
	g.masksOnce.Do(func() {
		for i := range g.anns {
			a := &g.anns[i]
			im := g.images[a.img]
			if err := checkSegmentation(a.seg, im); err != nil {
				g.masksErr = &coco.PathError{Name: g.name, Path: fmt.Sprintf("annotations[%d].segmentation", a.pos),
					Msg: fmt.Sprintf("annotation %d: %v", a.id, err)}
				return
			}
		}
		for i := range g.anns {
			a := &g.anns[i]
			im := g.images[a.img]
			m, err := coco.SegmentationRLE(a.seg, im.Height, im.Width)
			if err != nil { // checkSegmentation passed, so this is a bug
				panic(fmt.Sprintf("coco: rasterise checked annotation %d: %v", a.id, err))
			}
			a.mask, a.maskBox = m, m.BBox()
		}
	})
	return g.masksErr
}

// checkSegmentation reports why a segmentation cannot be evaluated as a
// mask of image im: absent, an empty polygon list, a first polygon of two
// points or fewer (pycocotools fails on those), coordinates far outside
// the image, or an RLE whose size or runs do not fit the image.
func checkSegmentation(s *coco.Segmentation, im coco.Image) error {
	if s == nil || (s.RLE == nil && s.Polygons == nil) {
		return fmt.Errorf("missing (segm evaluation needs a mask for every object)")
	}
	if r := s.RLE; r != nil {
		if r.Size != [2]int{im.Height, im.Width} {
			return fmt.Errorf("size [%d, %d] differs from image %d's [%d, %d] (height, width)", r.Size[0], r.Size[1], im.ID, im.Height, im.Width)
		}
		if got, want := r.Pixels(), int64(im.Height)*int64(im.Width); got != want {
			return fmt.Errorf("runs cover %d pixels, image %d has %d", got, im.ID, want)
		}
		return nil
	}
	return coco.CheckPolygons(s.Polygons, im.Height, im.Width)
}
