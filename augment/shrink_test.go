package augment

import (
	"errors"
	"testing"
)

// TestShrinkShorterSide: torchvision's Resize(size) sizes for images larger
// than size (by hand: int(size·long/short)), no change for smaller ones, and
// the pixels of the PIL-checked Resize.
func TestShrinkShorterSide(t *testing.T) {
	for _, c := range []struct {
		w, h, size, ww, wh int
		resized            bool
	}{
		{500, 375, 256, 341, 256, true}, // an ImageNet-size photo, 224 × 256/224
		{375, 500, 256, 256, 341, true},
		{300, 300, 256, 256, 256, true},
		{257, 1000, 256, 256, 996, true}, // int(256·1000/257) = int(996.1)
		{256, 400, 256, 256, 400, false}, // shorter side already size: kept
		{28, 28, 32, 28, 28, false},      // Fashion-MNIST at 28 × 256/224: kept, never enlarged
		{1, 1, 1, 1, 1, false},
	} {
		if w, h := ShrunkSize(c.w, c.h, c.size); w != c.ww || h != c.wh {
			t.Errorf("ShrunkSize(%d, %d, %d) = %dx%d, want %dx%d", c.w, c.h, c.size, w, h, c.ww, c.wh)
		}
		src := patternImage(c.w, c.h)
		var r Resampler
		dst := &Image{}
		resized, err := r.ShrinkShorterSide(dst, src, c.size)
		if err != nil {
			t.Fatalf("%dx%d to %d: %v", c.w, c.h, c.size, err)
		}
		if resized != c.resized || dst.W != c.ww || dst.H != c.wh {
			t.Errorf("%dx%d to %d: resized=%v %dx%d, want %v %dx%d", c.w, c.h, c.size, resized, dst.W, dst.H, c.resized, c.ww, c.wh)
		}
		want := src
		if c.resized {
			want = &Image{}
			if err := Resize(want, src, c.ww, c.wh); err != nil {
				t.Fatal(err)
			}
		}
		if !equalImages(dst, want) {
			t.Errorf("%dx%d to %d: pixels differ from Resize(%d, %d)", c.w, c.h, c.size, c.ww, c.wh)
		}
	}
}

// TestShrinkShorterSideSubImage: a source with a padded stride (a
// sub-image) is copied or resized from its own pixels only.
func TestShrinkShorterSideSubImage(t *testing.T) {
	parent := patternImage(40, 30)
	sub, err := parent.SubImage(Rect{Top: 3, Left: 5, Height: 20, Width: 25})
	if err != nil {
		t.Fatal(err)
	}
	var r Resampler
	for _, size := range []int{20, 10} {
		got := &Image{}
		if _, err := r.ShrinkShorterSide(got, sub, size); err != nil {
			t.Fatal(err)
		}
		tight := NewImage(sub.W, sub.H)
		copy(tight.Pix, sub.Tight())
		want := &Image{}
		if _, err := r.ShrinkShorterSide(want, tight, size); err != nil {
			t.Fatal(err)
		}
		if !equalImages(got, want) {
			t.Errorf("size %d: a sub-image shrinks differently from a tight copy", size)
		}
	}
}

func TestShrinkShorterSideErrors(t *testing.T) {
	var r Resampler
	img := patternImage(4, 4)
	for _, c := range []struct {
		name     string
		dst, src *Image
		size     int
		want     error
	}{
		{"zero size", &Image{}, img, 0, ErrBadSize},
		{"empty source", &Image{}, &Image{}, 3, ErrEmptyImage},
		{"aliased", img, img, 2, ErrAliased},
	} {
		if _, err := r.ShrinkShorterSide(c.dst, c.src, c.size); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}
