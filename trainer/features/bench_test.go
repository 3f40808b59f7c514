package features

import (
	"os"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkExtract measures the model alone: a random-init
// SSLIGHT_BENCH_ARCH (default resnet18, full width) on batches of
// SSLIGHT_BENCH_SIZE views (default 224) at the default batch size. Run it
// with -cpu 1,2; compare with the pipeline's BenchmarkExtract in
// pipelines/evaluate to see what decoding and Beam add.
//
//	go test -run '^$' -bench Extract -cpu 1,2 -benchtime 3x ./trainer/features/
//
// (-benchtime 1x would time the probe run, made before -cpu applies.)
func BenchmarkExtract(b *testing.B) {
	arch := os.Getenv("SSLIGHT_BENCH_ARCH")
	if arch == "" {
		arch = "resnet18"
	}
	size := 224
	if v, err := strconv.Atoi(os.Getenv("SSLIGHT_BENCH_SIZE")); err == nil && v > 0 {
		size = v
	}
	m, err := NewRandomInit(Arch{Name: arch}, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	imgs := views(DefaultBatchSize(size, size), size, size, 1)
	if _, err := m.Extract(imgs, size, size); err != nil { // compile the graph outside the timing
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Extract(imgs, size, size); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(imgs))/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "procs")
}
