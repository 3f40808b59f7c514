package decode

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sslight-go/sslight/augment"
)

// allocated returns the bytes the Go heap allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestMemoryEstimateBoundsDecode decodes generated images of every decoder
// type into a fresh image and checks that the bytes the Go heap allocated
// meanwhile stay within MemoryEstimate, and (for PNG, whose decoder is
// always Go's) that the estimate is not wildly above them.
func TestMemoryEstimateBoundsDecode(t *testing.T) {
	const w, h = 600, 400
	fill := func(m interface{ Set(int, int, color.Color) }) {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				m.Set(x, y, color.RGBA64{uint16(x * 109), uint16(y * 163), uint16((x ^ y) * 257), 0xffff})
			}
		}
	}
	enc := func(t *testing.T, f func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	rgba, gray, rgba16, pal := image.NewRGBA(image.Rect(0, 0, w, h)), image.NewGray(image.Rect(0, 0, w, h)),
		image.NewNRGBA64(image.Rect(0, 0, w, h)), image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White, color.Gray{128}})
	fill(rgba)
	fill(gray)
	fill(rgba16)
	fill(pal)
	interlaced, err := os.ReadFile(filepath.Join("testdata", "fixtures", "png_interlaced.png"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		data   []byte
		format string
		tight  bool // the estimate must be within 2.5× of the allocation
	}{
		{"png rgb8", enc(t, func(b *bytes.Buffer) error { return png.Encode(b, rgba) }), FormatPNG, true},
		{"png gray8", enc(t, func(b *bytes.Buffer) error { return png.Encode(b, gray) }), FormatPNG, true},
		{"png rgba16", enc(t, func(b *bytes.Buffer) error { return png.Encode(b, rgba16) }), FormatPNG, true},
		{"png palette", enc(t, func(b *bytes.Buffer) error { return png.Encode(b, pal) }), FormatPNG, true},
		{"png interlaced fixture", interlaced, FormatPNG, false},
		{"jpeg baseline", enc(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, rgba, &jpeg.Options{Quality: 90}) }), FormatJPEG, false},
		{"jpeg gray", enc(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, gray, nil) }), FormatJPEG, false},
		{"gif", enc(t, func(b *bytes.Buffer) error { return gif.Encode(b, pal, nil) }), FormatGIF, false},
	} {
		info, est, err := MemoryEstimate(c.data, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if info.Format != c.format {
			t.Errorf("%s: format %s, want %s", c.name, info.Format, c.format)
		}
		var decErr error
		got := allocated(func() { _, decErr = DecodeInto(&augment.Image{}, c.data, Options{}) })
		if decErr != nil {
			t.Fatalf("%s: %v", c.name, decErr)
		}
		if got > uint64(est) {
			t.Errorf("%s (%dx%d): decoding allocated %d bytes, over the estimate %d", c.name, info.Width, info.Height, got, est)
		}
		if c.tight && float64(est) > 2.5*float64(got) {
			t.Errorf("%s: estimate %d is more than 2.5× the %d bytes allocated", c.name, est, got)
		}
	}
}

// TestMemoryEstimateRefusesBombs: the pixel limit applies before anything
// else, with DecodeInto's error, and bad headers fail as in DecodeConfig.
func TestMemoryEstimateRefusesBombs(t *testing.T) {
	bomb, err := os.ReadFile(filepath.Join("testdata", "fixtures", "bomb.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := MemoryEstimate(bomb, Options{}); !errors.Is(err, ReasonTooLarge) {
		t.Errorf("bomb.png: err = %v, want %v", err, ReasonTooLarge)
	}
	small, err := os.ReadFile(filepath.Join("testdata", "fixtures", "png_rgb8.png"))
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := MemoryEstimate(small, Options{MaxPixels: 4})
	if !errors.Is(err, ReasonTooLarge) || info.Width == 0 {
		t.Errorf("png_rgb8.png over a 4-pixel limit: info %v, err = %v, want %v with the header's size", info, err, ReasonTooLarge)
	}
	if _, _, err := MemoryEstimate([]byte("not an image"), Options{}); !errors.Is(err, ReasonUnknownFormat) {
		t.Errorf("text: err = %v, want %v", err, ReasonUnknownFormat)
	}
}
