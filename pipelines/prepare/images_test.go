package prepare

import (
	"context"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/transforms"
)

// TestPrepareEmitImages prepares the ImageNet tree of real photos and bad
// files as image shards on Prism: one epoch of image samples shrunk to the
// default size (GLOBAL_CROP_SIZE × 256/224 = 256), the same dead letters
// as views, a manifest that says so under a hash of its own, and the same
// bytes on a rerun.
func TestPrepareEmitImages(t *testing.T) {
	files, wantDead := imagenetTree(t)
	src, out := t.TempDir(), t.TempDir()
	writeTree(t, src, files)
	cfg := preset(t, "dino_cnn_sslight")
	if err := cfg.Set("DATA.FORMAT", "imagenet"); err != nil {
		t.Fatal(err)
	}
	opts := Options{Config: cfg, Source: src, Out: out, Epochs: 1, Emit: manifest.EmitImages}
	sum, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Emit != manifest.EmitImages || sum.ImageSize != 256 || sum.Samples != len(files)-len(wantDead) {
		t.Errorf("summary emit %q image size %d samples %d; want images, 256, %d", sum.Emit, sum.ImageSize, sum.Samples, len(files)-len(wantDead))
	}
	m := checkRun(t, out, 1, len(files), wantDead)
	if m.Emit != manifest.EmitImages || m.ImageSize != 256 || m.Epochs != 1 {
		t.Errorf("manifest emit %q image_size %d epochs %d", m.Emit, m.ImageSize, m.Epochs)
	}
	if want := transforms.ShardsConfigHash(cfg.Hash(), manifest.EmitImages, 256); m.ConfigHash != want || want == cfg.Hash() {
		t.Errorf("manifest config hash %s, want %s (not the config's own %s)", m.ConfigHash, want, cfg.Hash())
	}
	metas, samples := readSamples(t, m)
	for i, meta := range metas {
		s := samples[i]
		if !s.IsImage() {
			t.Fatalf("%s is not an image sample", meta.SourceKey)
		}
		if short := min(s.Image.Width, s.Image.Height); short > 256 || (short < 256 && min(meta.Width, meta.Height) != short) {
			t.Errorf("%s: stored %dx%d from %dx%d: want the shorter side shrunk to 256, or kept if smaller",
				meta.SourceKey, s.Image.Width, s.Image.Height, meta.Width, meta.Height)
		}
	}
	before := treeDigest(t, out)
	opts.Workers = 1
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	for p, h := range treeDigest(t, out) {
		if before[p] != h {
			t.Errorf("%s differs between two runs", p)
		}
	}
}

// TestPrepareEmitRefusals: bad --emit values and combinations fail before
// anything is listed or written.
func TestPrepareEmitRefusals(t *testing.T) {
	cfg := preset(t, "dino_fmnist_sslight")
	for _, c := range []struct {
		name string
		opts Options
		want string
	}{
		{"unknown emit", Options{Emit: "pixels", Epochs: 1}, `--emit "pixels"`},
		{"images over epochs", Options{Emit: manifest.EmitImages, Epochs: 3}, "--epochs 3 does not apply"},
		{"negative size", Options{ImageSize: -2, Epochs: 1}, "--image-size -2"},
	} {
		c.opts.Config, c.opts.Source, c.opts.Out = cfg, t.TempDir(), t.TempDir()
		_, err := Run(context.Background(), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming %q", c.name, err, c.want)
		}
	}
}
