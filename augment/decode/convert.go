package decode

import (
	"image"

	"github.com/sslight-go/sslight/augment"
)

// The conversions below read the decoders' pixel buffers directly, one row at
// a time: no per-pixel interface calls and no allocation.

// grayToRGB replicates L into R, G and B (PIL's l2rgb).
func grayToRGB(dst *augment.Image, m *image.Gray) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	dst.Reset(w, h)
	for y := 0; y < h; y++ {
		o := m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y+y)
		src := m.Pix[o : o+w]
		row := dst.Row(y)
		for x, v := range src {
			d := row[3*x : 3*x+3 : 3*x+3]
			d[0], d[1], d[2] = v, v, v
		}
	}
}

// gray16ClipToRGB is PIL's i2rgb on a 16-bit grayscale PNG opened as mode
// "I": each value is clipped to 255, not scaled.
func gray16ClipToRGB(dst *augment.Image, m *image.Gray16) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	dst.Reset(w, h)
	for y := 0; y < h; y++ {
		o := m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y+y)
		src := m.Pix[o : o+2*w]
		row := dst.Row(y)
		for x := 0; x < w; x++ {
			v := clip16to8(src[2*x], src[2*x+1])
			d := row[3*x : 3*x+3 : 3*x+3]
			d[0], d[1], d[2] = v, v, v
		}
	}
}

// clip16to8 clips a big-endian 16-bit sample to 255.
func clip16to8(hi, lo uint8) uint8 {
	if hi != 0 {
		return 255
	}
	return lo
}

// rgba8ToRGB drops the fourth byte of 4-byte pixels (RGBA, NRGBA): PIL drops
// alpha instead of compositing it.
func rgba8ToRGB(dst *augment.Image, pix []uint8, stride int, r image.Rectangle) {
	w, h := r.Dx(), r.Dy()
	dst.Reset(w, h)
	for y := 0; y < h; y++ {
		o := y * stride
		src := pix[o : o+4*w]
		row := dst.Row(y)
		for x := 0; x < w; x++ {
			s := src[4*x : 4*x+3 : 4*x+3]
			d := row[3*x : 3*x+3 : 3*x+3]
			d[0], d[1], d[2] = s[0], s[1], s[2]
		}
	}
}

// rgba16ToRGB converts 8-byte pixels (RGBA64, NRGBA64; big-endian samples).
// PIL keeps the high byte of 16-bit RGB(A) and gray+alpha samples; a 16-bit
// gray PNG with tRNS (which image/png returns as NRGBA64) is mode "I" in
// PIL, whose values are clipped instead (clip).
func rgba16ToRGB(dst *augment.Image, pix []uint8, stride int, r image.Rectangle, clip bool) {
	w, h := r.Dx(), r.Dy()
	dst.Reset(w, h)
	for y := 0; y < h; y++ {
		o := y * stride
		src := pix[o : o+8*w]
		row := dst.Row(y)
		for x := 0; x < w; x++ {
			s := src[8*x : 8*x+6 : 8*x+6]
			d := row[3*x : 3*x+3 : 3*x+3]
			if clip {
				v := clip16to8(s[0], s[1])
				d[0], d[1], d[2] = v, v, v
			} else {
				d[0], d[1], d[2] = s[0], s[2], s[4]
			}
		}
	}
}

// palettedToRGB maps indices through lut (PIL's p2rgb; palette alpha is
// ignored).
func palettedToRGB(dst *augment.Image, m *image.Paletted, lut *[256][3]uint8) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	dst.Reset(w, h)
	for y := 0; y < h; y++ {
		o := m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y+y)
		src := m.Pix[o : o+w]
		row := dst.Row(y)
		for x, i := range src {
			c := &lut[i]
			d := row[3*x : 3*x+3 : 3*x+3]
			d[0], d[1], d[2] = c[0], c[1], c[2]
		}
	}
}

// gifToRGB places the first frame on PIL's canvas. PIL 9.4 starts frame 0
// from an image filled with the transparent index when there is one and
// index 0 otherwise, decodes the frame into its rectangle (transparent
// pixels keep their index) and convert("RGB") maps every index through the
// palette, the transparent one included.
func gifToRGB(dst *augment.Image, m *image.Paletted, h *header) {
	g := &h.gif
	dst.Reset(g.canvasW, g.canvasH)
	fill := 0
	if g.transparent >= 0 {
		fill = g.transparent
	}
	fc := g.lut[fill]
	fw := m.Rect.Dx()
	for y := 0; y < g.canvasH; y++ {
		row := dst.Row(y)
		for x := 0; x < g.canvasW; x++ {
			d := row[3*x : 3*x+3 : 3*x+3]
			d[0], d[1], d[2] = fc[0], fc[1], fc[2]
		}
		if y < m.Rect.Min.Y || y >= m.Rect.Max.Y || fw == 0 {
			continue
		}
		o := m.PixOffset(m.Rect.Min.X, y)
		src := m.Pix[o : o+fw]
		out := row[3*m.Rect.Min.X : 3*m.Rect.Max.X]
		for x, i := range src {
			c := &g.lut[i]
			d := out[3*x : 3*x+3 : 3*x+3]
			d[0], d[1], d[2] = c[0], c[1], c[2]
		}
	}
}

// cmykToRGB converts an image/jpeg CMYK image (whose values are already in
// the polarity PIL reads with rawmode "CMYK;I") with PIL's cmyk2rgb.
func cmykToRGB(dst *augment.Image, m *image.CMYK) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	dst.Reset(w, h)
	for y := 0; y < h; y++ {
		o := m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y+y)
		cmykRowToRGB(dst.Row(y), m.Pix[o:o+4*w], false)
	}
}

// cmykRowToRGB converts one row of CMYK pixels with PIL's cmyk2rgb
// (Convert.c): nk = 255 − K, R = nk − nk·C/255 with PIL's MULDIV255
// rounding. invert first applies PIL's "CMYK;I" unpacking (255 − v), for
// raw samples as libjpeg returns them from an Adobe-polarity file.
func cmykRowToRGB(row, src []uint8, invert bool) {
	w := len(row) / 3
	src = src[:4*w]
	var flip uint8
	if invert {
		flip = 0xff
	}
	for x := 0; x < w; x++ {
		s := src[4*x : 4*x+4 : 4*x+4]
		nk := 255 - int32(s[3]^flip)
		d := row[3*x : 3*x+3 : 3*x+3]
		d[0] = uint8(nk - mulDiv255(int32(s[0]^flip), nk))
		d[1] = uint8(nk - mulDiv255(int32(s[1]^flip), nk))
		d[2] = uint8(nk - mulDiv255(int32(s[2]^flip), nk))
	}
}

// mulDiv255 is PIL's MULDIV255: a·b/255 rounded, computed without a division.
func mulDiv255(a, b int32) int32 {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}
