package cocosynth

// mask is a binary image, row-major: m.Pix[y*m.W+x] is pixel (x, y).
type mask struct {
	W, H int
	Pix  []bool
}

func newMask(w, h int) *mask { return &mask{W: w, H: h, Pix: make([]bool, w*h)} }

func (m *mask) at(x, y int) bool {
	return x >= 0 && y >= 0 && x < m.W && y < m.H && m.Pix[y*m.W+x]
}

// area counts the set pixels.
func (m *mask) area() int {
	n := 0
	for _, v := range m.Pix {
		if v {
			n++
		}
	}
	return n
}

// bounds returns the tight box of the set pixels as x0, y0 (first set
// column and row) and x1, y1 (one past the last); ok is false for an empty
// mask.
func (m *mask) bounds() (x0, y0, x1, y1 int, ok bool) {
	x0, y0 = m.W, m.H
	for y := 0; y < m.H; y++ {
		for x := 0; x < m.W; x++ {
			if m.Pix[y*m.W+x] {
				x0, y0 = min(x0, x), min(y0, y)
				x1, y1 = max(x1, x+1), max(y1, y+1)
			}
		}
	}
	return x0, y0, x1, y1, x1 > 0
}

// fillHoles returns m with every background pixel that is not
// 4-connected to the image border set. COCO polygons cannot express holes,
// and with holes (4-connected background) filled, every 4-connected
// component of the result has an outer boundary that is one simple closed
// curve: two diagonal foreground pixels whose shared corner would pinch
// the boundary enclose one of the other two pixels of their 2x2 block,
// which is then a hole and gets filled.
func fillHoles(m *mask) *mask {
	out := &mask{W: m.W, H: m.H, Pix: make([]bool, len(m.Pix))}
	outside := make([]bool, len(m.Pix))
	var stack []int
	push := func(x, y int) {
		i := y*m.W + x
		if !m.Pix[i] && !outside[i] {
			outside[i] = true
			stack = append(stack, i)
		}
	}
	for x := 0; x < m.W; x++ {
		push(x, 0)
		push(x, m.H-1)
	}
	for y := 0; y < m.H; y++ {
		push(0, y)
		push(m.W-1, y)
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		x, y := i%m.W, i/m.W
		if x > 0 {
			push(x-1, y)
		}
		if x+1 < m.W {
			push(x+1, y)
		}
		if y > 0 {
			push(x, y-1)
		}
		if y+1 < m.H {
			push(x, y+1)
		}
	}
	for i := range out.Pix {
		out.Pix[i] = !outside[i]
	}
	return out
}

// components labels the 4-connected components of m in raster order of
// their first pixel and returns the label image (0 = background, 1..n)
// and n.
func components(m *mask) ([]int, int) {
	lab := make([]int, len(m.Pix))
	n := 0
	var stack []int
	for start, v := range m.Pix {
		if !v || lab[start] != 0 {
			continue
		}
		n++
		lab[start] = n
		stack = append(stack[:0], start)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := i%m.W, i/m.W
			for _, d := range [4][2]int{{-1, 0}, {1, 0}, {0, -1}, {0, 1}} {
				nx, ny := x+d[0], y+d[1]
				if m.at(nx, ny) && lab[ny*m.W+nx] == 0 {
					lab[ny*m.W+nx] = n
					stack = append(stack, ny*m.W+nx)
				}
			}
		}
	}
	return lab, n
}

// polygons traces the outline of every 4-connected component of a
// hole-free mask (see fillHoles) along pixel edges, one polygon per
// component in raster order of the component's first pixel, as flat
// x1, y1, x2, y2, ... lists in pixel-edge coordinates (pixel (x, y) is the
// square [x, x+1] × [y, y+1]). Vertices where the outline goes straight on
// are left out. pycocotools rasterises such an outline back to exactly the
// component's pixels, since it sets the pixels whose centres lie inside.
func polygons(m *mask) [][]float64 {
	lab, n := components(m)
	var out [][]float64
	for c := 1; c <= n; c++ {
		out = append(out, trace(m.W, m.H, lab, c))
	}
	return out
}

// trace walks the boundary of component c clockwise in image coordinates
// (y down), keeping the component on the right-hand side. Every boundary
// vertex of a hole-free, pinch-free component has exactly one outgoing
// boundary edge, so the walk needs no turn rules.
func trace(w, h int, lab []int, c int) []float64 {
	in := func(x, y int) bool { return x >= 0 && y >= 0 && x < w && y < h && lab[y*w+x] == c }
	// next maps a vertex (x, y) on the (w+1)×(h+1) corner grid to the end
	// of its outgoing boundary edge.
	next := map[int]int{}
	vid := func(x, y int) int { return y*(w+1) + x }
	first := -1
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if !in(x, y) {
				continue
			}
			if first < 0 {
				first = vid(x, y)
			}
			// Clockwise on screen: top edge left→right, right edge down,
			// bottom edge right→left, left edge up.
			if !in(x, y-1) {
				next[vid(x, y)] = vid(x+1, y)
			}
			if !in(x+1, y) {
				next[vid(x+1, y)] = vid(x+1, y+1)
			}
			if !in(x, y+1) {
				next[vid(x+1, y+1)] = vid(x, y+1)
			}
			if !in(x-1, y) {
				next[vid(x, y+1)] = vid(x, y)
			}
		}
	}
	// The first pixel in raster order has background above and to the
	// left, so its top-left corner starts a top edge.
	var pts []int
	for v := first; ; {
		pts = append(pts, v)
		v = next[v]
		if v == first {
			break
		}
	}
	var xy []float64
	for i, v := range pts {
		p, q := pts[(i+len(pts)-1)%len(pts)], pts[(i+1)%len(pts)]
		// Keep v only where the direction changes.
		if v-p == q-v {
			continue
		}
		xy = append(xy, float64(v%(w+1)), float64(v/(w+1)))
	}
	return xy
}
