package evaluate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/sslight-go/sslight/configs"
)

// BenchmarkExtract runs the whole extraction pipeline (listing, Prism,
// decode, evaluation view, backbone forward in evaluation mode, parts,
// index) over real photos: SSLIGHT_PHOTOS (e.g. ../shared/photos) or
// testdata/photos, each copied SSLIGHT_BENCH_COPIES times (default 4).
// The model is a random-init SSLIGHT_BENCH_ARCH (default resnet18, full
// width) on SSLIGHT_BENCH_SIZE views (default 224, Resize 256): the same
// arithmetic as a trained checkpoint. Run it with -cpu 1,2 for the issue's
// GOMAXPROCS figures:
//
//	go test -run '^$' -bench Extract -cpu 1,2 -benchtime 3x ./pipelines/evaluate/
//
// (-benchtime 1x would time the probe run, made before -cpu applies.)
func BenchmarkExtract(b *testing.B) {
	dir := os.Getenv("SSLIGHT_PHOTOS")
	if dir == "" {
		dir = "../../testdata/photos"
	}
	photos, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if len(photos) == 0 {
		b.Skipf("no photos in %s", dir)
	}
	copies := envInt("SSLIGHT_BENCH_COPIES", 4)
	src := b.TempDir()
	for i, p := range photos {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		class := filepath.Join(src, []string{"a", "b", "c", "d"}[i%4])
		os.MkdirAll(class, 0o755)
		for c := 0; c < copies; c++ {
			if err := os.WriteFile(filepath.Join(class, fmt.Sprintf("%d_%s", c, filepath.Base(p))), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	cfg, err := configs.Preset("dino_cnn_sslight")
	if err != nil {
		b.Fatal(err)
	}
	arch := os.Getenv("SSLIGHT_BENCH_ARCH")
	if arch == "" {
		arch = "resnet18"
	}
	cfg.Model.BackboneArch = arch
	cfg.MultiViewsTransforms.GlobalCropSize = envInt("SSLIGHT_BENCH_SIZE", 224)
	b.ResetTimer()
	var images int64
	for i := 0; i < b.N; i++ {
		sum, err := Extract(context.Background(), Options{Config: cfg, RandomInit: true, Source: src, Format: "imagenet", Out: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		images += sum.Inputs
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "procs")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
