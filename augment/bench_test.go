package augment_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
)

// benchPhoto is one encoded JPEG for the throughput benchmarks.
type benchPhoto struct {
	name string
	data []byte
}

// benchPhotos reads the JPEGs of $SSLIGHT_PHOTOS (the 76-photo benchmark set)
// or, without it, the eight in testdata/photos.
func benchPhotos(b *testing.B) []benchPhoto {
	b.Helper()
	dir := os.Getenv("SSLIGHT_PHOTOS")
	if dir == "" {
		dir = filepath.Join("..", "testdata", "photos")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	sort.Strings(files)
	if len(files) == 0 {
		b.Skipf("no JPEGs in %s", dir)
	}
	var out []benchPhoto
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, benchPhoto{name: filepath.Base(f), data: data})
	}
	return out
}

// decodeInto decodes a JPEG into img with the project's decoder: image/jpeg
// plus libjpeg-compatible colour conversion, or libjpeg-turbo when built
// with -tags turbojpeg (what the Makefile and bench/augment_ratio.sh use).
func decodeInto(img *augment.Image, data []byte) error {
	_, err := decode.DecodeInto(img, data, decode.Options{})
	return err
}

// benchMultiCrop measures the whole job per image on one goroutine: decode,
// 2 global + 6 local views with every colour op, to uint8.
func benchMultiCrop(b *testing.B, p augment.MultiCropPolicy) {
	photos := benchPhotos(b)
	var img augment.Image
	var out augment.MultiCropViews
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := augment.ProcessCPU()
	for i := 0; i < b.N; i++ {
		ph := photos[i%len(photos)]
		if err := decodeInto(&img, ph.data); err != nil {
			b.Fatalf("%s: %v", ph.name, err)
		}
		if err := p.Apply(&img, 1, ph.name, i/len(photos), &out); err != nil {
			b.Fatalf("%s: %v", ph.name, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	if cpu := augment.ProcessCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/(float64(cpu)/1e9), "images/cpu-s")
	}
}

// BenchmarkMultiCrop_Local96 is the DINO baseline setting (6 local views of 96).
func BenchmarkMultiCrop_Local96(b *testing.B) { benchMultiCrop(b, augment.DINOPolicy()) }

// BenchmarkMultiCrop_Local128 is the SSLight setting (6 local views of 128).
func BenchmarkMultiCrop_Local128(b *testing.B) { benchMultiCrop(b, augment.SSLightPolicy()) }

// BenchmarkDecode is the decode step alone, for the profile's proportions.
func BenchmarkDecode(b *testing.B) {
	photos := benchPhotos(b)
	var img augment.Image
	b.ResetTimer()
	cpu0 := augment.ProcessCPU()
	for i := 0; i < b.N; i++ {
		if err := decodeInto(&img, photos[i%len(photos)].data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	if cpu := augment.ProcessCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/(float64(cpu)/1e9), "images/cpu-s")
	}
}
