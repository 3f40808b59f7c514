package transforms

import (
	"strings"
	"testing"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/configs"
)

// The expected policies are the presets' MULTI_VIEWS_TRANSFORMS values as
// the reference's MultiCropsDataAugmentation reads them (element 0 of the
// flip, jitter and grey-scale lists; blur (global 1, global 2, local);
// solarization of the second global view), plus its GaussianBlur radius
// range (0.1, 2.0).
func TestPolicyFromConfigPresets(t *testing.T) {
	colour := func(p augment.MultiCropPolicy) augment.MultiCropPolicy {
		p.GlobalSize, p.NumLocal = 224, 6
		p.FlipProb, p.JitterProb, p.GrayProb = 0.5, 0.8, 0.2
		p.Jitter = [4]float64{0.4, 0.4, 0.2, 0.1}
		p.BlurProb = [3]float64{1.0, 0.1, 0.5}
		p.SolarizeProb = [2]float64{0.0, 0.2}
		p.BlurRadius = [2]float64{0.1, 2.0}
		return p
	}
	for _, tc := range []struct {
		preset      string
		want        augment.MultiCropPolicy
		sampleBytes int64
	}{
		{"dino_cnn_sslight", colour(augment.MultiCropPolicy{
			GlobalScale: [2]float64{0.3, 1.0}, LocalScale: [2]float64{0.05, 0.3}, LocalSize: 128,
		}), 3*(2*224*224+6*128*128) + 6*1024},
		{"dino_cnn_baseline", colour(augment.MultiCropPolicy{
			GlobalScale: [2]float64{0.14, 1.0}, LocalScale: [2]float64{0.05, 0.14}, LocalSize: 96,
		}), 3*(2*224*224+6*96*96) + 6*1024},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			cfg, err := configs.Preset(tc.preset)
			if err != nil {
				t.Fatal(err)
			}
			got, err := PolicyFromConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("policy\n got %+v\nwant %+v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("the preset's policy is invalid: %v", err)
			}
			if b := SampleBytes(got); b != tc.sampleBytes {
				t.Errorf("SampleBytes = %d, want %d", b, tc.sampleBytes)
			}
		})
	}
}

// A list shorter than the reference indexes is an error naming the key,
// before any work starts.
func TestPolicyFromConfigShortLists(t *testing.T) {
	for _, tc := range []struct {
		key  string
		cut  func(m *configs.MultiViewsTransforms)
		want string
	}{
		{"GLOBAL_CROPS_SCALE", func(m *configs.MultiViewsTransforms) { m.GlobalCropsScale = m.GlobalCropsScale[:1] }, "has 1 values, want 2"},
		{"LOCAL_CROPS_SCALE", func(m *configs.MultiViewsTransforms) { m.LocalCropsScale = nil }, "has 0 values, want 2"},
		{"RANDOM_HORIZONTAL_FLIP_PROB", func(m *configs.MultiViewsTransforms) { m.RandomHorizontalFlipProb = nil }, "has 0 values, want 1"},
		{"COLOR_JITTER_PROB", func(m *configs.MultiViewsTransforms) { m.ColorJitterProb = nil }, "has 0 values, want 1"},
		{"GREYSCALE_PROB", func(m *configs.MultiViewsTransforms) { m.GreyscaleProb = nil }, "has 0 values, want 1"},
		{"COLOR_JITTER_INTENSITY", func(m *configs.MultiViewsTransforms) { m.ColorJitterIntensity = m.ColorJitterIntensity[:3] }, "has 3 values, want 4"},
		{"GAUSSIAN_BLUR_PROB", func(m *configs.MultiViewsTransforms) { m.GaussianBlurProb = m.GaussianBlurProb[:2] }, "has 2 values, want 3"},
		{"SOLARIZATION_PROB", func(m *configs.MultiViewsTransforms) { m.SolarizationProb = m.SolarizationProb[:1] }, "has 1 values, want 2"},
	} {
		cfg, err := configs.Preset("dino_cnn_sslight")
		if err != nil {
			t.Fatal(err)
		}
		tc.cut(&cfg.MultiViewsTransforms)
		_, err = PolicyFromConfig(cfg)
		if want := "MULTI_VIEWS_TRANSFORMS." + tc.key + " " + tc.want; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s cut short: err %v, want one containing %q", tc.key, err, want)
		}
	}
}

// Lists whose elements differ show which element serves which view.
func TestPolicyFromConfigElements(t *testing.T) {
	cfg, err := configs.Preset("dino_cnn_sslight")
	if err != nil {
		t.Fatal(err)
	}
	m := &cfg.MultiViewsTransforms
	m.RandomHorizontalFlipProb = []float64{0.3, 0.7}
	m.ColorJitterProb = []float64{0.6, 0.9}
	m.GreyscaleProb = []float64{0.1, 0.4}
	m.GaussianBlurProb = []float64{0.9, 0.2, 0.4}
	m.SolarizationProb = []float64{0.05, 0.25}
	m.ColorJitterIntensity = []float64{0.5, 0.3, 0.25, 0.05}
	got, err := PolicyFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got.FlipProb != 0.3 || got.JitterProb != 0.6 || got.GrayProb != 0.1 {
		t.Errorf("flip, jitter, grey %v %v %v, want element 0: 0.3 0.6 0.1", got.FlipProb, got.JitterProb, got.GrayProb)
	}
	if got.BlurProb != [3]float64{0.9, 0.2, 0.4} || got.SolarizeProb != [2]float64{0.05, 0.25} {
		t.Errorf("blur %v, solarize %v, want [0.9 0.2 0.4] and [0.05 0.25]", got.BlurProb, got.SolarizeProb)
	}
	if got.Jitter != [4]float64{0.5, 0.3, 0.25, 0.05} {
		t.Errorf("jitter %v, want [0.5 0.3 0.25 0.05]", got.Jitter)
	}
}
