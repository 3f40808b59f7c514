package coco

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
)

// BoxSlack is how far, in pixels, a box may reach outside its image before
// Check refuses it. COCO's own boxes overshoot by float rounding (x+w of
// 640.01 on a 640-wide image); a full pixel covers that and nothing more.
const BoxSlack = 1.0

// Record kinds a Problem can refer to.
const (
	KindImage      = "image"
	KindAnnotation = "annotation"
	KindCategory   = "category"
)

// Problem is one record Check refused and why.
type Problem struct {
	Path    string // JSON path of the record: "annotations[12]"
	Kind    string // KindImage, KindAnnotation or KindCategory
	Index   int    // the record's position in its list (12 above)
	ID      int64  // the record's own id
	ImageID int64  // the image an annotation belongs to; for images, the id again
	Reason  string
}

// String renders the problem as "path (kind id N): reason".
func (p Problem) String() string {
	return fmt.Sprintf("%s (%s id %d): %s", p.Path, p.Kind, p.ID, p.Reason)
}

// Index is a checked data set: the records that passed Check, with lookups.
type Index struct {
	// Images are the accepted images, in file order.
	Images []Image
	// Categories are the accepted categories sorted by id; a category's
	// position here is its contiguous class index.
	Categories []Category
	// Annotations are the accepted annotations of each accepted image, in
	// file order. An image without annotations has no entry.
	Annotations map[int64][]Annotation

	image    map[int64]int // image id → position in Images
	category map[int64]int // category id → position in Categories
}

// Image returns the accepted image with the given id.
func (ix *Index) Image(id int64) (Image, bool) {
	i, ok := ix.image[id]
	if !ok {
		return Image{}, false
	}
	return ix.Images[i], true
}

// CategoryIndex returns the contiguous class index (0-based, in id order)
// of an accepted category id.
func (ix *Index) CategoryIndex(id int64) (int, bool) {
	i, ok := ix.category[id]
	return i, ok
}

// NumAnnotations returns the number of accepted annotations.
func (ix *Index) NumAnnotations() int {
	n := 0
	for _, a := range ix.Annotations {
		n += len(a)
	}
	return n
}

// Check applies COCO's semantic rules to d and returns the consistent part
// as an Index, and one Problem per refused record, in file order within
// each kind (categories, then images, then annotations). Where ids or file
// names repeat, the first record keeps them and later ones are refused.
//
// Categories: unique ids. Images: unique ids, positive width and height,
// a unique file_name that is a clean relative path. Annotations: unique
// ids; image and category ids that name accepted records; non-negative
// box size and area; the box inside its image within BoxSlack; iscrowd 0 or
// 1; polygons with an even number of at least 6 coordinates (an empty
// polygon list, which box-only exports write, means no mask); an RLE the
// size of its image whose runs cover it exactly.
func Check(d *Dataset) (*Index, []Problem) {
	var probs []Problem
	ix := &Index{
		Annotations: map[int64][]Annotation{},
		image:       make(map[int64]int, len(d.Images)),
		category:    make(map[int64]int, len(d.Categories)),
	}

	seenCat := make(map[int64]bool, len(d.Categories))
	for i, c := range d.Categories {
		if seenCat[c.ID] {
			probs = append(probs, Problem{Path: fmt.Sprintf("categories[%d]", i), Index: i, Kind: KindCategory, ID: c.ID,
				Reason: fmt.Sprintf("duplicate category id %d", c.ID)})
			continue
		}
		seenCat[c.ID] = true
		ix.Categories = append(ix.Categories, c)
	}
	slices.SortStableFunc(ix.Categories, func(a, b Category) int { return cmp.Compare(a.ID, b.ID) })
	for i, c := range ix.Categories {
		ix.category[c.ID] = i
	}

	seenImage := make(map[int64]bool, len(d.Images))
	seenFile := make(map[string]bool, len(d.Images))
	refusedImage := map[int64]bool{}
	for i, im := range d.Images {
		reason := ""
		switch {
		case seenImage[im.ID]:
			reason = fmt.Sprintf("duplicate image id %d", im.ID)
		case im.Width <= 0 || im.Height <= 0:
			reason = fmt.Sprintf("width and height must be positive, got %dx%d", im.Width, im.Height)
		case !cleanRelative(im.FileName):
			reason = fmt.Sprintf("file_name %q is not a clean relative path inside the image folder", im.FileName)
		case seenFile[im.FileName]:
			reason = fmt.Sprintf("duplicate file_name %q", im.FileName)
		}
		if !seenImage[im.ID] && reason != "" {
			refusedImage[im.ID] = true
		}
		seenImage[im.ID] = true
		if reason != "" {
			probs = append(probs, Problem{Path: fmt.Sprintf("images[%d]", i), Index: i, Kind: KindImage, ID: im.ID, ImageID: im.ID, Reason: reason})
			continue
		}
		seenFile[im.FileName] = true
		ix.image[im.ID] = len(ix.Images)
		ix.Images = append(ix.Images, im)
	}

	seenAnn := make(map[int64]bool, len(d.Annotations))
	for i, a := range d.Annotations {
		reason := ""
		if seenAnn[a.ID] {
			reason = fmt.Sprintf("duplicate annotation id %d", a.ID)
		}
		seenAnn[a.ID] = true
		im, okImage := ix.Image(a.ImageID)
		switch {
		case reason != "":
		case refusedImage[a.ImageID]:
			reason = fmt.Sprintf("image id %d was refused", a.ImageID)
		case !okImage:
			reason = fmt.Sprintf("unknown image id %d", a.ImageID)
		case !seenCat[a.CategoryID]:
			reason = fmt.Sprintf("unknown category id %d", a.CategoryID)
		default:
			reason = checkAnnotation(a, im)
		}
		if reason != "" {
			probs = append(probs, Problem{Path: fmt.Sprintf("annotations[%d]", i), Index: i, Kind: KindAnnotation, ID: a.ID, ImageID: a.ImageID, Reason: reason})
			continue
		}
		ix.Annotations[a.ImageID] = append(ix.Annotations[a.ImageID], a)
	}
	return ix, probs
}

// checkAnnotation applies the per-annotation geometry rules against its
// image; it returns "" when a passes.
func checkAnnotation(a Annotation, im Image) string {
	x, y, w, h := a.BBox[0], a.BBox[1], a.BBox[2], a.BBox[3]
	W, H := float64(im.Width), float64(im.Height)
	switch {
	case w < 0 || h < 0:
		return fmt.Sprintf("negative bbox size %gx%g", w, h)
	case x < -BoxSlack || y < -BoxSlack || x+w > W+BoxSlack || y+h > H+BoxSlack:
		return fmt.Sprintf("bbox [%g, %g, %g, %g] lies outside the %dx%d image", x, y, w, h, im.Width, im.Height)
	case a.Area < 0:
		return fmt.Sprintf("negative area %g", a.Area)
	case a.IsCrowd != 0 && a.IsCrowd != 1:
		return fmt.Sprintf("iscrowd must be 0 or 1, got %d", a.IsCrowd)
	}
	s := a.Segmentation
	if s == nil {
		return ""
	}
	if s.RLE != nil {
		r := s.RLE
		if r.Size[0] != im.Height || r.Size[1] != im.Width {
			return fmt.Sprintf("segmentation size [%d, %d] differs from the image's [%d, %d] (height, width)", r.Size[0], r.Size[1], im.Height, im.Width)
		}
		if got, want := r.Pixels(), int64(im.Height)*int64(im.Width); got != want {
			return fmt.Sprintf("segmentation runs cover %d pixels, the %dx%d image has %d", got, im.Width, im.Height, want)
		}
		return ""
	}
	for j, p := range s.Polygons {
		if len(p) < 6 || len(p)%2 != 0 {
			return fmt.Sprintf("segmentation[%d]: a polygon needs an even number of at least 6 coordinates, got %d", j, len(p))
		}
	}
	return ""
}

// CleanRelative reports whether name is a non-empty relative slash path
// with no "." or ".." segments, so that joining it under a folder stays
// inside that folder. Check requires it of every image file_name.
func CleanRelative(name string) bool { return cleanRelative(name) }

// cleanRelative reports whether name is a non-empty relative slash path
// with no "." or ".." segments, so joining it under a folder stays inside.
func cleanRelative(name string) bool {
	return name != "" && !strings.HasPrefix(name, "/") && !strings.Contains(name, "\\") &&
		path.Clean(name) == name && name != "." && !strings.HasPrefix(name, "../") && name != ".."
}
