package augment

import "fmt"

// ImageNet normalisation constants (DATA.MEAN / DATA.STD in the reference's
// configs), as float32 like torchvision's Normalize uses them.
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// NormalizeLUT holds, per channel, the normalised float32 value of every
// 8-bit level: ((float32(v)/255) − mean[c]) / std[c], computed in float32 as
// ToTensor followed by Normalize computes it. Build it once with
// NewNormalizeLUT and share it freely (it is read-only).
type NormalizeLUT [3][256]float32

// NewNormalizeLUT tabulates ToTensor+Normalize for the given mean and std.
// A zero std is an error (torchvision raises ValueError).
func NewNormalizeLUT(mean, std [3]float32) (*NormalizeLUT, error) {
	var t NormalizeLUT
	for c := 0; c < 3; c++ {
		if std[c] == 0 {
			return nil, fmt.Errorf("normalize: std[%d] is zero: %w", c, ErrBadFactor)
		}
		for v := 0; v < 256; v++ {
			t[c][v] = (float32(v)/255 - mean[c]) / std[c]
		}
	}
	return &t, nil
}

// ToTensorNormalize writes src as a float32 CHW tensor into dst
// (len ≥ 3·W·H): torchvision's ToTensor (v/255) followed by
// Normalize(mean, std), the step the trainer applies to the uint8 crops.
func ToTensorNormalize(dst []float32, src *Image, mean, std [3]float32) error {
	lut, err := NewNormalizeLUT(mean, std)
	if err != nil {
		return err
	}
	return lut.Apply(dst, src)
}

// Apply writes src as a normalised float32 CHW tensor into dst
// (len ≥ 3·W·H).
func (t *NormalizeLUT) Apply(dst []float32, src *Image) error {
	plane := src.W * src.H
	if len(dst) < 3*plane {
		return fmt.Errorf("to tensor: need %d floats for %dx%d, have %d: %w", 3*plane, src.W, src.H, len(dst), ErrShortBuffer)
	}
	r := dst[:plane]
	g := dst[plane : 2*plane]
	b := dst[2*plane : 3*plane]
	for y := 0; y < src.H; y++ {
		s := src.Row(y)
		o := y * src.W
		rr, gg, bb := r[o:o+src.W], g[o:o+src.W], b[o:o+src.W]
		for x := range rr {
			rr[x] = t[0][s[3*x]]
			gg[x] = t[1][s[3*x+1]]
			bb[x] = t[2][s[3*x+2]]
		}
	}
	return nil
}
