package coco

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Mask operations on run-length encodings with the exact integer and
// floating-point behaviour of pycocotools' maskApi.c, so that areas, boxes
// and overlaps computed here equal the ones COCO evaluation computes: a
// polygon that pycocotools rasterises to 1234 pixels rasterises to the same
// 1234 pixels here, including its quirks (sub-pixel rounding of vertices,
// boxes of non-canonical encodings).

// rasterScale is how much rleFrPoly upsamples polygon coordinates before
// walking their edges: vertices are rounded to a fifth of a pixel.
const rasterScale = 5

// ErrMaskSize reports masks of different sizes where one size is needed
// (merging masks of two images, a mask that does not fit its image).
var ErrMaskSize = errors.New("mask sizes differ")

// EncodeMask run-length encodes a binary mask of h rows and w columns held
// in column-major order (m[x*h+y], pycocotools' layout); any non-zero byte
// is set. It panics if len(m) != h*w (a programmer error).
func EncodeMask(m []byte, h, w int) *RLE {
	if len(m) != h*w {
		panic(fmt.Sprintf("coco: EncodeMask of %d bytes as %dx%d", len(m), h, w))
	}
	counts := make([]uint32, 0, 8)
	var run uint32
	var cur byte
	for _, v := range m {
		if v != 0 {
			v = 1
		}
		if v != cur {
			counts = append(counts, run)
			run, cur = 0, v
		}
		run++
	}
	counts = append(counts, run)
	return &RLE{Size: [2]int{h, w}, Counts: counts}
}

// Mask decodes r into a column-major byte mask of Size[0]×Size[1] (1 = set).
// It refuses an encoding whose runs do not cover the mask exactly.
func (r *RLE) Mask() ([]byte, error) {
	h, w := r.Size[0], r.Size[1]
	if h < 0 || w < 0 {
		return nil, fmt.Errorf("mask size [%d, %d] is negative", h, w)
	}
	if got, want := r.Pixels(), int64(h)*int64(w); got != want {
		return nil, fmt.Errorf("runs cover %d pixels, the %dx%d mask has %d", got, h, w, want)
	}
	m := make([]byte, h*w)
	p := 0
	for i, c := range r.Counts {
		if i%2 == 1 {
			for j := p; j < p+int(c); j++ {
				m[j] = 1
			}
		}
		p += int(c)
	}
	return m, nil
}

// BBox returns the bounding box [x, y, width, height] of the set pixels as
// pycocotools' toBbox computes it from the runs (rleToBbox): a run of ones
// that wraps into the next column widens the box to the full height, a
// trailing run of zeros is not looked at, and an empty mask gives zeros.
// The arithmetic is pycocotools' unsigned 32-bit one, so non-canonical
// encodings (zero-length runs) give the same box as there.
func (r *RLE) BBox() BBox {
	h, w := uint32(r.Size[0]), uint32(r.Size[1])
	m := len(r.Counts) / 2 * 2
	if m == 0 || h == 0 {
		return BBox{}
	}
	xs, ys, xe, ye := w, h, uint32(0), uint32(0)
	var cc, xp uint32
	for j := 0; j < m; j++ {
		cc += r.Counts[j]
		t := cc - uint32(j%2)
		y := t % h
		x := (t - y) / h
		if j%2 == 0 {
			xp = x
		} else if xp < x {
			ys, ye = 0, h-1
		}
		xs, xe = min(xs, x), max(xe, x)
		ys, ye = min(ys, y), max(ye, y)
	}
	return BBox{float64(xs), float64(ys), float64(xe - xs + 1), float64(ye - ys + 1)}
}

// PolygonRLE rasterises one polygon (x1, y1, x2, y2, ... in pixels) into an
// h×w mask exactly as pycocotools' rleFrPoly: vertices are scaled by 5 and
// rounded, every edge is walked one upsampled step at a time, and a pixel
// is set where its centre lies inside the traced outline. A trailing odd
// coordinate is ignored, as there; fewer than two coordinates give an empty
// mask. Callers bound the coordinates (the work grows with the perimeter).
func PolygonRLE(xy []float64, h, w int) *RLE {
	k := len(xy) / 2
	if k == 0 {
		return &RLE{Size: [2]int{h, w}, Counts: []uint32{uint32(h * w)}}
	}
	// Upsampled, rounded vertices, closed by repeating the first. The C
	// code converts with (int)(v+.5): truncation toward zero.
	x := make([]int, k+1)
	y := make([]int, k+1)
	for j := range k {
		x[j] = int(float64(rasterScale*xy[2*j]) + .5)
		y[j] = int(float64(rasterScale*xy[2*j+1]) + .5)
	}
	x[k], y[k] = x[0], y[0]
	n := 0
	for j := range k {
		n += max(absInt(x[j]-x[j+1]), absInt(y[j]-y[j+1])) + 1
	}
	// Dense boundary points (u, v) along every edge, stepping along the
	// edge's longer axis; edges are walked from their smaller end so that
	// rounding is the same whichever way the polygon winds.
	// int32 like C's int, and half the memory of int for long outlines.
	u := make([]int32, 0, n)
	v := make([]int32, 0, n)
	for j := range k {
		xs, xe, ys, ye := x[j], x[j+1], y[j], y[j+1]
		dx, dy := absInt(xe-xs), absInt(ys-ye)
		flip := (dx >= dy && xs > xe) || (dx < dy && ys > ye)
		if flip {
			xs, xe = xe, xs
			ys, ye = ye, ys
		}
		if dx >= dy {
			// dx == dy == 0 gives s = NaN, as in C; such a point repeats
			// its neighbours' column and is never used below.
			s := float64(ye-ys) / float64(dx)
			for d := 0; d <= dx; d++ {
				t := d
				if flip {
					t = dx - d
				}
				u = append(u, int32(t+xs))
				v = append(v, nanInt32(float64(ys)+float64(s*float64(t))+.5))
			}
		} else {
			s := float64(xe-xs) / float64(dy)
			for d := 0; d <= dy; d++ {
				t := d
				if flip {
					t = dy - d
				}
				v = append(v, int32(t+ys))
				u = append(u, nanInt32(float64(xs)+float64(s*float64(t))+.5))
			}
		}
	}
	// Where the outline crosses a pixel-centre column, record the first
	// pixel centre below it (downsampled back to pixel units). Those are
	// the places where the column-major scan toggles between 0 and 1.
	hw := uint32(h * w)
	toggles := make([]uint32, 0, len(u)/rasterScale+2)
	for j := 1; j < len(u); j++ {
		if u[j] == u[j-1] {
			continue
		}
		xd := float64(u[j] - 1)
		if u[j] < u[j-1] {
			xd = float64(u[j])
		}
		xd = (xd+.5)/rasterScale - .5
		if math.Floor(xd) != xd || xd < 0 || xd > float64(w-1) {
			continue
		}
		yd := float64(min(v[j], v[j-1]))
		yd = (yd+.5)/rasterScale - .5
		if yd < 0 {
			yd = 0
		} else if yd > float64(h) {
			yd = float64(h)
		}
		yd = math.Ceil(yd)
		toggles = append(toggles, uint32(int(xd)*h+int(yd)))
	}
	toggles = append(toggles, hw)
	slices.Sort(toggles)
	// Differences between consecutive toggles are the runs; a zero
	// difference (two toggles at one pixel) cancels, merging its
	// neighbours.
	var prev uint32
	for j, t := range toggles {
		toggles[j] -= prev
		prev = t
	}
	counts := make([]uint32, 0, len(toggles))
	counts = append(counts, toggles[0])
	for j := 1; j < len(toggles); {
		if toggles[j] > 0 {
			counts = append(counts, toggles[j])
			j++
			continue
		}
		j++
		if j < len(toggles) {
			counts[len(counts)-1] += toggles[j]
			j++
		}
	}
	return &RLE{Size: [2]int{h, w}, Counts: counts}
}

// BoxRLE rasterises a box [x, y, width, height] as the polygon of its four
// corners, as pycocotools' frBbox does.
func BoxRLE(b BBox, h, w int) *RLE {
	xs, ys := b[0], b[1]
	xe, ye := xs+b[2], ys+b[3]
	return PolygonRLE([]float64{xs, ys, xs, ye, xe, ye, xe, ys}, h, w)
}

// MergeRLE returns the union (or, with intersect, the intersection) of
// masks of one size, with pycocotools' rleMerge run layout. One mask is
// returned as a copy; none is an error.
func MergeRLE(rles []*RLE, intersect bool) (*RLE, error) {
	if len(rles) == 0 {
		return nil, errors.New("merge of no masks")
	}
	size := rles[0].Size
	acc := slices.Clone(rles[0].Counts)
	if acc == nil {
		acc = []uint32{}
	}
	for _, b := range rles[1:] {
		if b.Size != size {
			return nil, fmt.Errorf("merge %v with %v: %w", size, b.Size, ErrMaskSize)
		}
		if len(acc) == 0 || len(b.Counts) == 0 {
			return nil, errors.New("merge of a mask without runs")
		}
		out := make([]uint32, 0, len(acc)+len(b.Counts))
		ca, cb := acc[0], b.Counts[0]
		va, vb, v := false, false, false
		ia, ib := 1, 1
		var cc uint32
		for ct := uint32(1); ct > 0; {
			c := min(ca, cb)
			cc += c
			ct = 0
			ca -= c
			if ca == 0 && ia < len(acc) {
				ca, va = acc[ia], !va
				ia++
			}
			ct += ca
			cb -= c
			if cb == 0 && ib < len(b.Counts) {
				cb, vb = b.Counts[ib], !vb
				ib++
			}
			ct += cb
			vp := v
			if intersect {
				v = va && vb
			} else {
				v = va || vb
			}
			if v != vp || ct == 0 {
				out = append(out, cc)
				cc = 0
			}
		}
		acc = out
	}
	return &RLE{Size: size, Counts: acc}, nil
}

// SegmentationRLE turns an annotation's segmentation into one mask of an
// h×w image, as pycocotools' annToRLE does: polygons are rasterised one by
// one and merged, an uncompressed RLE keeps its own counts and size, a
// compressed one is used as is. Polygons must pass CheckPolygons.
func SegmentationRLE(s *Segmentation, h, w int) (*RLE, error) {
	if s == nil || (s.RLE == nil && s.Polygons == nil) {
		return nil, errors.New("no segmentation")
	}
	if s.RLE != nil {
		return s.RLE, nil
	}
	if err := CheckPolygons(s.Polygons, h, w); err != nil {
		return nil, err
	}
	rles := make([]*RLE, len(s.Polygons))
	for i, p := range s.Polygons {
		rles[i] = PolygonRLE(p, h, w)
	}
	return MergeRLE(rles, false)
}

// CheckPolygons reports why a polygon list cannot be rasterised into an
// h×w image: a non-positive image size, no polygon, a first polygon of 4
// coordinates or fewer (pycocotools fails on those; later polygons may be
// shorter and add nothing), or a coordinate more than maxPolygonReach
// image sizes away, which would only cost time and memory.
func CheckPolygons(polys [][]float64, h, w int) error {
	if h <= 0 || w <= 0 {
		return fmt.Errorf("image size %dx%d is not positive", w, h)
	}
	if len(polys) == 0 {
		return errors.New("empty polygon list (no mask)")
	}
	if n := len(polys[0]); n <= 4 {
		return fmt.Errorf("polygon 0 has %d coordinates, want at least 6 (x1, y1, x2, y2, x3, y3, ...)", n)
	}
	reach := float64(maxPolygonReach * max(h, w))
	for i, p := range polys {
		for j, c := range p {
			if !(c >= -reach && c <= reach) {
				return fmt.Errorf("polygon %d coordinate %d is %g, outside ±%g for a %dx%d image", i, j, c, reach, w, h)
			}
		}
	}
	return nil
}

// maxPolygonReach bounds polygon coordinates to this many times the
// image's larger side: outlines a little outside the image are normal
// (they are clipped), far outside is corrupt input that would only cost
// time and memory.
const maxPolygonReach = 8

// MaskIoU returns the overlap of a detection mask with a ground-truth mask
// as pycocotools' rleIou computes it for a pair whose boxes overlap:
// intersection over union, or for a crowd region intersection over the
// detection's area; 0 when they do not intersect and -1 when the sizes
// differ.
func MaskIoU(dt, gt *RLE, crowd bool) float64 {
	if dt.Size != gt.Size {
		return -1
	}
	if len(dt.Counts) == 0 || len(gt.Counts) == 0 {
		return 0
	}
	ca, cb := dt.Counts[0], gt.Counts[0]
	ka, kb := len(dt.Counts), len(gt.Counts)
	va, vb := false, false
	a, b := 1, 1
	var inter, union uint32
	for ct := uint32(1); ct > 0; {
		c := min(ca, cb)
		if va || vb {
			union += c
			if va && vb {
				inter += c
			}
		}
		ct = 0
		ca -= c
		if ca == 0 && a < ka {
			ca, va = dt.Counts[a], !va
			a++
		}
		ct += ca
		cb -= c
		if cb == 0 && b < kb {
			cb, vb = gt.Counts[b], !vb
			b++
		}
		ct += cb
	}
	if inter == 0 {
		union = 1
	} else if crowd {
		union = uint32(dt.Area())
	}
	return float64(inter) / float64(union)
}

// BoxIoU returns the overlap of a detection box with a ground-truth box as
// pycocotools' bbIou computes it: intersection over union, or for a crowd
// region intersection over the detection's area; 0 when they do not
// overlap. The operations and their order are pycocotools', so thresholds
// compare the same doubles.
func BoxIoU(dt, gt BBox, crowd bool) float64 {
	w := math.Min(dt[2]+dt[0], gt[2]+gt[0]) - math.Max(dt[0], gt[0])
	if w <= 0 {
		return 0
	}
	h := math.Min(dt[3]+dt[1], gt[3]+gt[1]) - math.Max(dt[1], gt[1])
	if h <= 0 {
		return 0
	}
	da := float64(dt[2] * dt[3])
	i := float64(w * h)
	u := da
	if !crowd {
		u = da + float64(gt[2]*gt[3]) - i
	}
	return i / u
}

func absInt(a int) int {
	if a < 0 {
		return -a
	}
	return a
}

// nanInt32 converts like C's (int) cast on x86: truncation toward zero,
// with NaN giving the "integer indefinite" value. Go's conversion of NaN
// is implementation-defined, so it is spelled out.
func nanInt32(f float64) int32 {
	if f != f {
		return math.MinInt32
	}
	return int32(f)
}
