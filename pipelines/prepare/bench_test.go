package prepare

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkPrepare runs the whole pipeline (listing, Prism, decode,
// SSLight multi-crop 2×224 + 6×128, shard writing, manifest) over real
// ImageNet-size photos: SSLIGHT_PHOTOS (e.g. ../shared/photos, 76 photos)
// or testdata/photos, 8 epochs (SSLIGHT_BENCH_EPOCHS). Run it with -cpu 1,2
// to see how the goroutine pool inside the shard DoFn scales:
//
//	SSLIGHT_PHOTOS=$PWD/../shared/photos go test -run '^$' -bench Prepare -cpu 1,2 -benchtime 3x ./pipelines/prepare/
func BenchmarkPrepare(b *testing.B) {
	dir := os.Getenv("SSLIGHT_PHOTOS")
	if dir == "" {
		dir = "../../testdata/photos"
	}
	photos, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if len(photos) == 0 {
		b.Skipf("no photos in %s", dir)
	}
	src := b.TempDir()
	for i, p := range photos {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		class := filepath.Join(src, []string{"a", "b", "c", "d"}[i%4])
		os.MkdirAll(class, 0o755)
		if err := os.WriteFile(filepath.Join(class, filepath.Base(p)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cfg, err := ConfigForBench()
	if err != nil {
		b.Fatal(err)
	}
	epochs := 8
	if e, err := strconv.Atoi(os.Getenv("SSLIGHT_BENCH_EPOCHS")); err == nil && e > 0 {
		epochs = e
	}
	b.ResetTimer()
	images := 0
	for i := 0; i < b.N; i++ {
		out := b.TempDir()
		sum, err := Run(context.Background(), Options{Config: cfg, Source: src, Out: out, Epochs: epochs})
		if err != nil {
			b.Fatal(err)
		}
		images += sum.Samples + sum.DeadLetters
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "procs")
}
