package augment

import (
	"fmt"
	"math"
)

// DefaultRatio is RandomResizedCrop's default aspect-ratio range (3/4, 4/3),
// which the reference uses for every view.
var DefaultRatio = [2]float64{3.0 / 4.0, 4.0 / 3.0}

// rrcAttempts is the number of random boxes RandomResizedCrop tries before
// falling back to a centred crop.
const rrcAttempts = 10

// CropParams is the box RandomResizedCrop.get_params chose, with how it got
// there: Fallback is set when all ten attempts were rejected and the centred
// box was used; Attempts counts the attempts made (10 on fallback).
type CropParams struct {
	Rect
	Fallback bool `json:"fallback"`
	Attempts int  `json:"attempts"`
}

// CropDraws supplies the random numbers RandomResizedCropParams consumes, in
// torchvision's order: per attempt Uniform32(scale) then Uniform32(log ratio);
// for the accepted attempt IntN(height−h+1) (top) then IntN(width−w+1) (left).
type CropDraws interface {
	// Uniform32 returns a float32 drawn uniformly from [lo, hi), like torch's
	// uniform_ on a float32 tensor.
	Uniform32(lo, hi float32) float32
	// IntN returns an integer drawn uniformly from [0, n).
	IntN(n int) int
}

// LogRatioBounds is torch.log(torch.tensor(ratio)): the float32 bounds the
// log aspect ratio is drawn between.
func LogRatioBounds(ratio [2]float64) [2]float32 {
	return [2]float32{
		float32(math.Log(float64(float32(ratio[0])))),
		float32(math.Log(float64(float32(ratio[1])))),
	}
}

// RandomResizedCropParams is torchvision 0.14's RandomResizedCrop.get_params
// for a width×height image: up to ten attempts at a box of area
// width·height·U(scale) and aspect ratio exp(U(log ratio)) (float32 draws,
// Python round half to even), each accepted when it fits; otherwise the
// centred fallback box clamped to the ratio range.
func RandomResizedCropParams(width, height int, scale, ratio [2]float64, draws CropDraws) (CropParams, error) {
	if width <= 0 || height <= 0 {
		return CropParams{}, fmt.Errorf("random resized crop of %dx%d image: %w", width, height, ErrEmptyImage)
	}
	if !(scale[0] >= 0 && scale[0] <= scale[1]) || !(ratio[0] > 0 && ratio[0] <= ratio[1]) {
		return CropParams{}, fmt.Errorf("random resized crop scale %v ratio %v: %w", scale, ratio, ErrBadPolicy)
	}
	area := float64(width) * float64(height)
	lr := LogRatioBounds(ratio)
	s0, s1 := float32(scale[0]), float32(scale[1])
	for attempt := 1; attempt <= rrcAttempts; attempt++ {
		target := area * float64(draws.Uniform32(s0, s1))
		ar := AspectRatio(draws.Uniform32(lr[0], lr[1]))
		w := int(math.RoundToEven(math.Sqrt(target * ar)))
		h := int(math.RoundToEven(math.Sqrt(target / ar)))
		if 0 < w && w <= width && 0 < h && h <= height {
			top := draws.IntN(height - h + 1)
			left := draws.IntN(width - w + 1)
			return CropParams{Rect: Rect{Top: top, Left: left, Height: h, Width: w}, Attempts: attempt}, nil
		}
	}
	inRatio := float64(width) / float64(height)
	lo, hi := min(ratio[0], ratio[1]), max(ratio[0], ratio[1])
	w, h := width, height
	switch {
	case inRatio < lo:
		h = int(math.RoundToEven(float64(w) / lo))
	case inRatio > hi:
		w = int(math.RoundToEven(float64(h) * hi))
	}
	return CropParams{
		Rect:     Rect{Top: (height - h) / 2, Left: (width - w) / 2, Height: h, Width: w},
		Fallback: true,
		Attempts: rrcAttempts,
	}, nil
}

// AspectRatio is torch.exp of a float32 log-ratio draw (torch's own float32
// exp, see torchExpf), widened to float64 as .item() does.
func AspectRatio(logRatio float32) float64 {
	return float64(torchExpf(logRatio))
}

// ResizeShorterSize is the output size of torchvision's Resize(size) for a
// w×h image: the shorter side becomes size, the longer int(size·long/short).
func ResizeShorterSize(w, h, size int) (nw, nh int) {
	if w <= h {
		return size, int(float64(size*h) / float64(w))
	}
	return int(float64(size*w) / float64(h)), size
}

// CenterCropOffset is torchvision's center_crop placement along one axis:
// the crop starts int(round((n − c)/2)) into an axis of length n (Python
// round, half to even). A negative result means the crop is larger than the
// axis and torchvision pads: the image then starts −offset into the crop,
// with (c − n)//2 zero pixels before it.
func CenterCropOffset(n, c int) int {
	if c > n {
		return -((c - n) / 2)
	}
	return int(math.RoundToEven(float64(n-c) / 2))
}

// CenterCrop is torchvision's F.center_crop on a PIL image: a cw×ch window in
// the middle of src, zero-padded where it reaches outside (which only happens
// when the crop is larger than the image).
func CenterCrop(dst, src *Image, cw, ch int) error {
	if err := checkOutputSize(cw, ch); err != nil {
		return fmt.Errorf("center crop: %w", err)
	}
	if src.W <= 0 || src.H <= 0 {
		return fmt.Errorf("center crop: %w", ErrEmptyImage)
	}
	if dst == src {
		return fmt.Errorf("center crop: %w", ErrAliased)
	}
	top, left := CenterCropOffset(src.H, ch), CenterCropOffset(src.W, cw)
	dst.Reset(cw, ch)
	for y := 0; y < ch; y++ {
		d := dst.Row(y)
		sy := top + y
		if sy < 0 || sy >= src.H {
			clear(d)
			continue
		}
		s := src.Row(sy)
		for x := 0; x < cw; x++ {
			sx := left + x
			if sx < 0 || sx >= src.W {
				d[3*x], d[3*x+1], d[3*x+2] = 0, 0, 0
				continue
			}
			d[3*x], d[3*x+1], d[3*x+2] = s[3*sx], s[3*sx+1], s[3*sx+2]
		}
	}
	return nil
}

// ResizeCenterCrop is Resize(resize, BICUBIC) followed by CenterCrop(crop),
// the reference's evaluation transform. When the crop fits inside the resized
// image only the cropped window is resampled (same bytes, less work).
func (r *Resampler) ResizeCenterCrop(dst, src *Image, resize, crop int) error {
	if resize <= 0 || crop <= 0 || resize > MaxOutputPixels || crop > MaxOutputPixels {
		return fmt.Errorf("resize %d center crop %d: %w", resize, crop, ErrBadSize)
	}
	if src == nil || src.W <= 0 || src.H <= 0 {
		return fmt.Errorf("resize center crop: %w", ErrEmptyImage)
	}
	nw, nh := ResizeShorterSize(src.W, src.H, resize)
	full := Rect{Height: src.H, Width: src.W}
	if crop <= nw && crop <= nh {
		win := Rect{Top: CenterCropOffset(nh, crop), Left: CenterCropOffset(nw, crop), Height: crop, Width: crop}
		return r.resize(dst, src, full, nw, nh, win, false)
	}
	var tmp Image
	if err := r.resize(&tmp, src, full, nw, nh, Rect{Height: nh, Width: nw}, false); err != nil {
		return err
	}
	return CenterCrop(dst, &tmp, crop, crop)
}

// ResizeCenterCrop is the package-level form of Resampler.ResizeCenterCrop.
func ResizeCenterCrop(dst, src *Image, resize, crop int) error {
	var r Resampler
	return r.ResizeCenterCrop(dst, src, resize, crop)
}

// EvalResize is the Resize size the reference pairs with a CenterCrop of size:
// 256 for 224, scaled by 256/224 otherwise (int(size·256/224)).
func EvalResize(size int) int {
	return int(float64(size*256) / 224)
}

// EvalTransform is the reference's evaluation view: Resize(EvalResize(size))
// then CenterCrop(size), bicubic, to uint8.
func EvalTransform(dst, src *Image, size int) error {
	return ResizeCenterCrop(dst, src, EvalResize(size), size)
}
