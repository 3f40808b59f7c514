// Package augment holds pure-Go image operations with the exact semantics of
// PIL 9.4 / torchvision 0.14, and the SSLight multi-crop policy built on them.
// It knows nothing of Beam or gorgonia.
package augment

import "fmt"

// Image is an 8-bit RGB image stored interleaved (R, G, B, R, G, B, ...),
// row-major. Pixel (x, y) channel c lives at Pix[y*Stride+3*x+c]. Stride is
// in bytes and is at least 3*W; sub-images share Pix with their parent.
type Image struct {
	Pix    []uint8
	W, H   int
	Stride int
}

// NewImage returns a zeroed W×H image with a tight stride.
func NewImage(w, h int) *Image {
	if w < 0 || h < 0 {
		panic(fmt.Sprintf("augment.NewImage: negative size %dx%d", w, h))
	}
	return &Image{Pix: make([]uint8, 3*w*h), W: w, H: h, Stride: 3 * w}
}

// Reset resizes img to w×h with a tight stride, reusing its buffer when it is
// large enough. The pixel contents are unspecified afterwards.
func (img *Image) Reset(w, h int) {
	n := 3 * w * h
	if cap(img.Pix) < n {
		img.Pix = make([]uint8, n)
	}
	img.Pix = img.Pix[:n]
	img.W, img.H, img.Stride = w, h, 3*w
}

// Row returns the 3*W bytes of row y.
func (img *Image) Row(y int) []uint8 {
	o := y * img.Stride
	return img.Pix[o : o+3*img.W]
}

// Tight returns the pixels as a contiguous H×W×3 slice, copying only when the
// stride has padding. The result is what a [H, W, 3] uint8 tensor holds.
func (img *Image) Tight() []uint8 {
	if img.Stride == 3*img.W {
		return img.Pix[:3*img.W*img.H]
	}
	out := make([]uint8, 0, 3*img.W*img.H)
	for y := 0; y < img.H; y++ {
		out = append(out, img.Row(y)...)
	}
	return out
}

// SubImage returns the part box of img as an Image sharing img's pixels
// (Stride stays img's), or an error naming the box if it does not fit.
func (img *Image) SubImage(box Rect) (*Image, error) {
	if err := box.within(img); err != nil {
		return nil, fmt.Errorf("sub-image: %w", err)
	}
	o := box.Top*img.Stride + 3*box.Left
	end := (box.Top+box.Height-1)*img.Stride + 3*(box.Left+box.Width)
	return &Image{Pix: img.Pix[o:end], W: box.Width, H: box.Height, Stride: img.Stride}, nil
}
