package augment

import (
	"fmt"
	"math"
)

// gaussianPasses is the number of box-blur passes PIL's GaussianBlur uses.
const gaussianPasses = 3

// GaussianBoxRadius is PIL's _gaussian_blur_radius: the "extended box"
// radius l + a whose three passes approximate a Gaussian of standard deviation
// radius (Gwosdek et al., SSVM 2011), computed in float32 like PIL.
func GaussianBoxRadius(radius float32) float32 {
	sigma2 := radius * radius / gaussianPasses
	L := float32(math.Sqrt(float64(12.0*float64(sigma2)) + 1.0))
	l := float32(math.Floor((float64(L) - 1.0) / 2.0))
	// The conversions keep each float32 product rounded on its own (no fused
	// multiply-add), as in PIL's C.
	a := float32(2*l+1) * (float32(l*(l+1)) - float32(3*sigma2))
	a /= 6 * (sigma2 - float32((l+1)*(l+1)))
	return l + a
}

// boxWeights are the fixed-point weights of one box-blur pass (PIL's
// ImagingHorizontalBoxBlur): ww for the 2r+1 inner taps, fw for the two
// fractional edge taps, 24 fractional bits.
type boxWeights struct {
	r      int
	ww, fw uint32
}

func newBoxWeights(boxRadius float32) boxWeights {
	r := int(boxRadius)
	ww := uint32(float32(1<<24) / (boxRadius*2 + 1))
	fw := (uint32(1<<24) - uint32(2*r+1)*ww) / 2
	return boxWeights{r: r, ww: ww, fw: fw}
}

// Blurrer applies PIL's GaussianBlur. It keeps its scratch planes between
// calls; a Blurrer must not be used by two goroutines at once. The zero value
// is ready to use.
type Blurrer struct {
	a, b []uint8
	line []uint32
}

// MaxBlurRadius is the largest Gaussian blur radius accepted. PIL takes any
// radius, but past a few hundred pixels every pixel is the edge-weighted
// mean anyway, and the bound keeps the box arithmetic far from overflow.
const MaxBlurRadius = 1000

// GaussianBlur is img.filter(ImageFilter.GaussianBlur(radius)) in PIL 9.4:
// three horizontal passes of an extended box blur, then three vertical ones,
// with edge pixels replicated. dst may be src. A radius of 0 copies the image;
// a negative, NaN or larger than MaxBlurRadius radius is an error.
func GaussianBlur(dst, src *Image, radius float64) error {
	var b Blurrer
	return b.GaussianBlur(dst, src, radius)
}

// GaussianBlur is the allocation-free form of the package function.
func (bl *Blurrer) GaussianBlur(dst, src *Image, radius float64) error {
	if !(radius >= 0 && radius <= MaxBlurRadius) {
		return fmt.Errorf("gaussian blur radius %v not in [0, %d]: %w", radius, MaxBlurRadius, ErrBadFactor)
	}
	if src.W <= 0 || src.H <= 0 {
		return fmt.Errorf("gaussian blur: %w", ErrEmptyImage)
	}
	r32 := float32(radius)
	if r32 == 0 {
		copyImage(dst, src)
		return nil
	}
	bw := newBoxWeights(GaussianBoxRadius(r32))
	w, h := src.W, src.H
	n := 3 * w * h
	bl.a = growUint8(bl.a, n)
	bl.b = growUint8(bl.b, n)
	// PIL blurs rows, transposes, blurs rows and transposes back. Here both
	// directions are column passes (one SIMD-friendly kernel): transpose,
	// three column passes (the horizontal blur), transpose back, three column
	// passes (the vertical blur). Same arithmetic, same bytes.
	transpose3(bl.a, 3*h, src.Pix, src.Stride, w, h)
	cur, nxt := bl.a, bl.b
	for p := 0; p < gaussianPasses; p++ {
		bl.line = boxBlurCols(nxt, cur, 3*h, w, bw, bl.line)
		cur, nxt = nxt, cur
	}
	transpose3(nxt, 3*w, cur, 3*h, h, w)
	cur, nxt = nxt, cur
	for p := 0; p < gaussianPasses; p++ {
		bl.line = boxBlurCols(nxt, cur, 3*w, h, bw, bl.line)
		cur, nxt = nxt, cur
	}
	prepareDst(dst, src)
	for y := 0; y < h; y++ {
		copy(dst.Row(y), cur[3*w*y:3*w*(y+1)])
	}
	return nil
}

// boxBlurColsGo runs one box-blur pass along the columns of the tight plane
// src (h rows of nbytes bytes) into dst, per byte column:
// out[y] = (ww·Σ_{|k−y|≤r} in[k] + fw·(in[y−r−1] + in[y+r+1]) + 2²³) >> 24,
// row indices clamped (edge replication), uint32 arithmetic as in PIL's
// ImagingLineBoxBlur. acc is scratch, returned grown for reuse.
func boxBlurColsGo(dst, src []uint8, nbytes, h int, bw boxWeights, acc []uint32) []uint32 {
	r := bw.r
	last := h - 1
	if cap(acc) < nbytes {
		acc = make([]uint32, nbytes)
	}
	acc = acc[:nbytes]
	row := func(k int) []uint8 {
		k = max(0, min(k, last))
		return src[nbytes*k : nbytes*(k+1)]
	}
	clear(acc)
	for k := -r; k <= r; k++ {
		for i, v := range row(k) {
			acc[i] += uint32(v)
		}
	}
	ww, fw := bw.ww, bw.fw
	for y := 0; y < h; y++ {
		lo, hi, sub := row(y-r-1), row(y+r+1), row(y-r)
		out := dst[nbytes*y : nbytes*(y+1)]
		a := acc[:len(out)]
		lo, hi, sub = lo[:len(out)], hi[:len(out)], sub[:len(out)]
		for i := range out {
			g := uint32(hi[i])
			out[i] = uint8((a[i]*ww + (uint32(lo[i])+g)*fw + 1<<23) >> 24)
			a[i] += g - uint32(sub[i])
		}
	}
	return acc
}

// transpose3Go writes the w×h RGB plane src (row stride sstride bytes) as its
// h×w transpose into dst (row stride dstride bytes).
func transpose3Go(dst []uint8, dstride int, src []uint8, sstride, w, h int) {
	const B = 16
	for y0 := 0; y0 < h; y0 += B {
		y1 := min(y0+B, h)
		for x0 := 0; x0 < w; x0 += B {
			x1 := min(x0+B, w)
			for y := y0; y < y1; y++ {
				s := src[y*sstride+3*x0 : y*sstride+3*x1]
				for x := x0; x < x1; x++ {
					d := dst[x*dstride+3*y : x*dstride+3*y+3 : x*dstride+3*y+3]
					q := s[3*(x-x0) : 3*(x-x0)+3 : 3*(x-x0)+3]
					d[0], d[1], d[2] = q[0], q[1], q[2]
				}
			}
		}
	}
}
