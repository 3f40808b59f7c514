package augment

import (
	"fmt"
	"math"
)

// resamplePrecision is the number of fractional bits in PIL's 8-bit
// resampling weights (Resample.c: PRECISION_BITS = 32 - 8 - 2).
const resamplePrecision = 22

// bicubicSupport is the half-width of PIL's bicubic kernel at scale 1.
const bicubicSupport = 2.0

// bicubicKernel is PIL's bicubic filter with a = -0.5. The explicit
// float64 conversions keep every product rounded on its own, as the C code
// compiled without FMA does, so the weights match PIL bit for bit even where
// the Go compiler could fuse a multiply-add.
func bicubicKernel(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return float64(float64(float64((a+2)*x)-(a+3))*x*x) + 1
	}
	if x < 2 {
		return float64(float64(float64(float64(x-5)*x)+8)*x-4) * a
	}
	return 0
}

// axisFilter is the precomputed resampling of one axis: for output index i
// the taps are inputs start[i] ... start[i]+count[i]-1 with fixed-point
// weights w[i*ksize : i*ksize+count[i]].
type axisFilter struct {
	start []int32
	count []int32
	ksize int
	w     []int32
	tmp   []float64
	// wpair is the SIMD layout of w (see quadWeights), built on demand.
	wpair []int32
}

// maxSIMDTaps bounds the tap count of the SIMD horizontal kernel, whose
// split 16-bit accumulation is exact only up to this many taps; filters with
// more (shrinking by more than ~250×) use the portable kernel.
const maxSIMDTaps = 1024

// quadWeights lays the weights out for the SIMD horizontal kernel: per output
// index, ceil(ksize/4) groups of four int32, each holding two int16 values
// (low half first): {hi(t0) hi(t1)}, {lo(t0) lo(t1)}, {hi(t2) hi(t3)},
// {lo(t2) lo(t3)} for the group's taps t0..t3, where w = hi·2^11 + lo with lo
// in [0, 2^11). Missing taps have zero weights. It returns the number of
// groups per output index.
func (f *axisFilter) quadWeights() int {
	groups := (f.ksize + 3) / 4
	n := len(f.start)
	f.wpair = growInt32(f.wpair, n*groups*4)
	clear(f.wpair)
	pack := func(a, b int32) int32 { return int32(uint32(uint16(a)) | uint32(uint16(b))<<16) }
	for o := 0; o < n; o++ {
		k := f.w[o*f.ksize : o*f.ksize+int(f.count[o])]
		dst := f.wpair[o*groups*4 : (o+1)*groups*4]
		var hi, lo [4]int32
		for g := 0; g < groups; g++ {
			for t := 0; t < 4; t++ {
				hi[t], lo[t] = 0, 0
				if i := 4*g + t; i < len(k) {
					hi[t], lo[t] = k[i]>>11, k[i]&(1<<11-1)
				}
			}
			q := dst[4*g : 4*g+4]
			q[0], q[1], q[2], q[3] = pack(hi[0], hi[1]), pack(lo[0], lo[1]), pack(hi[2], hi[3]), pack(lo[2], lo[3])
		}
	}
	return groups
}

// prepare computes PIL's precompute_coeffs for resizing inSize samples to
// outSize (box 0..inSize) followed by normalize_coeffs_8bpc. When mirror is
// set the output order is reversed, which folds a horizontal flip of the
// resized image into the weights without changing any value.
func (f *axisFilter) prepare(inSize, outSize int, mirror bool) {
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := bicubicSupport * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	f.ksize = ksize
	f.start = growInt32(f.start, outSize)
	f.count = growInt32(f.count, outSize)
	f.w = growInt32(f.w, outSize*ksize)
	if cap(f.tmp) < ksize {
		f.tmp = make([]float64, ksize)
	}
	k := f.tmp[:ksize]
	ss := 1.0 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := float64(float64(xx)+0.5) * scale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w := bicubicKernel((float64(x+xmin) - center + 0.5) * ss)
			k[x] = w
			ww += w
		}
		o := xx
		if mirror {
			o = outSize - 1 - xx
		}
		dst := f.w[o*ksize : (o+1)*ksize]
		for x := 0; x < ksize; x++ {
			v := 0.0
			if x < xmax {
				v = k[x]
				if ww != 0 {
					v /= ww
				}
			}
			if v < 0 {
				dst[x] = int32(-0.5 + float64(v*(1<<resamplePrecision)))
			} else {
				dst[x] = int32(0.5 + float64(v*(1<<resamplePrecision)))
			}
		}
		f.start[o] = int32(xmin)
		f.count[o] = int32(xmax)
	}
}

// identity sets up a pass that copies n samples, reversed when mirror is set:
// one tap of weight 1.0 per output, which the fixed-point kernels reproduce
// exactly (2^21 + v·2^22 >> 22 = v).
func (f *axisFilter) identity(n int, mirror bool) {
	f.ksize = 1
	f.start = growInt32(f.start, n)
	f.count = growInt32(f.count, n)
	f.w = growInt32(f.w, n)
	for i := 0; i < n; i++ {
		s := i
		if mirror {
			s = n - 1 - i
		}
		f.start[i] = int32(s)
		f.count[i] = 1
		f.w[i] = 1 << resamplePrecision
	}
}

// MaxOutputPixels bounds the images this package's operations create, so a
// bad size is an error instead of an out-of-memory crash.
const MaxOutputPixels = 1 << 28

func checkOutputSize(w, h int) error {
	if w <= 0 || h <= 0 || w > MaxOutputPixels || h > MaxOutputPixels || w*h > MaxOutputPixels {
		return fmt.Errorf("output size %dx%d: %w", w, h, ErrBadSize)
	}
	return nil
}

func growInt32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func growUint8(s []uint8, n int) []uint8 {
	if cap(s) < n {
		return make([]uint8, n)
	}
	return s[:n]
}

// Resampler resizes images with PIL's antialiased bicubic filter. It holds the
// weight tables and the 8-bit intermediate so that repeated calls do not
// allocate; a Resampler must not be used by two goroutines at once. The zero
// value is ready to use.
type Resampler struct {
	horiz, vert axisFilter
	tmp         Image
	acc         []int32
}

// Resize resizes src to w×h into dst with PIL's bicubic filter
// (Image.resize(..., BICUBIC) in PIL 9.4), reusing dst's buffer.
func Resize(dst, src *Image, w, h int) error {
	var r Resampler
	return r.ResizedCrop(dst, src, Rect{Top: 0, Left: 0, Height: src.H, Width: src.W}, w, h, false)
}

// ResizedCrop is torchvision's F.resized_crop with bicubic interpolation on a
// PIL image: it crops box out of src, resizes the crop to w×h and, when flip is
// set, mirrors the result horizontally (the RandomResizedCrop + horizontal flip
// of the reference's views in one pass). The crop never reads pixels outside
// box, exactly as PIL resizing the cropped image does.
func ResizedCrop(dst, src *Image, box Rect, w, h int, flip bool) error {
	var r Resampler
	return r.ResizedCrop(dst, src, box, w, h, flip)
}

// ResizedCrop is the allocation-free form of the package function of the same
// name: the weights and the intermediate image live in r.
func (r *Resampler) ResizedCrop(dst, src *Image, box Rect, w, h int, flip bool) error {
	if err := checkOutputSize(w, h); err != nil {
		return fmt.Errorf("resized crop: %w", err)
	}
	return r.resize(dst, src, box, w, h, Rect{Height: h, Width: w}, flip)
}

// window returns the entries off..off+n-1 of f, sharing its storage.
func (f *axisFilter) window(off, n int) axisFilter {
	return axisFilter{
		start: f.start[off : off+n],
		count: f.count[off : off+n],
		ksize: f.ksize,
		w:     f.w[off*f.ksize : (off+n)*f.ksize],
		wpair: f.wpair[:0],
	}
}

// resize resizes box of src to w×h and writes the part win of that result
// (mirrored when flip is set) into dst. Output pixels depend only on their
// own weights, so producing a window is exactly cropping the full result.
func (r *Resampler) resize(dst, src *Image, box Rect, w, h int, win Rect, flip bool) error {
	if err := box.within(src); err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	if err := checkOutputSize(w, h); err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	if win.Width <= 0 || win.Height <= 0 || win.Top < 0 || win.Left < 0 || win.Top+win.Height > h || win.Left+win.Width > w {
		return fmt.Errorf("resize: output window %+v outside %dx%d: %w", win, w, h, ErrBadBox)
	}
	if dst == src {
		return fmt.Errorf("resize: %w", ErrAliased)
	}
	// PIL skips the pass of an axis whose size does not change.
	needH := w != box.Width
	needV := h != box.Height
	dst.Reset(win.Width, win.Height)
	var hz, vt axisFilter
	if needH {
		r.horiz.prepare(box.Width, w, flip)
	} else {
		r.horiz.identity(w, flip)
	}
	hz = r.horiz.window(win.Left, win.Width)
	if needV {
		r.vert.prepare(box.Height, h, false)
		vt = r.vert.window(win.Top, win.Height)
	}
	switch {
	case needV:
		// Resample horizontally only the rows the vertical pass reads, as PIL does.
		first := int(vt.start[0])
		last := int(vt.start[win.Height-1] + vt.count[win.Height-1])
		if !needH && !flip {
			r.acc = resampleCols(dst, src, box.Top, box.Left, &vt, r.acc)
			return nil
		}
		for i := range vt.start {
			vt.start[i] -= int32(first)
		}
		r.tmp.Reset(win.Width, last-first)
		resampleRows(&r.tmp, src, box.Top+first, box.Left, &hz)
		r.acc = resampleCols(dst, &r.tmp, 0, 0, &vt, r.acc)
	case needH || flip:
		resampleRows(dst, src, box.Top+win.Top, box.Left, &hz)
	default:
		copyRect(dst, src, Rect{Top: box.Top + win.Top, Left: box.Left + win.Left, Height: win.Height, Width: win.Width})
	}
	// Keep the SIMD weight buffer the window may have grown.
	r.horiz.wpair = hz.wpair[:0]
	return nil
}

// copyRect copies box of src into dst (already sized to the box).
func copyRect(dst, src *Image, box Rect) {
	for y := 0; y < box.Height; y++ {
		o := (box.Top+y)*src.Stride + 3*box.Left
		copy(dst.Row(y), src.Pix[o:o+3*box.Width])
	}
}

// clip8 is PIL's clip8: the fixed-point accumulator shifted down and clamped.
func clip8(v int32) uint8 {
	if v >= 255<<resamplePrecision {
		return 255
	}
	if v <= 0 {
		return 0
	}
	return uint8(v >> resamplePrecision)
}

// Rect is a crop box in pixels: rows Top..Top+Height-1, columns
// Left..Left+Width-1.
type Rect struct {
	Top    int `json:"top"`
	Left   int `json:"left"`
	Height int `json:"height"`
	Width  int `json:"width"`
}

func (b Rect) within(src *Image) error {
	if src == nil || src.W <= 0 || src.H <= 0 {
		return fmt.Errorf("source image: %w", ErrEmptyImage)
	}
	if b.Width <= 0 || b.Height <= 0 || b.Top < 0 || b.Left < 0 ||
		b.Top+b.Height > src.H || b.Left+b.Width > src.W {
		return fmt.Errorf("box top=%d left=%d height=%d width=%d outside %dx%d image: %w",
			b.Top, b.Left, b.Height, b.Width, src.W, src.H, ErrBadBox)
	}
	return nil
}
