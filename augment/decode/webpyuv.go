package decode

import (
	"image"

	"github.com/sslight-go/sslight/augment"
)

// webpYCbCrToRGB converts a decoded VP8 frame (4:2:0, BT.601 studio range)
// the way libwebp does for PIL: the "fancy" upsampler of
// src/dsp/upsampling.c (UpsampleRgbLinePair with EmitFancyRGB's row
// pairing: weights 9/16, 3/16, 3/16, 1/16 computed through two diagonal
// averages) and the 14-bit fixed-point VP8YuvToRgb of src/dsp/yuv.h.
// image.YCbCr's own colour model (JFIF, full range) would be wrong here.
func webpYCbCrToRGB(dst *augment.Image, m *image.YCbCr) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	dst.Reset(w, h)
	uvW, uvH := (w+1)/2, (h+1)/2
	cOff := m.COffset(m.Rect.Min.X, m.Rect.Min.Y)
	chroma := func(plane []uint8, r int) []uint8 {
		o := cOff + r*m.CStride
		return plane[o : o+uvW]
	}
	for y := 0; y < h; y++ {
		// libwebp emits rows in pairs (2k−1, 2k) interpolated between chroma
		// rows k−1 ("top") and k ("cur"); row 0 and, for an even height, the
		// last row use a single chroma row for both.
		var top, cur int
		bottom := y > 0 && y%2 == 0
		if bottom {
			top, cur = y/2-1, y/2
		} else {
			top, cur = max(y-1, 0)/2, min((y+1)/2, uvH-1)
		}
		yo := m.YOffset(m.Rect.Min.X, m.Rect.Min.Y+y)
		webpRowToRGB(dst.Row(y), m.Y[yo:yo+w],
			chroma(m.Cb, top), chroma(m.Cr, top), chroma(m.Cb, cur), chroma(m.Cr, cur), bottom)
	}
}

// webpRowToRGB is one output row of libwebp's UpsampleRgbLinePair: the
// "top" output row of a pair when bottom is false, the "bottom" one
// otherwise. tu/tv are the top chroma row, cu/cv the current one.
func webpRowToRGB(row, ys, tu, tv, cu, cv []uint8, bottom bool) {
	w := len(row) / 3
	ys = ys[:w]
	uvW := (w + 1) / 2
	tu, tv, cu, cv = tu[:uvW], tv[:uvW], cu[:uvW], cv[:uvW]

	tlU, tlV, lU, lV := int32(tu[0]), int32(tv[0]), int32(cu[0]), int32(cv[0])
	if bottom {
		webpPixel(row[0:3:3], ys[0], (3*lU+tlU+2)>>2, (3*lV+tlV+2)>>2)
	} else {
		webpPixel(row[0:3:3], ys[0], (3*tlU+lU+2)>>2, (3*tlV+lV+2)>>2)
	}
	last := (w - 1) >> 1
	for x := 1; x <= last; x++ {
		tU, tV, cU, cV := int32(tu[x]), int32(tv[x]), int32(cu[x]), int32(cv[x])
		avgU := tlU + tU + lU + cU + 8
		avgV := tlV + tV + lV + cV + 8
		d12U, d12V := (avgU+2*(tU+lU))>>3, (avgV+2*(tV+lV))>>3
		d03U, d03V := (avgU+2*(tlU+cU))>>3, (avgV+2*(tlV+cV))>>3
		a := row[3*(2*x-1) : 3*(2*x-1)+6 : 3*(2*x-1)+6]
		if bottom {
			webpPixel(a[0:3:3], ys[2*x-1], (d03U+lU)>>1, (d03V+lV)>>1)
			webpPixel(a[3:6:6], ys[2*x], (d12U+cU)>>1, (d12V+cV)>>1)
		} else {
			webpPixel(a[0:3:3], ys[2*x-1], (d12U+tlU)>>1, (d12V+tlV)>>1)
			webpPixel(a[3:6:6], ys[2*x], (d03U+tU)>>1, (d03V+tV)>>1)
		}
		tlU, tlV, lU, lV = tU, tV, cU, cV
	}
	if w&1 == 0 {
		d := row[3*(w-1) : 3*w : 3*w]
		if bottom {
			webpPixel(d, ys[w-1], (3*lU+tlU+2)>>2, (3*lV+tlV+2)>>2)
		} else {
			webpPixel(d, ys[w-1], (3*tlU+lU+2)>>2, (3*tlV+lV+2)>>2)
		}
	}
}

// webpPixel is libwebp's VP8YuvToRgb.
func webpPixel(d []uint8, y uint8, u, v int32) {
	yy := (int32(y) * 19077) >> 8
	d[0] = webpClip8(yy + (v*26149)>>8 - 14234)
	d[1] = webpClip8(yy - (u*6419)>>8 - (v*13320)>>8 + 8708)
	d[2] = webpClip8(yy + (u*33050)>>8 - 17685)
}

// webpClip8 is libwebp's VP8Clip8: descale by 2^6 and clamp. v>>6 stays
// within [−277, 535] for every 8-bit input, inside clamp8's range.
func webpClip8(v int32) uint8 {
	return clamp8(v >> 6)
}
