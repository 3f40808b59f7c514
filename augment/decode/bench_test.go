package decode

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"testing"

	"github.com/sslight-go/sslight/augment"
)

// decodeJPEGWith decodes a JPEG with a chosen back end ("go" or "turbo"),
// bypassing the build-time choice, so both can be benchmarked side by side.
func decodeJPEGWith(backend string, dst *augment.Image, data []byte) error {
	h, err := readHeader(data)
	if err != nil {
		return err
	}
	if err := checkJPEGStream(data, &h); err != nil {
		return err
	}
	if backend == "turbo" {
		return decodeJPEGTurbo(dst, data, &h)
	}
	return decodeJPEGGo(dst, data, &h)
}

// BenchmarkDecodeJPEG decodes real photos (the four in testdata/photos, or
// all of SSLIGHT_PHOTOS) into a reused buffer and reports images/s and
// megapixels/s for the Go path and, when built with -tags turbojpeg, the
// libjpeg-turbo path.
//
//	go test ./augment/decode -run '^$' -bench DecodeJPEG -benchtime 2s
//	SSLIGHT_PHOTOS=/work/shared/photos go test -tags turbojpeg ./augment/decode -run '^$' -bench DecodeJPEG
func BenchmarkDecodeJPEG(b *testing.B) {
	files := photoFiles(b)
	photos := make([][]byte, len(files))
	pixels := 0
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		photos[i] = data
		info, err := DecodeConfig(data)
		if err != nil {
			b.Fatal(err)
		}
		pixels += info.Width * info.Height
	}
	backends := []string{"go"}
	if turboJPEG {
		backends = append(backends, "turbo")
	}
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) {
			var dst augment.Image
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if err := decodeJPEGWith(backend, &dst, photos[n%len(photos)]); err != nil {
					b.Fatal(err)
				}
				n++
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(n)/s, "images/s")
			b.ReportMetric(float64(n)*float64(pixels)/float64(len(photos))/s/1e6, "MP/s")
		})
	}
}

// BenchmarkJPEGColourConversion times only the libjpeg-compatible 4:2:0
// upsampling and colour conversion of the Go path, on one photo.
func BenchmarkJPEGColourConversion(b *testing.B) {
	data, err := os.ReadFile(photoFiles(b)[0])
	if err != nil {
		b.Fatal(err)
	}
	img, err := runDecoder(FormatJPEG, func() (image.Image, error) { return jpeg.Decode(bytes.NewReader(data)) })
	if err != nil {
		b.Fatal(err)
	}
	m := img.(*image.YCbCr)
	var dst augment.Image
	b.ReportAllocs()
	b.SetBytes(int64(3 * m.Rect.Dx() * m.Rect.Dy()))
	for b.Loop() {
		if err := jpegYCbCrToRGB(&dst, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePNG decodes the 45×31 RGB fixture, mostly to watch the
// fixed per-image cost (header parse, reader set-up).
func BenchmarkDecodePNG(b *testing.B) {
	data, err := os.ReadFile("testdata/fixtures/png_rgb8.png")
	if err != nil {
		b.Fatal(err)
	}
	var dst augment.Image
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeInto(&dst, data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
