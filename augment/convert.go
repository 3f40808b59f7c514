package augment

import (
	"fmt"
	"image"
	"image/color"
)

// FromStdImage converts any image.Image into dst as 8-bit RGB, reusing dst's
// buffer. *image.YCbCr (what image/jpeg returns for colour JPEGs), *image.Gray,
// *image.RGBA and *image.NRGBA take fast paths; YCbCr uses the standard
// library's color.YCbCrToRGB arithmetic, so the result equals converting
// pixel by pixel through At. Alpha is dropped (RGBA is premultiplied, so
// transparent pixels come out dark, as with PIL's convert("RGB") of RGBa).
func FromStdImage(dst *Image, src image.Image) error {
	b := src.Bounds()
	if b.Empty() {
		return fmt.Errorf("from image.Image: %w", ErrEmptyImage)
	}
	w, h := b.Dx(), b.Dy()
	dst.Reset(w, h)
	switch s := src.(type) {
	case *image.YCbCr:
		ycbcrToRGB(dst, s)
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := s.Pix[(y)*s.Stride : (y)*s.Stride+w]
			d := dst.Row(y)
			for x, v := range row {
				d[3*x], d[3*x+1], d[3*x+2] = v, v, v
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := s.Pix[y*s.Stride : y*s.Stride+4*w]
			d := dst.Row(y)
			for x := 0; x < w; x++ {
				d[3*x], d[3*x+1], d[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := s.Pix[y*s.Stride : y*s.Stride+4*w]
			d := dst.Row(y)
			for x := 0; x < w; x++ {
				d[3*x], d[3*x+1], d[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	default:
		for y := 0; y < h; y++ {
			d := dst.Row(y)
			for x := 0; x < w; x++ {
				c := color.RGBAModel.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
				d[3*x], d[3*x+1], d[3*x+2] = c.R, c.G, c.B
			}
		}
	}
	return nil
}

// ycbcrToRGB converts a YCbCr image of any subsampling, reading each chroma
// sample through the image's own COffset so every ratio is handled alike.
func ycbcrToRGB(dst *Image, s *image.YCbCr) {
	b := s.Rect
	w := b.Dx()
	for y := 0; y < b.Dy(); y++ {
		d := dst.Row(y)
		yi := s.YOffset(b.Min.X, b.Min.Y+y)
		ys := s.Y[yi : yi+w]
		for x, yy := range ys {
			ci := s.COffset(b.Min.X+x, b.Min.Y+y)
			r, g, bl := color.YCbCrToRGB(yy, s.Cb[ci], s.Cr[ci])
			d[3*x], d[3*x+1], d[3*x+2] = r, g, bl
		}
	}
}
