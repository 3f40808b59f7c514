package transforms

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/sinks/manifest"
)

// TestImageShardsHoldShrunkImages: an images-mode shard holds, per good
// item, the decoded image shrunk to ImageSize (recomputed here from the
// file with decode and augment), no views, and dead-letters the same items
// as views mode.
func TestImageShardsHoldShrunkImages(t *testing.T) {
	items, good, wantDead := fixtureItems(t)
	const size = 96
	b := &ShardBuilder{Out: t.TempDir(), ConfigHash: testHash, Seed: 3, Policy: smallPolicy(), Workers: 3,
		Emit: manifest.EmitImages, ImageSize: size}
	info, dead, err := b.Build(context.Background(), ShardJob{Epoch: 0, Index: 0, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if info == nil || info.Samples != good || len(dead) != len(wantDead) {
		t.Fatalf("info %+v, %d dead letters: want %d samples, %d dead", info, len(dead), good, len(wantDead))
	}
	_, metas, samples := readShard(t, info.URI)
	shrunk := 0
	for i, m := range metas {
		s := samples[i]
		if !s.IsImage() || s.Global.Count != 0 || len(m.Views) != 0 {
			t.Fatalf("%s: image %v, %d views recorded: want an image sample", m.Key, s.IsImage(), len(m.Views))
		}
		data, err := os.ReadFile(m.URI)
		if err != nil {
			t.Fatal(err)
		}
		src := decodeForTest(t, data)
		var want augment.Image
		var rs augment.Resampler
		resized, err := rs.ShrinkShorterSide(&want, src, size)
		if err != nil {
			t.Fatal(err)
		}
		if s.Image.Width != want.W || s.Image.Height != want.H || !bytes.Equal(s.Image.Pix, want.Tight()) {
			t.Errorf("%s: stored %dx%d, want the %dx%d shrunk decode", m.Key, s.Image.Width, s.Image.Height, want.W, want.H)
		}
		if m.Width != src.W || m.Height != src.H {
			t.Errorf("%s: metadata says the source is %dx%d, decoded %dx%d", m.Key, m.Width, m.Height, src.W, src.H)
		}
		if resized {
			shrunk++
			if m.ImageSize != size || m.ImageWidth != want.W || m.ImageHeight != want.H {
				t.Errorf("%s: metadata image %d %dx%d, want %d %dx%d", m.Key, m.ImageSize, m.ImageWidth, m.ImageHeight, size, want.W, want.H)
			}
		} else if m.ImageSize != 0 {
			t.Errorf("%s: %dx%d is kept, but the metadata says it was shrunk to %d", m.Key, src.W, src.H, m.ImageSize)
		}
	}
	if shrunk < 4 {
		t.Errorf("%d images were shrunk, want at least the 4 photos", shrunk)
	}
}

// TestViewsOfImageShardsAreViewsShards: the views the augment policy
// renders for (seed, source key, epoch) from an image shard's image are
// byte for byte the views a views shard of the same ImageSize holds, for
// several epochs; and views cut after shrinking differ from views of the
// full-size image (the resize is not a no-op the test could miss).
func TestViewsOfImageShardsAreViewsShards(t *testing.T) {
	items, _, _ := fixtureItems(t)
	const size = 80
	ctx := context.Background()
	pol := smallPolicy()
	img := &ShardBuilder{Out: t.TempDir(), ConfigHash: testHash, Seed: 5, Policy: pol, Workers: 2, Emit: manifest.EmitImages, ImageSize: size}
	info, _, err := img.Build(ctx, ShardJob{Epoch: 0, Index: 0, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	_, imetas, images := readShard(t, info.URI)
	for _, epoch := range []int{0, 3} {
		views := &ShardBuilder{Out: t.TempDir(), ConfigHash: testHash, Seed: 5, Policy: pol, Workers: 3, Emit: manifest.EmitViews, ImageSize: size}
		vinfo, _, err := views.Build(ctx, ShardJob{Epoch: epoch, Index: 1, Items: items})
		if err != nil {
			t.Fatal(err)
		}
		full := &ShardBuilder{Out: t.TempDir(), ConfigHash: testHash, Seed: 5, Policy: pol, Workers: 3}
		finfo, _, err := full.Build(ctx, ShardJob{Epoch: epoch, Index: 1, Items: items})
		if err != nil {
			t.Fatal(err)
		}
		vkeys, vmetas, vsamples := readShard(t, vinfo.URI)
		_, _, fsamples := readShard(t, finfo.URI)
		byKey := map[string]int{}
		for i, k := range vkeys {
			byKey[k] = i
		}
		differs := 0
		for i, m := range imetas {
			j, ok := byKey[m.Key]
			if !ok {
				t.Fatalf("epoch %d: %s is in the image shard only", epoch, m.Key)
			}
			src := &augment.Image{Pix: images[i].Image.Pix, W: images[i].Image.Width, H: images[i].Image.Height, Stride: 3 * images[i].Image.Width}
			var mv augment.MultiCropViews
			if err := pol.Apply(src, 5, m.SourceKey, epoch, &mv); err != nil {
				t.Fatal(err)
			}
			var g, l []uint8
			for _, v := range mv.Global() {
				g = append(g, v.Tight()...)
			}
			for _, v := range mv.Local() {
				l = append(l, v.Tight()...)
			}
			if !bytes.Equal(g, vsamples[j].Global.Pix) || !bytes.Equal(l, vsamples[j].Local.Pix) {
				t.Errorf("epoch %d: %s: views rendered from the image shard differ from the views shard's", epoch, m.Key)
			}
			if vm := vmetas[j]; vm.ImageSize != m.ImageSize || vm.ImageWidth != m.ImageWidth || vm.ImageHeight != m.ImageHeight {
				t.Errorf("epoch %d: %s: views metadata image %d %dx%d, image shard %d %dx%d", epoch, m.Key,
					vm.ImageSize, vm.ImageWidth, vm.ImageHeight, m.ImageSize, m.ImageWidth, m.ImageHeight)
			}
			if !bytes.Equal(fsamples[j].Global.Pix, vsamples[j].Global.Pix) {
				differs++
			}
		}
		if differs < 4 {
			t.Errorf("epoch %d: only %d samples' views changed with the shrink, want at least the 4 photos", epoch, differs)
		}
	}
}

func TestShardsConfigHash(t *testing.T) {
	if got := ShardsConfigHash(testHash, manifest.EmitViews, 0); got != testHash {
		t.Errorf("views at full size: %s, want the config hash itself", got)
	}
	if got := ShardsConfigHash(testHash, "", 0); got != testHash {
		t.Errorf("no emit at full size: %s, want the config hash itself", got)
	}
	seen := map[string]string{testHash: "config"}
	for _, c := range []struct {
		emit string
		size int
	}{{manifest.EmitViews, 256}, {manifest.EmitImages, 256}, {manifest.EmitImages, 255}, {manifest.EmitViews, 255}} {
		h := ShardsConfigHash(testHash, c.emit, c.size)
		name := c.emit + "/" + string(rune('0'+c.size%10))
		if prev, dup := seen[h]; dup {
			t.Errorf("%s and %s share the hash %s", name, prev, h)
		}
		seen[h] = name
		if len(h) != 64 || ShardsConfigHash(testHash, c.emit, c.size) != h {
			t.Errorf("%s: hash %q is not a stable sha256", name, h)
		}
	}
	if ShardsConfigHash(testHash, "", 256) != ShardsConfigHash(testHash, manifest.EmitViews, 256) {
		t.Error(`emit "" and "views" must be the same shards`)
	}
}
