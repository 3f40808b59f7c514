package decode

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"path/filepath"
	"testing"

	"github.com/sslight-go/sslight/augment"
)

// TestCMYKToRGBMatchesPIL runs PIL's own cmyk2rgb results (testdata/
// cmyk2rgb.json: the cube's corners and 2000 random CMYK values through
// Image.frombytes("CMYK").convert("RGB")) through cmykRowToRGB, plain and
// with the "CMYK;I" inversion applied to pre-inverted input.
func TestCMYKToRGBMatchesPIL(t *testing.T) {
	var tab struct {
		CMYK [][4]uint8 `json:"cmyk"`
		RGB  [][3]uint8 `json:"rgb"`
	}
	if err := json.Unmarshal(readTestdata(t, "cmyk2rgb.json"), &tab); err != nil {
		t.Fatal(err)
	}
	if len(tab.CMYK) < 2000 || len(tab.CMYK) != len(tab.RGB) {
		t.Fatalf("%d CMYK values, %d RGB", len(tab.CMYK), len(tab.RGB))
	}
	n := len(tab.CMYK)
	src, inv := make([]uint8, 4*n), make([]uint8, 4*n)
	for i, q := range tab.CMYK {
		for c := range 4 {
			src[4*i+c], inv[4*i+c] = q[c], 255-q[c]
		}
	}
	for _, tc := range []struct {
		name   string
		src    []uint8
		invert bool
	}{{"plain", src, false}, {"inverted", inv, true}} {
		row := make([]uint8, 3*n)
		cmykRowToRGB(row, tc.src, tc.invert)
		for i, want := range tab.RGB {
			if got := [3]uint8(row[3*i : 3*i+3]); got != want {
				t.Errorf("%s: CMYK %v → %v, PIL %v", tc.name, tab.CMYK[i], got, want)
			}
		}
	}
}

// TestConvertersHonourRectAndStride feeds each converter a sub-image (a
// non-zero origin and a stride wider than the row) and checks every pixel
// against color.Model conversions done independently here.
func TestConvertersHonourRectAndStride(t *testing.T) {
	r := image.Rect(0, 0, 11, 7)
	sub := image.Rect(3, 2, 9, 7)
	val := func(x, y, c int) uint8 { return uint8(x*37 + y*91 + c*53) }

	gray := image.NewGray(r)
	nrgba := image.NewNRGBA(r)
	rgba64 := image.NewRGBA64(r)
	pal := image.NewPaletted(r, nil)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			gray.SetGray(x, y, color.Gray{val(x, y, 0)})
			nrgba.SetNRGBA(x, y, color.NRGBA{val(x, y, 0), val(x, y, 1), val(x, y, 2), val(x, y, 3)})
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(val(x, y, 0)) << 8, uint16(val(x, y, 1))<<8 | 0xff, uint16(val(x, y, 2)) << 8, 0xffff})
			pal.SetColorIndex(x, y, val(x, y, 0))
		}
	}
	var lut [256][3]uint8
	for i := range lut {
		lut[i] = [3]uint8{uint8(i), uint8(255 - i), uint8(i / 2)}
	}
	check := func(name string, got *augment.Image, want func(x, y int) [3]uint8) {
		t.Helper()
		if got.W != sub.Dx() || got.H != sub.Dy() {
			t.Fatalf("%s: %dx%d, want %v", name, got.W, got.H, sub.Size())
		}
		for y := 0; y < got.H; y++ {
			for x := 0; x < got.W; x++ {
				o := y*got.Stride + 3*x
				if g, w := [3]uint8(got.Pix[o:o+3]), want(x+sub.Min.X, y+sub.Min.Y); g != w {
					t.Fatalf("%s (%d,%d) = %v, want %v", name, x, y, g, w)
				}
			}
		}
	}
	var dst augment.Image
	grayToRGB(&dst, gray.SubImage(sub).(*image.Gray))
	check("gray", &dst, func(x, y int) [3]uint8 { v := val(x, y, 0); return [3]uint8{v, v, v} })
	s := nrgba.SubImage(sub).(*image.NRGBA)
	rgba8ToRGB(&dst, s.Pix, s.Stride, s.Rect)
	check("nrgba", &dst, func(x, y int) [3]uint8 { return [3]uint8{val(x, y, 0), val(x, y, 1), val(x, y, 2)} })
	s64 := rgba64.SubImage(sub).(*image.RGBA64)
	rgba16ToRGB(&dst, s64.Pix, s64.Stride, s64.Rect, false)
	check("rgba64 high byte", &dst, func(x, y int) [3]uint8 { return [3]uint8{val(x, y, 0), val(x, y, 1), val(x, y, 2)} })
	rgba16ToRGB(&dst, s64.Pix, s64.Stride, s64.Rect, true)
	check("rgba64 clip", &dst, func(x, y int) [3]uint8 {
		v := min(uint16(val(x, y, 0))<<8, 255) // R sample clipped like PIL's i2rgb
		return [3]uint8{uint8(v), uint8(v), uint8(v)}
	})
	palettedToRGB(&dst, pal.SubImage(sub).(*image.Paletted), &lut)
	check("paletted", &dst, func(x, y int) [3]uint8 { return lut[val(x, y, 0)] })
}

// TestPhotosMatchPIL decodes the four real photos in testdata/photos. On
// the libjpeg-turbo path the RGB bytes must hash to what PIL produced;
// the Go path is compared pixel by pixel with PIL by
// TestJPEGAgainstPILLive (it needs PIL's full output).
func TestPhotosMatchPIL(t *testing.T) {
	m := loadManifest(t)
	if len(m.Photos) != 4 {
		t.Fatalf("%d photos in expected.json", len(m.Photos))
	}
	for _, p := range m.Photos {
		img, info, err := Decode(readTestdata(t, p.File), Options{})
		if err != nil {
			t.Fatalf("%s: %v", p.File, err)
		}
		if info != (Info{FormatJPEG, p.Width, p.Height, "RGB"}) {
			t.Errorf("%s: %v, PIL says %dx%d RGB", p.File, info, p.Width, p.Height)
		}
		sum := fmt.Sprintf("%x", sha256.Sum256(img.Tight()))
		switch {
		case turboJPEG && sum != p.SHA256:
			t.Errorf("%s: RGB sha256 %s, PIL %s", filepath.Base(p.File), sum, p.SHA256)
		case !turboJPEG && sum == p.SHA256:
			t.Logf("%s: Go path identical to PIL", filepath.Base(p.File))
		}
	}
}

// TestClampTableCoversConversions checks the assumption behind clamp8's
// masked table lookup: for every 8-bit Y, U, V (Cb, Cr) the libwebp and
// libjpeg conversions give the same result as with libwebp's branching
// VP8Clip8 and an unbounded clamp (src/dsp/yuv.h, jdcolor.c).
func TestClampTableCoversConversions(t *testing.T) {
	clip := func(v int32) uint8 { return uint8(min(max(v, 0), 255)) }
	vp8Clip8 := func(v int32) uint8 {
		if v&^(256<<6-1) == 0 {
			return uint8(v >> 6)
		}
		if v < 0 {
			return 0
		}
		return 255
	}
	mh := func(v, c int32) int32 { return (v * c) >> 8 }
	var got [3]uint8
	for y := int32(0); y < 256; y++ {
		for u := int32(0); u < 256; u++ {
			for v := int32(0); v < 256; v++ {
				webpPixel(got[:], uint8(y), u, v)
				want := [3]uint8{
					vp8Clip8(mh(y, 19077) + mh(v, 26149) - 14234),
					vp8Clip8(mh(y, 19077) - mh(u, 6419) - mh(v, 13320) + 8708),
					vp8Clip8(mh(y, 19077) + mh(u, 33050) - 17685),
				}
				if got != want {
					t.Fatalf("webp YUV %d,%d,%d → %v, want %v", y, u, v, got, want)
				}
				yccPixel(got[:], y, uint8(u), uint8(v))
				want = [3]uint8{
					clip(y + yccCrR[v]),
					clip(y + (yccCbG[u]+yccCrG[v])>>16),
					clip(y + yccCbB[u]),
				}
				if got != want {
					t.Fatalf("jpeg YCbCr %d,%d,%d → %v, want %v", y, u, v, got, want)
				}
			}
		}
	}
}
