// Command augmentbench measures the throughput of sslight's multi-crop
// augmentation on a folder of JPEGs: per image, decode (augment/decode) and
// all 2 global + N local views of the reference policy to uint8, on one
// goroutine. It prints one JSON line; bench/augment_ratio.sh runs it beside
// bench/augment_torchvision.py.
//
//	GOMAXPROCS=1 go run -tags turbojpeg ./bench/augmentbench -dir /work/shared/photos -local-size 128
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
)

func main() {
	dir := flag.String("dir", envOr("SSLIGHT_PHOTOS", "testdata/photos"), "folder of *.jpg")
	localSize := flag.Int("local-size", 128, "local crop size: 128 = SSLight policy, 96 = DINO baseline")
	images := flag.Int("images", 0, "images to process (default: one pass over -dir)")
	warmup := flag.Int("warmup", 3, "images processed before timing")
	seed := flag.Uint64("seed", 0, "global augmentation seed")
	flag.Parse()
	if err := run(*dir, *localSize, *images, *warmup, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "augmentbench:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(dir string, localSize, images, warmup int, seed uint64) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return fmt.Errorf("no JPEGs in %s", dir)
	}
	data := make([][]byte, len(files))
	for i, f := range files {
		if data[i], err = os.ReadFile(f); err != nil {
			return err
		}
	}
	// The SSLight scales go with local 128, the DINO baseline's with 96.
	policy := augment.SSLightPolicy()
	if localSize == 96 {
		policy = augment.DINOPolicy()
	}
	policy.LocalSize = localSize
	if images <= 0 {
		images = len(data)
	}
	var img augment.Image
	var views augment.MultiCropViews
	one := func(i int) error {
		f := files[i%len(files)]
		if _, err := decode.DecodeInto(&img, data[i%len(data)], decode.Options{}); err != nil {
			return fmt.Errorf("decode %s: %w", f, err)
		}
		if err := policy.Apply(&img, seed, filepath.Base(f), i/len(files), &views); err != nil {
			return fmt.Errorf("augment %s: %w", f, err)
		}
		return nil
	}
	for i := 0; i < warmup; i++ {
		if err := one(i); err != nil {
			return err
		}
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	for i := 0; i < images; i++ {
		if err := one(i); err != nil {
			return err
		}
	}
	elapsed := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"impl":             "sslight-go",
		"kernels":          augment.Kernels(),
		"jpeg":             decode.JPEGBackend,
		"local_size":       localSize,
		"images":           images,
		"seconds":          round4(elapsed),
		"cpu_seconds":      round4(cpu),
		"images_per_s":     round4(float64(images) / elapsed),
		"images_per_cpu_s": round4(float64(images) / cpu),
	})
}

func round4(v float64) float64 { return float64(int64(v*1e4+0.5)) / 1e4 }

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
