package transforms

import (
	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/multicrop"
)

// PolicyFromConfig converts the MULTI_VIEWS_TRANSFORMS section into the
// augment package's multi-crop policy, exactly as the reference's
// MultiCropsDataAugmentation reads it (see multicrop.FromConfig, which the
// trainer's loader uses too).
func PolicyFromConfig(c *configs.Config) (augment.MultiCropPolicy, error) {
	return multicrop.FromConfig(c)
}

// SampleBytes is the size of one prepared sample in a shard: the uint8
// crops plus an allowance for the metadata, npy headers and tar headers.
func SampleBytes(p augment.MultiCropPolicy) int64 {
	px := 2*p.GlobalSize*p.GlobalSize + p.NumLocal*p.LocalSize*p.LocalSize
	return int64(3*px) + 6*1024
}
