package configs_test

import (
	"fmt"

	"github.com/sslight-go/sslight/configs"
)

// A command loads a preset or file, applies flag overrides, then validates.
func ExampleLoad() {
	cfg, err := configs.Load("preset:dino_cnn_sslight")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := cfg.Set("MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE", "96"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.MultiViewsTransforms.GlobalCropsScale, cfg.MultiViewsTransforms.LocalCropSize, cfg.Validate())
	// Output: [0.3 1] 96 <nil>
}

// Unknown keys name the full dotted key, the line and the closest valid key.
func ExampleParse_unknownKey() {
	_, err := configs.Parse([]byte("MULTI_VIEWS_TRANSFORMS:\n  LOCAL_CROP_SIZ: 96\n"), "my.yaml")
	fmt.Println(err)
	// Output: my.yaml: unknown key MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZ (line 2); did you mean MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE?
}

// Validate reports every problem, each naming its key.
func ExampleConfig_Validate() {
	cfg := configs.Default()
	_ = cfg.Set("MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_NUMBER", "10")
	_ = cfg.Set("MULTI_VIEWS_TRANSFORMS.LAMBDAS", "0.4,0.5")
	fmt.Println(cfg.Validate())
	// Output:
	// MULTI_VIEWS_TRANSFORMS.NMB_CROPS: NMB_CROPS[1]=6 does not match LOCAL_CROPS_NUMBER=10: the augmentation makes LOCAL_CROPS_NUMBER local views and the losses expect NMB_CROPS[1]; set both to the same number
	// MULTI_VIEWS_TRANSFORMS.LAMBDAS: must sum to 1 (±0.001), got 0.4 + 0.5 = 0.9
}

// The canonical JSON is what Hash digests; the sslight presets differ from
// the baselines in the crops, so their augmentation hashes differ too.
func ExampleConfig_AugmentationHash() {
	base, _ := configs.Preset("dino_cnn_baseline")
	light, _ := configs.Preset("dino_cnn_sslight")
	moco, _ := configs.Preset("moco_cnn_sslight")
	fmt.Println(base.AugmentationHash() == light.AugmentationHash(), moco.AugmentationHash() == light.AugmentationHash(), moco.Hash() == light.Hash())
	// Output: false true false
}
