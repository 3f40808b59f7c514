package trainer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/idx"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/storage"
)

// benchLoaderImages are the images the loader benchmarks store: the
// photos of $SSLIGHT_PHOTOS (the 76-photo benchmark set) or testdata/photos,
// decoded and shrunk to 256 as prepare --emit images stores them, or the
// Fashion-MNIST mini set's 28×28 training images; repeated to at least n
// samples (each copy has its own key, so its own views).
func benchLoaderImages(b *testing.B, fmnist bool, n int) []*augment.Image {
	b.Helper()
	var imgs []*augment.Image
	if fmnist {
		f, err := os.Open(filepath.Join("..", "testdata", "fmnist-mini", "train-images-idx3-ubyte.gz"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		m, err := idx.ReadImages(f, "fmnist-mini")
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < m.N; i++ {
			img := augment.NewImage(m.W, m.H)
			for p, v := range m.Record(i) {
				img.Pix[3*p], img.Pix[3*p+1], img.Pix[3*p+2] = v, v, v
			}
			imgs = append(imgs, img)
		}
	} else {
		dir := os.Getenv("SSLIGHT_PHOTOS")
		if dir == "" {
			dir = filepath.Join("..", "testdata", "photos")
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
		sort.Strings(files)
		if len(files) == 0 {
			b.Skipf("no JPEGs in %s", dir)
		}
		var rs augment.Resampler
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			full, _, err := decode.Decode(data, decode.Options{})
			if err != nil {
				b.Fatalf("%s: %v", f, err)
			}
			small := &augment.Image{}
			if _, err := rs.ShrinkShorterSide(small, full, 256); err != nil {
				b.Fatal(err)
			}
			imgs = append(imgs, small)
		}
	}
	out := imgs
	for len(out) < n {
		out = append(out, imgs...)
	}
	return out
}

// benchLoader measures the loader over one root of shards, one training
// epoch per iteration with a step that takes no time: images (samples)
// per second in normalised float32 batches, per core, and the shards'
// bytes per image.
func benchLoader(b *testing.B, cfg *configs.Config, imgs []*augment.Image, batch int, images bool) {
	root := b.TempDir()
	imageRoot, viewsRoot := filepath.Join(root, "images"), filepath.Join(root, "views")
	writeImageRoot(b, imageRoot, viewsRoot, cfg, imgs, 1)
	dir := viewsRoot
	if images {
		dir = imageRoot
	}
	m, err := manifest.Read(context.Background(), storage.Join(dir, manifest.FileName))
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for _, s := range m.Shards {
		bytes += s.Bytes
	}
	o := Options{Config: cfg, Shards: []string{dir}, BatchSize: batch, Workers: runtime.GOMAXPROCS(0), ShuffleBuffer: 256}
	seen := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := EpochBatches(context.Background(), o, i, func(bt *Batch) error { seen += bt.N; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	rate := float64(seen) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "img/s")
	b.ReportMetric(rate/float64(runtime.GOMAXPROCS(0)), "img/s/core")
	b.ReportMetric(float64(bytes)/float64(len(imgs)), "shard-B/img")
}

// BenchmarkLoader is the trainer's loader feeding normalised float32
// batches to a step that takes no time: from image shards (views rendered
// on the fly by GOMAXPROCS goroutines) and from views shards (one
// goroutine reading and normalising), at 2×224 + 6×96 on ImageNet-size
// photos stored shrunk to 256 and at the Fashion-MNIST preset. Run with
// -cpu 1,2 for the per-core figure:
//
//	go test -tags 'turbojpeg openblas' -run '^$' -bench Loader -cpu 1,2 -benchtime 3x ./trainer/
func BenchmarkLoader(b *testing.B) {
	for _, c := range []struct {
		name     string
		preset   string
		fmnist   bool
		n, batch int
	}{
		{"224x2+96x6", "dino_cnn_baseline", false, 152, 16},
		{"fmnist", "dino_fmnist_sslight", true, 2000, 100},
	} {
		cfg, err := configs.Preset(c.preset)
		if err != nil {
			b.Fatal(err)
		}
		imgs := benchLoaderImages(b, c.fmnist, c.n)
		for _, mode := range []string{"images", "views"} {
			b.Run(fmt.Sprintf("%s/%s", c.name, mode), func(b *testing.B) {
				benchLoader(b, cfg, imgs, c.batch, mode == "images")
			})
		}
	}
}
