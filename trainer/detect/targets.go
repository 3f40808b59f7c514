package detect

import (
	"fmt"
	"math"
)

// Targets are one batch's training targets on the output grid, as
// CenterNet's COCO dataset builds them: a class heatmap with a Gaussian
// peak of 1 at every object's centre cell, and per object its centre cell,
// size and sub-cell offset. The trainer rewrites them before every step;
// the loss ops read them when the graph runs.
type Targets struct {
	N, K, H, W int
	// Heat is [N, K, H, W]: the element-wise maximum of the objects'
	// Gaussians of their class.
	Heat []float32
	// Objects are the centres, in the order added.
	Objects []Target
}

// Target is one object on the output grid.
type Target struct {
	Image, Class int
	X, Y         int        // centre cell: the centre's integer part
	Size         [2]float32 // width, height in cells
	Offset       [2]float32 // centre − (X, Y), in [0, 1)
}

// Reset empties t for a batch of n images, k classes and an h×w grid.
func (t *Targets) Reset(n, k, h, w int) {
	t.N, t.K, t.H, t.W = n, k, h, w
	if cap(t.Heat) < n*k*h*w {
		t.Heat = make([]float32, n*k*h*w)
	}
	t.Heat = t.Heat[:n*k*h*w]
	clear(t.Heat)
	t.Objects = t.Objects[:0]
}

// MinOverlap is CenterNet's min_overlap for the Gaussian radius: a box
// whose corners move by the radius still overlaps the true box by IoU 0.7.
const MinOverlap = 0.7

// Add adds an object of class c to image i, its box [x, y, w, h] given in
// grid cells (pixels / stride). A box whose centre lies outside the grid
// or whose size is not positive is skipped, and Add reports false.
func (t *Targets) Add(i, c int, box [4]float64) bool {
	if i < 0 || i >= t.N || c < 0 || c >= t.K {
		panic(fmt.Sprintf("detect: Targets.Add: image %d class %d outside %d images and %d classes", i, c, t.N, t.K))
	}
	w, h := box[2], box[3]
	cx, cy := box[0]+w/2, box[1]+h/2
	if !(w > 0 && h > 0) || cx < 0 || cy < 0 || cx >= float64(t.W) || cy >= float64(t.H) {
		return false
	}
	x, y := int(cx), int(cy)
	r := int(GaussianRadius(math.Ceil(h), math.Ceil(w), MinOverlap))
	drawGaussian(t.Heat[(i*t.K+c)*t.H*t.W:(i*t.K+c+1)*t.H*t.W], t.W, t.H, x, y, max(0, r))
	t.Objects = append(t.Objects, Target{Image: i, Class: c, X: x, Y: y,
		Size: [2]float32{float32(w), float32(h)}, Offset: [2]float32{float32(cx - float64(x)), float32(cy - float64(y))}})
	return true
}

// GaussianRadius is CenterNet's gaussian_radius(det_size=(h, w),
// min_overlap) (src/lib/utils/image.py), kept with its quirks (each root
// is halved rather than divided by 2a) because the published models were
// trained with it: the smallest of the radii for the three ways two
// corners can move.
func GaussianRadius(h, w, minOverlap float64) float64 {
	b1 := h + w
	c1 := w * h * (1 - minOverlap) / (1 + minOverlap)
	r1 := (b1 + math.Sqrt(b1*b1-4*c1)) / 2

	b2 := 2 * (h + w)
	c2 := (1 - minOverlap) * w * h
	r2 := (b2 + math.Sqrt(b2*b2-16*c2)) / 2

	a3 := 4 * minOverlap
	b3 := -2 * minOverlap * (h + w)
	c3 := (minOverlap - 1) * w * h
	r3 := (b3 + math.Sqrt(b3*b3-4*a3*c3)) / 2
	return min(r1, r2, r3)
}

// drawGaussian is CenterNet's draw_umich_gaussian: a (2r+1)² Gaussian of
// σ = (2r+1)/6 centred on cell (x, y), merged into the w×h map heat by
// maximum, cut at the map's edges. Values below machine epsilon times the
// peak are zero, as there.
func drawGaussian(heat []float32, w, h, x, y, r int) {
	sigma := float64(2*r+1) / 6
	left, right := min(x, r), min(w-x, r+1)
	top, bottom := min(y, r), min(h-y, r+1)
	for dy := -top; dy < bottom; dy++ {
		for dx := -left; dx < right; dx++ {
			g := math.Exp(-float64(dx*dx+dy*dy) / (2 * sigma * sigma))
			if g < 0x1p-52 {
				g = 0
			}
			i := (y+dy)*w + x + dx
			heat[i] = max(heat[i], float32(g))
		}
	}
}
