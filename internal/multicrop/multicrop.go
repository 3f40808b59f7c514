// Package multicrop converts a configuration's MULTI_VIEWS_TRANSFORMS
// section into the augment package's multi-crop policy. It is the one
// conversion both sides of the views contract use: the preparation
// pipeline (transforms, rendering views into shards) and the trainer's
// loader (rendering views from image shards), so the two cannot drift.
package multicrop

import (
	"fmt"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/configs"
)

// FromConfig converts the MULTI_VIEWS_TRANSFORMS section into the
// augment package's multi-crop policy, exactly as the reference's
// MultiCropsDataAugmentation reads it: element 0 of the flip, jitter and
// grey-scale probability lists serves every view; GAUSSIAN_BLUR_PROB is
// (global 1, global 2, local); SOLARIZATION_PROB[1] is the second global
// view's.
func FromConfig(c *configs.Config) (augment.MultiCropPolicy, error) {
	m := c.MultiViewsTransforms
	need := func(name string, v []float64, n int) error {
		if len(v) < n {
			return fmt.Errorf("MULTI_VIEWS_TRANSFORMS.%s has %d values, want %d", name, len(v), n)
		}
		return nil
	}
	for _, chk := range []struct {
		name string
		v    []float64
		n    int
	}{
		{"GLOBAL_CROPS_SCALE", m.GlobalCropsScale, 2}, {"LOCAL_CROPS_SCALE", m.LocalCropsScale, 2},
		{"RANDOM_HORIZONTAL_FLIP_PROB", m.RandomHorizontalFlipProb, 1}, {"COLOR_JITTER_PROB", m.ColorJitterProb, 1},
		{"GREYSCALE_PROB", m.GreyscaleProb, 1}, {"COLOR_JITTER_INTENSITY", m.ColorJitterIntensity, 4},
		{"GAUSSIAN_BLUR_PROB", m.GaussianBlurProb, 3}, {"SOLARIZATION_PROB", m.SolarizationProb, 2},
	} {
		if err := need(chk.name, chk.v, chk.n); err != nil {
			return augment.MultiCropPolicy{}, err
		}
	}
	p := augment.MultiCropPolicy{
		GlobalScale:  [2]float64{m.GlobalCropsScale[0], m.GlobalCropsScale[1]},
		LocalScale:   [2]float64{m.LocalCropsScale[0], m.LocalCropsScale[1]},
		GlobalSize:   m.GlobalCropSize,
		LocalSize:    m.LocalCropSize,
		NumLocal:     m.LocalCropsNumber,
		FlipProb:     m.RandomHorizontalFlipProb[0],
		JitterProb:   m.ColorJitterProb[0],
		GrayProb:     m.GreyscaleProb[0],
		Jitter:       [4]float64{m.ColorJitterIntensity[0], m.ColorJitterIntensity[1], m.ColorJitterIntensity[2], m.ColorJitterIntensity[3]},
		BlurProb:     [3]float64{m.GaussianBlurProb[0], m.GaussianBlurProb[1], m.GaussianBlurProb[2]},
		SolarizeProb: [2]float64{m.SolarizationProb[0], m.SolarizationProb[1]},
		BlurRadius:   [2]float64{0.1, 2.0}, // the reference's GaussianBlur defaults
	}
	return p, nil
}
