package augment

import "fmt"

// ShrinkShorterSide is the one resize sslight may apply to a decoded image
// before any view is cut from it (prepare's --image-size, in both of its
// output modes, so that views rendered at preparation and views rendered by
// the trainer's loader come from the same pixels): torchvision's
// Resize(size) with bicubic interpolation on a PIL image (antialiased, as
// Resize does), but only for images whose shorter side is longer than size.
// Those come out with the shorter side size and the longer one
// int(size·long/short) (ResizeShorterSize); an image whose shorter side is
// size or less is copied unchanged (never enlarged: upsampling adds no
// information, and RandomResizedCrop enlarges crops anyway). It reports
// whether it resized. size must be positive.
func (r *Resampler) ShrinkShorterSide(dst, src *Image, size int) (resized bool, err error) {
	if size <= 0 || size > MaxOutputPixels {
		return false, fmt.Errorf("shrink to shorter side %d: %w", size, ErrBadSize)
	}
	if src == nil || src.W <= 0 || src.H <= 0 {
		return false, fmt.Errorf("shrink: %w", ErrEmptyImage)
	}
	if dst == src {
		return false, fmt.Errorf("shrink: %w", ErrAliased)
	}
	if min(src.W, src.H) <= size {
		dst.Reset(src.W, src.H)
		for y := 0; y < src.H; y++ {
			copy(dst.Row(y), src.Row(y))
		}
		return false, nil
	}
	nw, nh := ResizeShorterSize(src.W, src.H, size)
	if err := r.ResizedCrop(dst, src, Rect{Height: src.H, Width: src.W}, nw, nh, false); err != nil {
		return false, fmt.Errorf("shrink %dx%d to shorter side %d: %w", src.W, src.H, size, err)
	}
	return true, nil
}

// ShrunkSize is the size ShrinkShorterSide gives a w×h image.
func ShrunkSize(w, h, size int) (nw, nh int) {
	if min(w, h) <= size {
		return w, h
	}
	return ResizeShorterSize(w, h, size)
}
