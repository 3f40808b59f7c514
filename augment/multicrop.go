package augment

import (
	"fmt"
	"math"
)

// MultiCropPolicy is the reference's MultiCropsDataAugmentation (SSLight
// src/data/transforms.py) as data. The config package fills it from the
// MULTI_VIEWS_TRANSFORMS section of an SSLight YAML:
//
//	GlobalScale  GLOBAL_CROPS_SCALE          LocalScale   LOCAL_CROPS_SCALE
//	GlobalSize   GLOBAL_CROP_SIZE            LocalSize    LOCAL_CROP_SIZE
//	NumLocal     LOCAL_CROPS_NUMBER          FlipProb     RANDOM_HORIZONTAL_FLIP_PROB[0]
//	JitterProb   COLOR_JITTER_PROB[0]        Jitter       COLOR_JITTER_INTENSITY
//	GrayProb     GREYSCALE_PROB[0]           BlurProb     GAUSSIAN_BLUR_PROB
//	SolarizeProb SOLARIZATION_PROB           BlurRadius   GaussianBlur's (0.1, 2.0)
//
// The reference reads index [0] of the flip, jitter and grey probability lists
// for every view, and only the second global view solarises (with
// SOLARIZATION_PROB[1]); SolarizeProb[0] is kept for the YAML's shape and is
// not used by this policy, exactly as in the reference.
//
// Each view is, in order: RandomResizedCrop(scale, size, ratio (3/4, 4/3),
// bicubic) → horizontal flip (p FlipProb) → ColorJitter (applied with
// p JitterProb, random order of the four operations) → grayscale (p GrayProb)
// → Gaussian blur (p BlurProb[0] / [1] / [2] for global 1 / global 2 / local,
// radius U(BlurRadius)) → solarize at 128 (global 2 only, p SolarizeProb[1]).
// Views are uint8; ToTensorNormalize is the trainer's step.
type MultiCropPolicy struct {
	GlobalScale, LocalScale         [2]float64
	GlobalSize, LocalSize, NumLocal int // sizes at most MaxViewSize
	FlipProb, JitterProb, GrayProb  float64
	// Jitter is ColorJitter's (brightness, contrast, saturation, hue).
	Jitter [4]float64
	// BlurProb is (global 1, global 2, local).
	BlurProb [3]float64
	// SolarizeProb is (global 1, global 2); only [1] is used.
	SolarizeProb [2]float64
	// BlurRadius is the range the blur radius is drawn from.
	BlurRadius [2]float64
}

// SSLightPolicy is the paper's multi-crop setting: global scale (0.3, 1),
// local scale (0.05, 0.3), 2×224 + 6×128, DINO's colour augmentations.
func SSLightPolicy() MultiCropPolicy {
	p := DINOPolicy()
	p.GlobalScale = [2]float64{0.3, 1.0}
	p.LocalScale = [2]float64{0.05, 0.3}
	p.LocalSize = 128
	return p
}

// DINOPolicy is the baseline multi-crop setting the paper starts from:
// global scale (0.14, 1), local scale (0.05, 0.14), 2×224 + 6×96.
func DINOPolicy() MultiCropPolicy {
	return MultiCropPolicy{
		GlobalScale:  [2]float64{0.14, 1.0},
		LocalScale:   [2]float64{0.05, 0.14},
		GlobalSize:   224,
		LocalSize:    96,
		NumLocal:     6,
		FlipProb:     0.5,
		JitterProb:   0.8,
		GrayProb:     0.2,
		Jitter:       [4]float64{0.4, 0.4, 0.2, 0.1},
		BlurProb:     [3]float64{1.0, 0.1, 0.5},
		SolarizeProb: [2]float64{0.0, 0.2},
		BlurRadius:   [2]float64{0.1, 2.0},
	}
}

// NumViews is 2 global views plus NumLocal local views.
func (p *MultiCropPolicy) NumViews() int { return 2 + p.NumLocal }

// Validate reports the first invalid field, naming it.
func (p *MultiCropPolicy) Validate() error {
	bad := func(field string, v any) error {
		return fmt.Errorf("multi-crop policy %s = %v: %w", field, v, ErrBadPolicy)
	}
	prob := func(v float64) bool { return v >= 0 && v <= 1 }
	scale := func(s [2]float64) bool { return s[0] >= 0 && s[0] <= s[1] && s[1] > 0 && !math.IsInf(s[1], 0) }
	switch {
	case !scale(p.GlobalScale):
		return bad("GlobalScale", p.GlobalScale)
	case !scale(p.LocalScale):
		return bad("LocalScale", p.LocalScale)
	case p.GlobalSize <= 0 || p.GlobalSize > MaxViewSize:
		return bad("GlobalSize", p.GlobalSize)
	case (p.LocalSize <= 0 || p.LocalSize > MaxViewSize) && p.NumLocal > 0:
		return bad("LocalSize", p.LocalSize)
	case p.NumLocal < 0:
		return bad("NumLocal", p.NumLocal)
	case !prob(p.FlipProb):
		return bad("FlipProb", p.FlipProb)
	case !prob(p.JitterProb):
		return bad("JitterProb", p.JitterProb)
	case !prob(p.GrayProb):
		return bad("GrayProb", p.GrayProb)
	case !prob(p.BlurProb[0]) || !prob(p.BlurProb[1]) || !prob(p.BlurProb[2]):
		return bad("BlurProb", p.BlurProb)
	case !prob(p.SolarizeProb[0]) || !prob(p.SolarizeProb[1]):
		return bad("SolarizeProb", p.SolarizeProb)
	case !(p.BlurRadius[0] >= 0 && p.BlurRadius[0] <= p.BlurRadius[1] && p.BlurRadius[1] <= MaxBlurRadius):
		return bad("BlurRadius", p.BlurRadius)
	}
	for i, v := range p.Jitter[:3] {
		if !(v >= 0) || math.IsInf(v, 0) {
			return bad(fmt.Sprintf("Jitter[%d]", i), v)
		}
	}
	if !(p.Jitter[3] >= 0 && p.Jitter[3] <= 0.5) {
		return bad("Jitter[3] (hue)", p.Jitter[3])
	}
	return nil
}

// MultiCropViews receives the views of one image and keeps every buffer for
// the next: Views[0..1] are the global views, Views[2..] the local ones, and
// Params[i] records how Views[i] was made. One MultiCropViews per goroutine.
type MultiCropViews struct {
	Views  []Image
	Params []ViewParams
	ws     workspace
}

// Global returns the two global views.
func (v *MultiCropViews) Global() []Image { return v.Views[:2] }

// Local returns the local views.
func (v *MultiCropViews) Local() []Image { return v.Views[2:] }

// workspace is the scratch state of rendering views.
type workspace struct {
	rs  Resampler
	bl  Blurrer
	rng ViewRNG
}

// Apply makes every view of src for (seed, key, epoch) into out, reusing its
// buffers. Each view's random draws come from its own ViewRNG (ViewSeed of
// seed, key, epoch and the view index), so the result does not depend on the
// order images or views are processed in, or on which goroutine does it.
func (p *MultiCropPolicy) Apply(src *Image, seed uint64, key string, epoch int, out *MultiCropViews) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if src == nil || src.W <= 0 || src.H <= 0 {
		return fmt.Errorf("multi-crop %q: %w", key, ErrEmptyImage)
	}
	n := p.NumViews()
	if cap(out.Views) < n {
		out.Views = append(out.Views[:cap(out.Views)], make([]Image, n-cap(out.Views))...)
	}
	out.Views = out.Views[:n]
	if cap(out.Params) < n {
		out.Params = append(out.Params[:cap(out.Params)], make([]ViewParams, n-cap(out.Params))...)
	}
	out.Params = out.Params[:n]
	is := ImageSeed(seed, key, epoch)
	for v := 0; v < n; v++ {
		out.ws.rng.Seed(ViewSeed(is, v))
		if err := p.draw(&out.Params[v], v, src.W, src.H, &out.ws.rng); err != nil {
			return fmt.Errorf("multi-crop %q view %d: %w", key, v, err)
		}
		if err := out.ws.render(&out.Views[v], src, &out.Params[v]); err != nil {
			return fmt.Errorf("multi-crop %q view %d: %w", key, v, err)
		}
	}
	return nil
}

// DrawParams returns the parameters view `view` of a width×height image gets
// for (seed, key, epoch), without touching pixels: what Apply records in
// Params[view].
func (p *MultiCropPolicy) DrawParams(width, height int, seed uint64, key string, epoch, view int) (ViewParams, error) {
	var vp ViewParams
	if err := p.Validate(); err != nil {
		return vp, err
	}
	if view < 0 || view >= p.NumViews() {
		return vp, fmt.Errorf("view %d of %d: %w", view, p.NumViews(), ErrBadPolicy)
	}
	var rng ViewRNG
	rng.Seed(ViewSeed(ImageSeed(seed, key, epoch), view))
	err := p.draw(&vp, view, width, height, &rng)
	return vp, err
}

// draw makes view v's random choices in the reference's order: crop box,
// flip, jitter (apply?, order, factors), grayscale, blur (apply?, radius),
// solarize.
func (p *MultiCropPolicy) draw(vp *ViewParams, v, width, height int, rng *ViewRNG) error {
	vp.reset()
	vp.View = v
	scale, blurProb := p.LocalScale, p.BlurProb[2]
	vp.Size = p.LocalSize
	if v < 2 {
		scale, blurProb = p.GlobalScale, p.BlurProb[v]
		vp.Size = p.GlobalSize
	}
	crop, err := RandomResizedCropParams(width, height, scale, DefaultRatio, rng)
	if err != nil {
		return err
	}
	vp.Crop = crop
	// torch.rand(1) < p (RandomHorizontalFlip).
	vp.Flip = rng.Float64() < p.FlipProb
	// RandomApply runs the transform unless p < torch.rand(1).
	if rng.Float64() <= p.JitterProb {
		p.drawJitter(&vp.Jitter, rng)
		vp.Jittered = vp.Jitter.Order.Len() > 0
	}
	vp.Gray = rng.Float64() < p.GrayProb
	// The reference's GaussianBlur: random.random() <= p, radius uniform.
	if rng.Float64() <= blurProb {
		vp.Blur = true
		vp.BlurRadius = rng.Uniform64(p.BlurRadius[0], p.BlurRadius[1])
	}
	// The reference's Solarization: random.random() < p, second global view only.
	if v == 1 {
		vp.Solarize = rng.Float64() < p.SolarizeProb[1]
	}
	return nil
}

// drawJitter is ColorJitter.get_params: a random permutation of the four
// operations, then each enabled factor drawn in float32 from brightness,
// contrast and saturation U(max(0, 1−x), 1+x) and hue U(−h, h). An intensity
// of 0 disables its operation, which torchvision then skips.
func (p *MultiCropPolicy) drawJitter(j *JitterParams, rng *ViewRNG) {
	perm := rng.Perm4()
	var f [4]float64
	for op := 0; op < 3; op++ {
		if x := p.Jitter[op]; x > 0 {
			f[op] = float64(rng.Uniform32(float32(max(0, 1-x)), float32(1+x)))
		}
	}
	if h := p.Jitter[3]; h > 0 {
		f[3] = float64(rng.Uniform32(float32(-h), float32(h)))
	}
	j.Order = JitterOrder{}
	for _, op := range perm {
		if p.Jitter[op] > 0 {
			j.Order.ops[j.Order.n] = uint8(op)
			j.Order.n++
		}
	}
	j.Brightness, j.Contrast, j.Saturation, j.Hue = f[0], f[1], f[2], f[3]
}

// MaxViewSize bounds the side of a rendered view, so that parameters read
// from elsewhere (Replay of a JSON record) cannot ask for absurd allocations.
const MaxViewSize = 8192

// render applies recorded view parameters to src.
func (w *workspace) render(dst, src *Image, vp *ViewParams) error {
	if vp.Size <= 0 || vp.Size > MaxViewSize {
		return fmt.Errorf("view size %d not in [1, %d]: %w", vp.Size, MaxViewSize, ErrBadPolicy)
	}
	// The flip follows the crop in the reference; mirroring the resize
	// weights gives the same bytes in one pass.
	if err := w.rs.ResizedCrop(dst, src, vp.Crop.Rect, vp.Size, vp.Size, vp.Flip); err != nil {
		return err
	}
	// Jitter and grayscale are per-pixel: one fused pass (two with contrast).
	if vp.Jittered || vp.Gray {
		var none JitterParams
		j := &vp.Jitter
		if !vp.Jittered {
			j = &none
		}
		if err := colorJitter(dst, dst, j, vp.Gray); err != nil {
			return err
		}
	}
	if vp.Blur {
		if err := w.bl.GaussianBlur(dst, dst, vp.BlurRadius); err != nil {
			return err
		}
	}
	if vp.Solarize {
		Solarize(dst, dst, 128)
	}
	return nil
}

// Replay re-applies recorded view parameters (as Apply stored them in
// MultiCropViews.Params, possibly after a JSON round trip) to the source image
// and reproduces the view byte for byte.
func Replay(dst, src *Image, vp *ViewParams) error {
	var w workspace
	return w.render(dst, src, vp)
}
