package decode

import (
	"errors"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// fuzzMaxPixels is the pixel limit the fuzz target decodes under: small, so
// that any allocation proportional to an unchecked header size stands out.
const fuzzMaxPixels = 4096

// fuzzMaxAlloc bounds what one decode may allocate under fuzzMaxPixels. The
// worst legitimate case is a progressive JPEG whose MCUs pad a 1-pixel-wide
// image to 32 pixels (image/jpeg keeps coefficients for the padded area);
// that stays below 2 MiB, while a header slipping past the limit costs
// gigabytes.
const fuzzMaxAlloc = 4 << 20

var reasons = []Reason{ReasonEmpty, ReasonUnknownFormat, ReasonTruncated, ReasonCorrupt, ReasonTooLarge, ReasonUnsupported}

// FuzzDecode feeds arbitrary bytes to Decode. It must never panic; it
// must return either a well-formed image within the pixel limit whose
// Info agrees with DecodeConfig, or an *Error with a known Reason; and it
// must not allocate beyond what the limit allows. The seed corpus in
// testdata/fuzz/FuzzDecode holds a tiny image of every kind, truncated
// copies, and the bad inputs; the full-size fixtures are added here.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "fixtures", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		img, info, err := Decode(data, Options{MaxPixels: fuzzMaxPixels})
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > fuzzMaxAlloc {
			t.Errorf("allocated %d bytes for %d input bytes (%v, %v)", alloc, len(data), info, err)
		}
		cfg, cfgErr := DecodeConfig(data)
		if err != nil {
			var de *Error
			if !errors.As(err, &de) || !slices.Contains(reasons, de.Reason) {
				t.Fatalf("error %T %q is not an *Error with a known reason", err, err)
			}
			if img != nil {
				t.Fatal("image returned with an error")
			}
			if strings.Contains(err.Error(), "decoder panicked") {
				// A standard-library decoder panicked and runDecoder
				// contained it; worth knowing, not a failure of ours.
				t.Logf("contained panic: %v", err)
			}
			if cfgErr == nil && de.Reason != ReasonTooLarge && cfg != info {
				t.Fatalf("DecodeConfig %v but Decode failed with info %v", cfg, info)
			}
			return
		}
		if info.Width <= 0 || info.Height <= 0 || int64(info.Width)*int64(info.Height) > fuzzMaxPixels {
			t.Fatalf("decoded %v under a %d-pixel limit", info, fuzzMaxPixels)
		}
		if img.W != info.Width || img.H != info.Height || img.Stride != 3*img.W || len(img.Pix) != 3*img.W*img.H {
			t.Fatalf("image %dx%d stride %d len %d for %v", img.W, img.H, img.Stride, len(img.Pix), info)
		}
		if cfgErr != nil || cfg != info {
			t.Fatalf("DecodeConfig = %v, %v; Decode said %v", cfg, cfgErr, info)
		}
	})
}

// TestRunDecoderContainsPanics checks that a decoder panicking on hostile
// input becomes a ReasonCorrupt error instead of crashing the worker.
func TestRunDecoderContainsPanics(t *testing.T) {
	img, err := runDecoder(FormatGIF, func() (image.Image, error) { panic("index out of range") })
	if img != nil || !errors.Is(err, ReasonCorrupt) || !strings.Contains(err.Error(), "decoder panicked: index out of range") {
		t.Fatalf("runDecoder = %v, %v", img, err)
	}
}
