package decode

import (
	"image"

	"github.com/sslight-go/sslight/augment"
)

// libjpeg's YCbCr→RGB tables (jdcolor.c, build_ycc_rgb_table), 16-bit fixed
// point: R = Y + Cr_r[Cr], G = Y + ((Cb_g[Cb] + Cr_g[Cr]) >> 16),
// B = Y + Cb_b[Cb], each clamped to [0, 255].
var (
	yccCrR, yccCbB, yccCrG, yccCbG [256]int32
)

func init() {
	const scaleBits = 16
	const oneHalf = 1 << (scaleBits - 1)
	fix := func(x float64) int32 { return int32(x*(1<<scaleBits) + 0.5) }
	for i := range 256 {
		x := int32(i - 128)
		yccCrR[i] = (fix(1.40200)*x + oneHalf) >> scaleBits
		yccCbB[i] = (fix(1.77200)*x + oneHalf) >> scaleBits
		yccCrG[i] = -fix(0.71414) * x
		yccCbG[i] = -fix(0.34414)*x + oneHalf
	}
}

// clampTab[v+clampOffset] is v clamped to [0, 255], for v in [−384, 639]:
// libjpeg's range_limit table. A table lookup keeps the per-pixel
// conversions small enough to inline, and the index mask removes the bounds
// check (every caller stays well inside the range).
var clampTab [1024]uint8

const clampOffset = 384

func init() {
	for i := range clampTab {
		clampTab[i] = uint8(min(max(i-clampOffset, 0), 255))
	}
}

// clamp8 is libjpeg's range_limit for −384 ≤ v < 640.
func clamp8(v int32) uint8 {
	return clampTab[(v+clampOffset)&1023]
}

// yccRowToRGB converts one row of full-resolution Y, Cb and Cr samples.
func yccRowToRGB(row, ys, cbs, crs []uint8) {
	w := len(row) / 3
	ys, cbs, crs = ys[:w], cbs[:w], crs[:w]
	for x := 0; x < w; x++ {
		yccPixel(row[3*x:3*x+3:3*x+3], int32(ys[x]), cbs[x], crs[x])
	}
}

// chromaUpsampler reproduces libjpeg-turbo's chroma upsampling with
// do_fancy_upsampling on (jdsample.c), which is what PIL gets: a triangle
// filter for 2:1 ratios, plain replication for other ratios and for images
// whose chroma is at most 2 samples wide. Edge samples are replicated, as
// libjpeg's context rows and edge columns do.
type chromaUpsampler struct {
	hf, vf int // horizontal and vertical chroma factor: 1, 2 or 4
	cw, ch int // chroma plane size in samples (libjpeg's downsampled_width/height)
	fancy  bool
}

func newChromaUpsampler(ratio image.YCbCrSubsampleRatio, w, h int) (*chromaUpsampler, bool) {
	u := &chromaUpsampler{}
	switch ratio {
	case image.YCbCrSubsampleRatio444:
		u.hf, u.vf = 1, 1
	case image.YCbCrSubsampleRatio422:
		u.hf, u.vf = 2, 1
	case image.YCbCrSubsampleRatio420:
		u.hf, u.vf = 2, 2
	case image.YCbCrSubsampleRatio440:
		u.hf, u.vf = 1, 2
	case image.YCbCrSubsampleRatio411:
		u.hf, u.vf = 4, 1
	case image.YCbCrSubsampleRatio410:
		u.hf, u.vf = 4, 2
	default:
		return nil, false
	}
	u.cw = (w + u.hf - 1) / u.hf
	u.ch = (h + u.vf - 1) / u.vf
	switch {
	case u.hf == 2 && u.vf == 1, u.hf == 2 && u.vf == 2:
		u.fancy = u.cw > 2 // jinit_upsampler: fancy only when downsampled_width > 2
	case u.hf == 1 && u.vf == 2:
		u.fancy = true
	}
	return u, true
}

// row writes output row y's upsampled chroma into out (len ≥ image width,
// rounded up to the chroma factor). Fancy 4:2:0 is not handled here:
// ycc420ToRGB fuses it with the colour conversion.
func (u *chromaUpsampler) row(out []uint8, plane []uint8, stride, y int) {
	cw := u.cw
	near := y / u.vf
	rowAt := func(r int) []uint8 { return plane[r*stride : r*stride+cw] }
	if !u.fancy {
		src := rowAt(near)
		switch u.hf {
		case 1:
			copy(out, src)
		default:
			hf := u.hf
			for i, v := range src {
				o := out[i*hf : i*hf+hf]
				for k := range o {
					o[k] = v
				}
			}
		}
		return
	}
	// The "far" row for the vertical filter: the row above for the first
	// output row of a pair, the row below for the second, clamped.
	far := near
	bias := int32(0)
	if u.vf == 2 {
		if y%2 == 0 {
			far = max(near-1, 0)
			bias = 1
		} else {
			far = min(near+1, u.ch-1)
			bias = 2
		}
	}
	switch {
	case u.hf == 2 && u.vf == 1: // h2v1_fancy_upsample
		c := rowAt(near)
		out = out[:2*cw]
		for i := 0; i < cw; i++ {
			v := 3 * int32(c[i])
			l, r := c[max(i-1, 0)], c[min(i+1, cw-1)]
			out[2*i] = uint8((v + int32(l) + 1) >> 2)
			out[2*i+1] = uint8((v + int32(r) + 2) >> 2)
		}
	case u.hf == 1 && u.vf == 2: // h1v2_fancy_upsample
		a, b := rowAt(near), rowAt(far)
		out = out[:cw]
		for i := range out {
			out[i] = uint8((3*int32(a[i]) + int32(b[i]) + bias) >> 2)
		}
	default:
		panic("decode: fancy 4:2:0 upsampling goes through ycc420ToRGB")
	}
}

// jpegYCbCrToRGB converts image/jpeg's YCbCr output (chroma planes at their
// coded resolution) the way libjpeg-turbo does for PIL: fancy upsampling,
// then the integer colour conversion. The only remaining difference to PIL
// is image/jpeg's IDCT.
func jpegYCbCrToRGB(dst *augment.Image, m *image.YCbCr) error {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	u, ok := newChromaUpsampler(m.SubsampleRatio, w, h)
	if !ok {
		return newError(ReasonUnsupported, FormatJPEG, "chroma subsampling %v", m.SubsampleRatio)
	}
	dst.Reset(w, h)
	cOff := m.COffset(m.Rect.Min.X, m.Rect.Min.Y)
	cbPlane, crPlane := m.Cb[cOff:], m.Cr[cOff:]
	if u.fancy && u.hf == 2 && u.vf == 2 {
		ycc420ToRGB(dst, m, u, cbPlane, crPlane)
		return nil
	}
	planeW := u.cw * u.hf
	cb := make([]uint8, 2*planeW)
	cbRow, crRow := cb[:planeW], cb[planeW:]
	for y := 0; y < h; y++ {
		yo := m.YOffset(m.Rect.Min.X, m.Rect.Min.Y+y)
		if u.hf == 1 && u.vf == 1 {
			co := y * m.CStride
			yccRowToRGB(dst.Row(y), m.Y[yo:yo+w], cbPlane[co:co+w], crPlane[co:co+w])
			continue
		}
		u.row(cbRow, cbPlane, m.CStride, y)
		u.row(crRow, crPlane, m.CStride, y)
		yccRowToRGB(dst.Row(y), m.Y[yo:yo+w], cbRow, crRow)
	}
	return nil
}

// ycc420ToRGB is the common 4:2:0 case with chroma wider than 2 samples:
// h2v2_fancy_upsample and ycc_rgb_convert fused, one chroma column (two
// output pixels) per step. It computes exactly what chromaUpsampler.row
// and yccRowToRGB compute.
func ycc420ToRGB(dst *augment.Image, m *image.YCbCr, u *chromaUpsampler, cbPlane, crPlane []uint8) {
	w, h, cw := m.Rect.Dx(), m.Rect.Dy(), u.cw
	sums := make([]int32, 2*cw)
	sb, sr := sums[:cw], sums[cw:]
	for y := 0; y < h; y++ {
		near := y / 2
		far := max(near-1, 0)
		if y%2 == 1 {
			far = min(near+1, u.ch-1)
		}
		bn, bf := cbPlane[near*m.CStride:][:cw], cbPlane[far*m.CStride:][:cw]
		rn, rf := crPlane[near*m.CStride:][:cw], crPlane[far*m.CStride:][:cw]
		for i := range sb {
			sb[i] = 3*int32(bn[i]) + int32(bf[i])
			sr[i] = 3*int32(rn[i]) + int32(rf[i])
		}
		yo := m.YOffset(m.Rect.Min.X, m.Rect.Min.Y+y)
		ycc420Row(dst.Row(y), m.Y[yo:yo+w], sb, sr)
	}
}

// ycc420Row converts one output row from the vertically filtered chroma
// column sums sb, sr (3·near + far): output pixels 2i and 2i+1 blend column
// i with its left and right neighbour, the edge columns standing in for
// missing neighbours.
func ycc420Row(row, ys []uint8, sb, sr []int32) {
	w, cw := len(ys), len(sb)
	sr = sr[:cw]
	// First column.
	tb, tr := 3*sb[0], 3*sr[0]
	yccPixel(row[0:3:3], int32(ys[0]), uint8((tb+sb[0]+8)>>4), uint8((tr+sr[0]+8)>>4))
	if w > 1 {
		yccPixel(row[3:6:6], int32(ys[1]), uint8((tb+sb[1]+7)>>4), uint8((tr+sr[1]+7)>>4))
	}
	// Interior columns: both neighbours exist and both pixels are inside
	// the row (w >= 2·cw − 1).
	for i := 1; i < cw-1; i++ {
		tb, tr := 3*sb[i], 3*sr[i]
		d := row[6*i : 6*i+6 : 6*i+6]
		y2 := ys[2*i : 2*i+2 : 2*i+2]
		yccPixel(d[0:3:3], int32(y2[0]), uint8((tb+sb[i-1]+8)>>4), uint8((tr+sr[i-1]+8)>>4))
		yccPixel(d[3:6:6], int32(y2[1]), uint8((tb+sb[i+1]+7)>>4), uint8((tr+sr[i+1]+7)>>4))
	}
	// Last column (cw > 2 here, so it differs from the first).
	i := cw - 1
	tb, tr = 3*sb[i], 3*sr[i]
	yccPixel(row[6*i:6*i+3:6*i+3], int32(ys[2*i]), uint8((tb+sb[i-1]+8)>>4), uint8((tr+sr[i-1]+8)>>4))
	if 2*i+1 < w {
		yccPixel(row[6*i+3:6*i+6:6*i+6], int32(ys[2*i+1]), uint8((tb+sb[i]+7)>>4), uint8((tr+sr[i]+7)>>4))
	}
}

// yccPixel is libjpeg's ycc_rgb_convert for one pixel.
func yccPixel(d []uint8, y int32, cb, cr uint8) {
	d[0] = clamp8(y + yccCrR[cr])
	d[1] = clamp8(y + (yccCbG[cb]+yccCrG[cr])>>16)
	d[2] = clamp8(y + yccCbB[cb])
}
