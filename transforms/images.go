package transforms

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/shard"
)

// DefaultImageSize is the shorter side image shards shrink images to when
// none is given: the evaluation resize of the global crop size
// (GLOBAL_CROP_SIZE × 256/224: 256 for 224, 32 for Fashion-MNIST's 28),
// which keeps a global crop at scale 1 from being enlarged while storing
// about a third of an ImageNet photo's pixels.
func DefaultImageSize(p augment.MultiCropPolicy) int { return augment.EvalResize(p.GlobalSize) }

// ShardsConfigHash is the config hash that names a preparation's shards
// and is stamped into them and its manifest: the config's own hash for
// views cut from full-size images (what sslight has always written), and
// otherwise a hash of it with what the shards hold and the size images
// were shrunk to, so shards of different content never share names.
func ShardsConfigHash(configHash, emit string, imageSize int) string {
	if (emit == "" || emit == manifest.EmitViews) && imageSize == 0 {
		return configHash
	}
	if emit == "" {
		emit = manifest.EmitViews
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("sslight-shards-v1|%s|emit=%s|image_size=%d", configHash, emit, imageSize)))
	return hex.EncodeToString(sum[:])
}

// ImageSampleBytes is the size of one image sample in a shard at shorter
// side size, for sizing shards: a 4:3 image, plus the allowance
// SampleBytes makes for metadata and headers.
func ImageSampleBytes(size int) int64 {
	return int64(3*size*(size*4/3)) + 6*1024
}

// shrink returns the image views are cut from (or that is stored): the
// decoded one, or with ImageSize set its shrunk copy, recording what was
// done in meta.
func (b *ShardBuilder) shrink(st *workerState, meta *SampleMeta) (*augment.Image, error) {
	if b.ImageSize <= 0 {
		return &st.src, nil
	}
	resized, err := st.rs.ShrinkShorterSide(&st.small, &st.src, b.ImageSize)
	if err != nil {
		return nil, err
	}
	if resized {
		meta.ImageSize, meta.ImageWidth, meta.ImageHeight = b.ImageSize, st.small.W, st.small.H
	}
	return &st.small, nil
}

// imageSample is the image sample of img (its pixels copied into a pooled
// buffer).
func imageSample(img *augment.Image, meta *SampleMeta) *shard.Sample {
	mj, err := json.Marshal(meta)
	if err != nil {
		panic(fmt.Sprintf("transforms: marshal sample metadata: %v", err)) // all fields are plain data
	}
	buf := pixPool.Get().(*[]uint8)
	return &shard.Sample{Key: meta.Key, Meta: mj, Image: shard.Image{Height: img.H, Width: img.W, Pix: append((*buf)[:0], img.Tight()...)}}
}
