package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/trainer"
)

// epochViews is, per sample key, the normalised views the trainer's
// loader gives for one training epoch of the shards under root.
func epochViews(t *testing.T, cfgName, root string, epoch, batch, workers int) map[string][]byte {
	t.Helper()
	cfg, err := loadConfig(cfgName, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]byte{}
	_, err = trainer.EpochBatches(context.Background(), trainer.Options{Config: cfg, Shards: []string{root}, BatchSize: batch, Workers: workers}, epoch,
		func(b *trainer.Batch) error {
			g, l := len(b.Global)/(b.G*b.N), len(b.Local)/(b.L*b.N)
			for i, k := range b.Keys {
				var buf bytes.Buffer
				for v := 0; v < b.G; v++ {
					binary.Write(&buf, binary.LittleEndian, b.Global[(v*b.N+i)*g:(v*b.N+i+1)*g])
				}
				for v := 0; v < b.L; v++ {
					binary.Write(&buf, binary.LittleEndian, b.Local[(v*b.N+i)*l:(v*b.N+i+1)*l])
				}
				rows[k] = buf.Bytes()
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestEmitImagesRendersTheViewsOfEmitViews is the views contract end to
// end through the commands: for the Fashion-MNIST preset (28 px images,
// kept as they are) and an ImageNet-style 2×224 + 6×96 config on the real
// photos (shrunk to 256 first in both modes), `prepare --emit images`
// and `prepare --emit views` with the same --image-size give the trainer's
// loader bit-identical views for every sample in every prepared epoch,
// although the two modes group the samples into different shards.
func TestEmitImagesRendersTheViewsOfEmitViews(t *testing.T) {
	photos, err := filepath.Abs(filepath.Join("..", "..", "testdata", "photos"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, config     string
		format, source   string
		split, imageSize string
		batch            int
	}{
		{"fmnist preset", "dino_fmnist_sslight", "idx", fmnistMini, "train", "", 50},
		{"imagenet 224/96", "dino_cnn_baseline", "folder", photos, "", "256", 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			views, images := filepath.Join(root, "views"), filepath.Join(root, "images")
			common := []string{"--config", c.config, "--format", c.format, "--source", c.source, "--quiet"}
			if c.split != "" {
				common = append(common, "--split", c.split)
			}
			viewArgs := append(append([]string(nil), common...), "--out", views, "--epochs", "2")
			imageArgs := append(append([]string(nil), common...), "--out", images, "--emit", "images")
			if c.imageSize != "" {
				viewArgs = append(viewArgs, "--image-size", c.imageSize)
				imageArgs = append(imageArgs, "--image-size", c.imageSize)
			}
			quietStdout(t, func() error { return runPrepare(context.Background(), viewArgs) })
			quietStdout(t, func() error { return runPrepare(context.Background(), imageArgs) })
			m, err := manifest.Read(context.Background(), filepath.Join(images, manifest.FileName))
			if err != nil {
				t.Fatal(err)
			}
			if m.Emit != manifest.EmitImages || m.Epochs != 1 {
				t.Fatalf("images manifest: emit %q, %d epochs", m.Emit, m.Epochs)
			}
			for epoch := 0; epoch < 2; epoch++ {
				want := epochViews(t, c.config, views, epoch, c.batch, 1)
				got := epochViews(t, c.config, images, epoch, c.batch, 2)
				if len(want) == 0 || len(got) != len(want) {
					t.Fatalf("epoch %d: %d samples from image shards, %d from views shards", epoch, len(got), len(want))
				}
				for k, w := range want {
					if !bytes.Equal(got[k], w) {
						t.Errorf("epoch %d: sample %s: views rendered from the image shards differ from the views shards'", epoch, k)
					}
				}
			}
			if c.format != "idx" {
				return
			}
			// pretrain takes the image shards and --workers as they are.
			out := filepath.Join(root, "pretrain")
			quietStdout(t, func() error {
				return runPretrain(context.Background(), []string{"--config", c.config, "--shards", images, "--out", out, "--quiet",
					"--workers", "2", "--epochs", "1", "--batch-size", "100", "--set", "SOLVER.WARMUP_ITERS=0",
					"--set", "DINO.WARMUP_TEACHER_TEMP_ITERS=1", "--set", "SOLVER.FREEZE_LAST_LAYER_ITERS=0"})
			})
			b, err := os.ReadFile(filepath.Join(out, trainer.MetricsFile))
			if err != nil || !bytes.Contains(b, []byte(`"kind":"epoch"`)) || !bytes.Contains(b, []byte(`"data_wait":`)) {
				t.Errorf("pretrain on image shards: metrics.jsonl (%v) lacks an epoch record with data_wait:\n%s", err, b)
			}
		})
	}
}

// quietStdout runs f with stdout going nowhere (the commands print their
// summary JSON there).
func quietStdout(t *testing.T, f func() error) {
	t.Helper()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	saved := os.Stdout
	os.Stdout = null
	err = f()
	os.Stdout = saved
	if err != nil {
		t.Fatal(err)
	}
}
