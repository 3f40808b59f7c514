// Package cocosynth generates a small but real COCO-format detection and
// instance-segmentation data set from the items of an MNIST-style data set
// (Fashion-MNIST): every image is a dark, noisy canvas with one to a few
// items pasted on it, and every item is an annotated object with a box, a
// polygon mask, its mask area and its data set class as category.
//
// It exists so that the detection transfer protocol can run end to end on
// a machine without COCO: the output is an ordinary COCO layout
// (<split>/<file>.png and annotations/instances_<split>.json) that the
// project's COCO reader, the "coco" source and pycocotools all read.
//
// Generation is deterministic: image i of a split is a function of (seed,
// split, i) only, so the same arguments give the same bytes, and the first
// n images of a larger set equal a set of n images.
//
// Masks: an item's mask is its pixels at or above MaskThreshold after
// scaling, minus the pixels later items cover, with interior holes filled
// (a COCO polygon cannot have holes: a bag's handle loop becomes part of the
// bag). The segmentation is the exact outline of that mask along pixel
// edges, one polygon per 4-connected part, so pycocotools rasterises it back
// to the mask pixel for pixel, and the annotation's area is the mask's pixel
// count. The box is the mask's tight box.
package cocosynth

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"image/png"
	"math/rand/v2"

	"github.com/sslight-go/sslight/sinks/coco"
)

// ErrInput marks invalid arguments.
var ErrInput = errors.New("cocosynth: invalid input")

// MaskThreshold is the scaled item intensity (0–255) from which a pixel
// belongs to the object: above the canvas noise, below the faint rim most
// Fashion-MNIST items have.
const MaskThreshold = 48

// Items are the objects to paste: N grayscale H×W records, row-major, with
// a label each (IDX images and labels). Classes names the labels; label l
// becomes category l+1.
type Items struct {
	N, H, W int
	Pix     []uint8
	Labels  []uint8
	Classes []string
}

func (it Items) check() error {
	switch {
	case it.N <= 0 || it.H <= 0 || it.W <= 0:
		return fmt.Errorf("%w: %d items of %dx%d", ErrInput, it.N, it.W, it.H)
	case len(it.Pix) != it.N*it.H*it.W:
		return fmt.Errorf("%w: %d items of %dx%d need %d pixels, have %d", ErrInput, it.N, it.W, it.H, it.N*it.H*it.W, len(it.Pix))
	case len(it.Labels) != it.N:
		return fmt.Errorf("%w: %d items but %d labels", ErrInput, it.N, len(it.Labels))
	case len(it.Classes) == 0:
		return fmt.Errorf("%w: no class names", ErrInput)
	}
	for i, l := range it.Labels {
		if int(l) >= len(it.Classes) {
			return fmt.Errorf("%w: label %d of item %d has no class name (%d classes)", ErrInput, l, i, len(it.Classes))
		}
	}
	return nil
}

// Config sets what is generated.
type Config struct {
	Images int    // images in the split
	Canvas int    // canvas side in pixels (square images)
	Seed   uint64 // with Split, decides everything drawn
	Split  string // "train", "val", …: names the image folder and the annotations file
	// MinObjects and MaxObjects bound the items per image (drawn uniformly;
	// an item that finds no free place after placeTries draws is left out,
	// but every image keeps at least one).
	MinObjects, MaxObjects int
	// MinScale and MaxScale bound the item's scale factor (drawn uniformly).
	MinScale, MaxScale float64
	// MaxOverlap is the largest share of the smaller of two items' tight
	// boxes that their intersection may cover.
	MaxOverlap float64
}

// DefaultConfig is the set the issue describes: 1–4 Fashion-MNIST items
// per 96 px canvas at 0.75–1.5× their size, boxes overlapping by at most a
// quarter.
func DefaultConfig() Config {
	return Config{Images: 1000, Canvas: 96, Split: "train", MinObjects: 1, MaxObjects: 4, MinScale: 0.75, MaxScale: 1.5, MaxOverlap: 0.25}
}

func (c Config) check(it Items) error {
	biggest := int(float64(max(it.W, it.H))*c.MaxScale + 0.5)
	switch {
	case c.Images <= 0:
		return fmt.Errorf("%w: %d images: want at least 1", ErrInput, c.Images)
	case c.Canvas < biggest:
		return fmt.Errorf("%w: canvas %d px is smaller than an item at the largest scale (%d px)", ErrInput, c.Canvas, biggest)
	case c.Canvas > 4096:
		return fmt.Errorf("%w: canvas %d px: at most 4096", ErrInput, c.Canvas)
	case c.MinObjects < 1 || c.MaxObjects < c.MinObjects:
		return fmt.Errorf("%w: objects per image %d–%d: want 1 ≤ min ≤ max", ErrInput, c.MinObjects, c.MaxObjects)
	case !(c.MinScale > 0) || c.MaxScale < c.MinScale:
		return fmt.Errorf("%w: scale %g–%g: want 0 < min ≤ max", ErrInput, c.MinScale, c.MaxScale)
	case c.MaxOverlap < 0 || c.MaxOverlap > 1:
		return fmt.Errorf("%w: max overlap %g: want a share in [0, 1]", ErrInput, c.MaxOverlap)
	case !coco.CleanRelative(c.Split) || c.Split == "" || bytes.ContainsAny([]byte(c.Split), "/\\"):
		return fmt.Errorf("%w: split %q: want a plain folder name", ErrInput, c.Split)
	}
	return nil
}

// Set is a generated split: the instances file and one PNG per image.
type Set struct {
	Split   string
	Dataset *coco.Dataset
	// PNG holds the encoded images, parallel to Dataset.Images.
	PNG [][]byte
	// Masks holds each annotation's mask, parallel to Dataset.Annotations,
	// row-major over its image (for tests and consumers that want the
	// pixels without rasterising polygons).
	Masks [][]bool
}

// placeTries is how many positions an item may draw before it is left out.
const placeTries = 30

// Generate draws the split described by cfg from items.
func Generate(items Items, cfg Config) (*Set, error) {
	if err := items.check(); err != nil {
		return nil, err
	}
	if err := cfg.check(items); err != nil {
		return nil, err
	}
	d := &coco.Dataset{
		Info: &coco.Info{Description: fmt.Sprintf("sslight synthetic COCO: %d-px canvases with %d–%d MNIST-style items at %g–%gx, split %s, seed %d",
			cfg.Canvas, cfg.MinObjects, cfg.MaxObjects, cfg.MinScale, cfg.MaxScale, cfg.Split, cfg.Seed), Version: "1"},
		Images:      make([]coco.Image, 0, cfg.Images),
		Annotations: []coco.Annotation{},
	}
	for i, name := range items.Classes {
		d.Categories = append(d.Categories, coco.Category{ID: int64(i + 1), Name: name, Supercategory: "item"})
	}
	set := &Set{Split: cfg.Split, Dataset: d}
	h := fnv.New64a()
	h.Write([]byte(cfg.Split))
	splitKey := h.Sum64()
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	for i := 0; i < cfg.Images; i++ {
		id := int64(i + 1)
		rng := rand.New(rand.NewPCG(cfg.Seed, splitKey^uint64(i)*0x9e3779b97f4a7c15))
		canvas, objs := drawImage(rng, items, cfg)
		var buf bytes.Buffer
		g := &image.Gray{Pix: canvas, Stride: cfg.Canvas, Rect: image.Rect(0, 0, cfg.Canvas, cfg.Canvas)}
		if err := enc.Encode(&buf, g); err != nil {
			return nil, fmt.Errorf("cocosynth: encode image %d: %w", id, err)
		}
		im := coco.Image{ID: id, Width: cfg.Canvas, Height: cfg.Canvas, FileName: fmt.Sprintf("%012d.png", id)}
		d.Images = append(d.Images, im)
		set.PNG = append(set.PNG, buf.Bytes())
		for _, o := range objs {
			x0, y0, x1, y1, _ := o.mask.bounds()
			d.Annotations = append(d.Annotations, coco.Annotation{
				ID: int64(len(d.Annotations) + 1), ImageID: id, CategoryID: int64(o.label) + 1,
				BBox:         coco.BBox{float64(x0), float64(y0), float64(x1 - x0), float64(y1 - y0)},
				Area:         float64(o.mask.area()),
				Segmentation: &coco.Segmentation{Polygons: polygons(o.mask)},
			})
			set.Masks = append(set.Masks, o.mask.Pix)
		}
	}
	return set, nil
}

// object is one pasted item: its label and visible, hole-filled mask on
// the canvas.
type object struct {
	label uint8
	mask  *mask
}

// drawImage paints one canvas and returns it with its objects in paste
// order.
func drawImage(rng *rand.Rand, items Items, cfg Config) ([]uint8, []object) {
	n := cfg.Canvas
	canvas := make([]uint8, n*n)
	// Dark background: a level per image plus per-pixel noise, both small
	// next to an item's intensities.
	base := rng.IntN(24)
	for i := range canvas {
		canvas[i] = uint8(base + rng.IntN(25))
	}
	want := cfg.MinObjects + rng.IntN(cfg.MaxObjects-cfg.MinObjects+1)
	var ps []placed
	// A first item always finds room on the empty canvas unless the draws
	// keep hitting blank items, hence the extra rounds.
	for k := 0; k < want || (len(ps) == 0 && k < want+placeTries); k++ {
		for try := 0; try < placeTries; try++ {
			j := rng.IntN(items.N)
			scale := cfg.MinScale + rng.Float64()*(cfg.MaxScale-cfg.MinScale)
			s := max(1, int(float64(items.W)*scale+0.5))
			val := resize(items.Pix[j*items.H*items.W:(j+1)*items.H*items.W], items.W, items.H, s)
			m := &mask{W: s, H: s, Pix: make([]bool, s*s)}
			for i, v := range val {
				m.Pix[i] = v >= MaskThreshold
			}
			mx0, my0, mx1, my1, ok := m.bounds()
			if !ok {
				continue // a blank item: draw another
			}
			// Place the tight box uniformly where it fits on the canvas.
			bw, bh := mx1-mx0, my1-my0
			bx := rng.IntN(n - bw + 1)
			by := rng.IntN(n - bh + 1)
			p := placed{label: items.Labels[j], x: bx - mx0, y: by - my0, bx0: bx, by0: by, bx1: bx + bw, by1: by + bh}
			if overlapsTooMuch(ps, p.bx0, p.by0, p.bx1, p.by1, cfg.MaxOverlap) {
				continue
			}
			// Contrast varies a little per object.
			gain := 192 + rng.IntN(65) // /256: 0.75–1.0
			p.vis = newMask(n, n)
			for yy := 0; yy < s; yy++ {
				for xx := 0; xx < s; xx++ {
					cx, cy := p.x+xx, p.y+yy
					if cx < 0 || cy < 0 || cx >= n || cy >= n {
						continue
					}
					v := uint8(int(val[yy*s+xx]) * gain / 256)
					ci := cy*n + cx
					if m.Pix[yy*s+xx] {
						// The object's own pixels cover what lies below.
						canvas[ci] = v
						p.vis.Pix[ci] = true
						for q := range ps {
							ps[q].vis.Pix[ci] = false
						}
					} else if v > canvas[ci] {
						canvas[ci] = v // the faint rim blends in
					}
				}
			}
			ps = append(ps, p)
			break
		}
	}
	objs := make([]object, 0, len(ps))
	for _, p := range ps {
		m := fillHoles(p.vis)
		if m.area() == 0 {
			continue
		}
		objs = append(objs, object{label: p.label, mask: m})
	}
	return canvas, objs
}

// placed is an item on the canvas while an image is drawn.
type placed struct {
	label              uint8
	x, y               int // the scaled item's top-left corner on the canvas
	bx0, by0, bx1, by1 int // its tight mask box on the canvas (x1, y1 exclusive)
	vis                *mask
}

// overlapsTooMuch says whether the box [x0, x1) × [y0, y1) intersects a
// placed item's box by more than share of the smaller box's area.
func overlapsTooMuch(ps []placed, x0, y0, x1, y1 int, share float64) bool {
	for _, p := range ps {
		iw := min(x1, p.bx1) - max(x0, p.bx0)
		ih := min(y1, p.by1) - max(y0, p.by0)
		if iw <= 0 || ih <= 0 {
			continue
		}
		small := min((x1-x0)*(y1-y0), (p.bx1-p.bx0)*(p.by1-p.by0))
		if float64(iw*ih) > share*float64(small) {
			return true
		}
	}
	return false
}

// resize scales a w×h gray image to s×s bilinearly (half-pixel centres,
// edge pixels repeated), in 8-bit fixed point so the result is the same
// on every platform.
func resize(src []uint8, w, h, s int) []uint8 {
	out := make([]uint8, s*s)
	// Source coordinate of output pixel i, times 256: ((i+0.5)·n/s − 0.5)·256.
	coord := func(i, n int) (lo, hi, f int) {
		q := ((2*i+1)*n*256 - s*256) / (2 * s)
		if (2*i+1)*n*256-s*256 < 0 {
			q = 0
		}
		lo, f = q>>8, q&255
		if lo >= n-1 {
			return n - 1, n - 1, 0
		}
		return lo, lo + 1, f
	}
	for y := 0; y < s; y++ {
		y0, y1, fy := coord(y, h)
		for x := 0; x < s; x++ {
			x0, x1, fx := coord(x, w)
			top := int(src[y0*w+x0])*(256-fx) + int(src[y0*w+x1])*fx
			bot := int(src[y1*w+x0])*(256-fx) + int(src[y1*w+x1])*fx
			out[y*s+x] = uint8((top*(256-fy) + bot*fy + 1<<15) >> 16)
		}
	}
	return out
}
