package prepare

import "github.com/sslight-go/sslight/configs"

// ConfigForBench is the SSLight CNN preset reading an ImageNet-layout folder.
func ConfigForBench() (*configs.Config, error) {
	c, err := configs.Preset("dino_cnn_sslight")
	if err != nil {
		return nil, err
	}
	return c, c.Set("DATA.FORMAT", "imagenet")
}
