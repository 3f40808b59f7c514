package augment

import (
	"fmt"
	"math"
)

// Colour operations with PIL 9.4 arithmetic, as torchvision 0.14 applies them
// to PIL images. Every function here works pixel by pixel, so dst may be src
// (in place); otherwise dst is resized to src's size.

// prepareDst sizes dst like src unless the operation runs in place.
func prepareDst(dst, src *Image) {
	if dst != src {
		dst.Reset(src.W, src.H)
	}
}

// luma is PIL's "L" conversion of one RGB pixel (ITU-R 601-2 weights in 16-bit
// fixed point, rounded).
func luma(r, g, b uint8) uint8 {
	return uint8((19595*uint32(r) + 38470*uint32(g) + 7471*uint32(b) + 0x8000) >> 16)
}

// blendValue is one channel of PIL's Image.blend(deg, img, alpha):
// deg + alpha·(v − deg) in float32, truncated toward zero after clamping to
// [0, 255]. For alpha in [0, 1] the clamp never triggers, which makes this the
// formula of both branches of PIL's ImagingBlend (and of its alpha = 0 / 1
// copies, which the formula reproduces exactly).
func blendValue(deg, v int32, alpha float32) uint8 {
	t := float32(deg) + float32(alpha*float32(v-deg))
	if t <= 0 {
		return 0
	}
	if t >= 255 {
		return 255
	}
	return uint8(t)
}

// blendLUT fills lut with blendValue(deg, v, alpha) for every v.
func blendLUT(lut *[256]uint8, deg int32, alpha float32) {
	for v := range lut {
		lut[v] = blendValue(deg, int32(v), alpha)
	}
}

func checkFactor(op string, f float64) error {
	if !(f >= 0) || math.IsInf(f, 1) {
		return fmt.Errorf("%s factor %v: %w", op, f, ErrBadFactor)
	}
	return nil
}

// applyLUT maps every channel of src through lut into dst.
func applyLUT(dst, src *Image, lut *[256]uint8) {
	prepareDst(dst, src)
	for y := 0; y < src.H; y++ {
		s := src.Row(y)
		d := dst.Row(y)
		d = d[:len(s)]
		for i, v := range s {
			d[i] = lut[v]
		}
	}
}

// AdjustBrightness is torchvision's F.adjust_brightness on a PIL image
// (ImageEnhance.Brightness): a blend of black and src with the given factor.
// A negative factor is an error, as in torchvision.
func AdjustBrightness(dst, src *Image, factor float64) error {
	if err := checkFactor("brightness", factor); err != nil {
		return err
	}
	runPixelOps(dst, src, []pixelOp{{kind: opBrightness, alpha: float32(factor)}})
	return nil
}

// MeanLuma is int(mean(L) + 0.5) of src's "L" conversion: the grey level
// ImageEnhance.Contrast blends towards.
func MeanLuma(src *Image) int {
	return meanFromSum(lumaSum(src), src)
}

// meanFromSum is ImageStat's mean of L (a float64 division, as in Python)
// rounded as ImageEnhance.Contrast rounds it.
func meanFromSum(sum uint64, img *Image) int {
	n := img.W * img.H
	if n == 0 {
		return 0
	}
	return int(float64(sum)/float64(n) + 0.5)
}

// lumaSumGo is the sum of PIL's L over src.
func lumaSumGo(src *Image) uint64 {
	var sum uint64
	for y := 0; y < src.H; y++ {
		s := src.Row(y)
		for i := 0; i+2 < len(s); i += 3 {
			sum += uint64(luma(s[i], s[i+1], s[i+2]))
		}
	}
	return sum
}

// AdjustContrast is torchvision's F.adjust_contrast on a PIL image
// (ImageEnhance.Contrast): a blend of the constant grey int(mean(L)+0.5) and
// src with the given factor.
func AdjustContrast(dst, src *Image, factor float64) error {
	if err := checkFactor("contrast", factor); err != nil {
		return err
	}
	runPixelOps(dst, src, []pixelOp{{kind: opContrast, alpha: float32(factor), arg: int32(MeanLuma(src))}})
	return nil
}

// AdjustSaturation is torchvision's F.adjust_saturation on a PIL image
// (ImageEnhance.Color): a per-pixel blend of the pixel's grey level L and the
// pixel with the given factor.
func AdjustSaturation(dst, src *Image, factor float64) error {
	if err := checkFactor("saturation", factor); err != nil {
		return err
	}
	runPixelOps(dst, src, []pixelOp{{kind: opSaturation, alpha: float32(factor)}})
	return nil
}

// saturationGo is the portable AdjustSaturation.
func saturationGo(dst, src *Image, alpha float32) {
	prepareDst(dst, src)
	for y := 0; y < src.H; y++ {
		s := src.Row(y)
		d := dst.Row(y)
		d = d[:len(s)]
		for i := 0; i+2 < len(s); i += 3 {
			r, g, b := s[i], s[i+1], s[i+2]
			l := int32(luma(r, g, b))
			d[i] = blendValue(l, int32(r), alpha)
			d[i+1] = blendValue(l, int32(g), alpha)
			d[i+2] = blendValue(l, int32(b), alpha)
		}
	}
}

// Grayscale is torchvision's F.rgb_to_grayscale(img, 3) on a PIL image: PIL's
// "L" conversion replicated into the three channels.
func Grayscale(dst, src *Image) {
	runPixelOps(dst, src, []pixelOp{{kind: opGray}})
}

// grayscaleGo is the portable Grayscale.
func grayscaleGo(dst, src *Image) {
	prepareDst(dst, src)
	for y := 0; y < src.H; y++ {
		s := src.Row(y)
		d := dst.Row(y)
		d = d[:len(s)]
		for i := 0; i+2 < len(s); i += 3 {
			l := luma(s[i], s[i+1], s[i+2])
			d[i], d[i+1], d[i+2] = l, l, l
		}
	}
}

// Solarize is PIL's ImageOps.solarize: every channel value at or above
// threshold is inverted (v → 255 − v). The reference uses threshold 128.
func Solarize(dst, src *Image, threshold int) {
	threshold = max(0, min(threshold, 256))
	runPixelOps(dst, src, []pixelOp{{kind: opSolarize, arg: int32(threshold)}})
}

// solarizeGo is the portable Solarize.
func solarizeGo(dst, src *Image, threshold int) {
	var lut [256]uint8
	for v := range lut {
		if v < threshold {
			lut[v] = uint8(v)
		} else {
			lut[v] = uint8(255 - v)
		}
	}
	applyLUT(dst, src, &lut)
}

// HFlip mirrors src left to right into dst (F.hflip). dst may be src.
func HFlip(dst, src *Image) {
	prepareDst(dst, src)
	w := src.W
	for y := 0; y < src.H; y++ {
		s := src.Row(y)
		d := dst.Row(y)
		for x := 0; x < w/2; x++ {
			j := 3 * (w - 1 - x)
			i := 3 * x
			r, g, b := s[i], s[i+1], s[i+2]
			d[i], d[i+1], d[i+2] = s[j], s[j+1], s[j+2]
			d[j], d[j+1], d[j+2] = r, g, b
		}
		if w%2 == 1 {
			i := 3 * (w / 2)
			d[i], d[i+1], d[i+2] = s[i], s[i+1], s[i+2]
		}
	}
}

// HueShift is the hue rotation F.adjust_hue adds to PIL's 8-bit H channel:
// np.uint8(factor·255), i.e. truncated toward zero, then taken mod 256.
func HueShift(factor float64) uint8 {
	return uint8(int(factor*255) & 0xFF)
}

// AdjustHue is torchvision's F.adjust_hue on a PIL image: convert to PIL's
// 8-bit HSV, add HueShift(factor) to H with wrap-around, convert back.
// factor must lie in [-0.5, 0.5].
func AdjustHue(dst, src *Image, factor float64) error {
	if !(factor >= -0.5 && factor <= 0.5) {
		return fmt.Errorf("hue factor %v not in [-0.5, 0.5]: %w", factor, ErrBadFactor)
	}
	runPixelOps(dst, src, []pixelOp{{kind: opHue, arg: int32(HueShift(factor))}})
	return nil
}

// hueImageGo is the portable hue kernel.
func hueImageGo(dst, src *Image, shift uint8) {
	for y := 0; y < src.H; y++ {
		hueRowGo(dst.Row(y), src.Row(y), shift)
	}
}

// hueRowGo applies the HSV round trip with a hue shift to one row.
func hueRowGo(d, s []uint8, shift uint8) {
	d = d[:len(s)]
	for i := 0; i+2 < len(s); i += 3 {
		h, sat, v := rgbToHSV(s[i], s[i+1], s[i+2])
		d[i], d[i+1], d[i+2] = hsvToRGB(h+shift, sat, v)
	}
}

// rgbToHSV is PIL's rgb2hsv (Convert.c): float32 variables, double-precision
// constants, hue and saturation truncated to 8 bits.
func rgbToHSV(r, g, b uint8) (h, s, v uint8) {
	maxc := max(r, g, b)
	minc := min(r, g, b)
	if maxc == minc {
		return 0, 0, maxc
	}
	cr := float32(maxc - minc)
	sf := cr / float32(maxc)
	rc := float32(maxc-r) / cr
	gc := float32(maxc-g) / cr
	bc := float32(maxc-b) / cr
	var hf float32
	switch {
	case r == maxc:
		hf = bc - gc
	case g == maxc:
		hf = float32(2.0 + float64(rc) - float64(bc))
	default:
		hf = float32(4.0 + float64(gc) - float64(rc))
	}
	// fmod(hf/6 + 1, 1): the argument lies in [5/6, 11/6), where fmod is an
	// exact subtraction of 1 above 1.
	x := float64(hf)/6.0 + 1.0
	if x >= 1 {
		x -= 1
	}
	hf = float32(x)
	return clampInt8(int(float64(hf) * 255.0)), clampInt8(int(float64(sf) * 255.0)), maxc
}

// hsvToRGB is PIL's hsv2rgb (Convert.c), rounding half away from zero.
func hsvToRGB(h, s, v uint8) (r, g, b uint8) {
	if s == 0 {
		return v, v, v
	}
	hd := float64(h) * 6.0 / 255.0
	i := int(math.Floor(hd))
	f := float32(hd - float64(i))
	fs := float32(float64(s) / 255.0)
	vf := float64(v)
	p := clampInt8(int(math.Round(vf * (1.0 - float64(fs)))))
	q := clampInt8(int(math.Round(vf * (1.0 - float64(fs*f)))))
	t := clampInt8(int(math.Round(vf * (1.0 - float64(float64(fs)*(1.0-float64(f)))))))
	switch i % 6 {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	default:
		return v, p, q
	}
}

func clampInt8(v int) uint8 {
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// Jitter operation ids, in torchvision's ColorJitter numbering.
const (
	JitterBrightness = 0
	JitterContrast   = 1
	JitterSaturation = 2
	JitterHue        = 3
)

// ColorJitter applies the enabled colour operations of p in p.Order, each on
// the 8-bit result of the previous one, as torchvision's ColorJitter.forward
// does once its parameters are drawn. dst may be src.
func ColorJitter(dst, src *Image, p *JitterParams) error {
	return colorJitter(dst, src, p, false)
}

// checkJitter validates the order and the factors of the operations p will
// apply.
func checkJitter(p *JitterParams) error {
	var seen [4]bool
	for i := 0; i < p.Order.Len(); i++ {
		op := p.Order.Op(i)
		var err error
		if op >= 0 && op < len(seen) {
			if seen[op] {
				return fmt.Errorf("color jitter: operation %d repeated: %w", op, ErrBadFactor)
			}
			seen[op] = true
		}
		switch op {
		case JitterBrightness:
			err = checkFactor("brightness", p.Brightness)
		case JitterContrast:
			err = checkFactor("contrast", p.Contrast)
		case JitterSaturation:
			err = checkFactor("saturation", p.Saturation)
		case JitterHue:
			if !(p.Hue >= -0.5 && p.Hue <= 0.5) {
				err = fmt.Errorf("hue factor %v not in [-0.5, 0.5]: %w", p.Hue, ErrBadFactor)
			}
		default:
			err = fmt.Errorf("color jitter: unknown operation %d: %w", op, ErrBadFactor)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// colorJitter is ColorJitter followed, when gray is set, by Grayscale (the
// next step of the reference's views). Consecutive per-pixel operations run
// as one pass; contrast needs the mean grey level of its input, so the
// operations before it run first (summing L on the way).
func colorJitter(dst, src *Image, p *JitterParams, gray bool) error {
	if err := checkJitter(p); err != nil {
		return err
	}
	var buf [6]pixelOp
	seg := buf[:0]
	cur := src
	flush := func(wantLuma bool) uint64 {
		var sum uint64
		if len(seg) > 0 {
			sum = runPixelOpsLuma(dst, cur, seg, wantLuma)
			cur = dst
			seg = seg[:0]
		} else if wantLuma {
			sum = lumaSum(cur)
		}
		return sum
	}
	for i := 0; i < p.Order.Len(); i++ {
		switch p.Order.Op(i) {
		case JitterBrightness:
			seg = append(seg, pixelOp{kind: opBrightness, alpha: float32(p.Brightness)})
		case JitterContrast:
			m := meanFromSum(flush(true), cur)
			seg = append(seg, pixelOp{kind: opContrast, alpha: float32(p.Contrast), arg: int32(m)})
		case JitterSaturation:
			seg = append(seg, pixelOp{kind: opSaturation, alpha: float32(p.Saturation)})
		case JitterHue:
			seg = append(seg, pixelOp{kind: opHue, arg: int32(HueShift(p.Hue))})
		}
	}
	if gray {
		seg = append(seg, pixelOp{kind: opGray})
	}
	flush(false)
	if cur != dst {
		copyImage(dst, src)
	}
	return nil
}

// Per-pixel operations, as one list the SIMD kernel runs in a single pass.
const (
	opBrightness = iota // blend with black, alpha
	opContrast          // blend with the grey level arg, alpha
	opSaturation        // blend with the pixel's L, alpha
	opHue               // HSV round trip with H += arg
	opGray              // L into R, G, B
	opSolarize          // invert values >= arg
)

// pixelOp is one per-pixel operation (the C kernel's pixel_op).
type pixelOp struct {
	kind  int32
	arg   int32
	alpha float32
}

// runPixelOps applies ops in order to every pixel of src into dst.
func runPixelOps(dst, src *Image, ops []pixelOp) {
	runPixelOpsLuma(dst, src, ops, false)
}

// runPixelOpsLuma is runPixelOps that also returns the sum of L over the
// result when wantLuma is set. Without the SIMD kernels each operation is its
// own pass of the portable code.
func runPixelOpsLuma(dst, src *Image, ops []pixelOp, wantLuma bool) uint64 {
	if simdKernels {
		prepareDst(dst, src)
		return pixelOps(dst, src, ops, wantLuma)
	}
	return runPixelOpsGo(dst, src, ops, wantLuma)
}

// runPixelOpsGo is the portable runPixelOpsLuma: one pass per operation.
func runPixelOpsGo(dst, src *Image, ops []pixelOp, wantLuma bool) uint64 {
	cur := src
	for i := range ops {
		op := &ops[i]
		switch op.kind {
		case opBrightness:
			var lut [256]uint8
			blendLUT(&lut, 0, op.alpha)
			applyLUT(dst, cur, &lut)
		case opContrast:
			var lut [256]uint8
			blendLUT(&lut, op.arg, op.alpha)
			applyLUT(dst, cur, &lut)
		case opSaturation:
			saturationGo(dst, cur, op.alpha)
		case opHue:
			prepareDst(dst, cur)
			hueImageGo(dst, cur, uint8(op.arg))
		case opGray:
			grayscaleGo(dst, cur)
		case opSolarize:
			solarizeGo(dst, cur, int(op.arg))
		}
		cur = dst
	}
	if cur != dst {
		copyImage(dst, src)
	}
	if wantLuma {
		return lumaSumGo(dst)
	}
	return 0
}

// pixelOpsTailGo applies ops pixel by pixel to columns x0.. of every row (the
// columns the SIMD kernel leaves to Go) and returns the sum of L over them.
func pixelOpsTailGo(dst, src *Image, x0 int, ops []pixelOp) uint64 {
	var sum uint64
	for y := 0; y < src.H; y++ {
		s := src.Row(y)[3*x0:]
		d := dst.Row(y)[3*x0:]
		d = d[:len(s)]
		for i := 0; i+2 < len(s); i += 3 {
			r, g, b := s[i], s[i+1], s[i+2]
			for k := range ops {
				r, g, b = ops[k].apply(r, g, b)
			}
			d[i], d[i+1], d[i+2] = r, g, b
			sum += uint64(luma(r, g, b))
		}
	}
	return sum
}

// apply runs the operation on one pixel.
func (op *pixelOp) apply(r, g, b uint8) (uint8, uint8, uint8) {
	switch op.kind {
	case opBrightness:
		return blendValue(0, int32(r), op.alpha), blendValue(0, int32(g), op.alpha), blendValue(0, int32(b), op.alpha)
	case opContrast:
		return blendValue(op.arg, int32(r), op.alpha), blendValue(op.arg, int32(g), op.alpha), blendValue(op.arg, int32(b), op.alpha)
	case opSaturation:
		l := int32(luma(r, g, b))
		return blendValue(l, int32(r), op.alpha), blendValue(l, int32(g), op.alpha), blendValue(l, int32(b), op.alpha)
	case opHue:
		h, s, v := rgbToHSV(r, g, b)
		return hsvToRGB(h+uint8(op.arg), s, v)
	case opGray:
		l := luma(r, g, b)
		return l, l, l
	case opSolarize:
		th := int(op.arg)
		f := func(v uint8) uint8 {
			if int(v) < th {
				return v
			}
			return 255 - v
		}
		return f(r), f(g), f(b)
	}
	return r, g, b
}

// copyImage copies src into dst (tight stride).
func copyImage(dst, src *Image) {
	if dst == src {
		return
	}
	dst.Reset(src.W, src.H)
	for y := 0; y < src.H; y++ {
		copy(dst.Row(y), src.Row(y))
	}
}
