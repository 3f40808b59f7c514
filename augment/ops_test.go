package augment

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"math"
	"testing"
)

func TestHueShift(t *testing.T) {
	// np.uint8(f*255): truncate toward zero, then wrap modulo 256.
	cases := []struct {
		f    float64
		want uint8
	}{{0, 0}, {0.1, 25}, {-0.1, 231}, {0.5, 127}, {-0.5, 129}, {0.0039, 0}, {-0.004, 255}, {0.17, 43}, {-0.2, 205}}
	for _, c := range cases {
		if got := HueShift(c.f); got != c.want {
			t.Errorf("HueShift(%v) = %d, want %d", c.f, got, c.want)
		}
	}
}

func TestSizes(t *testing.T) {
	for _, c := range []struct{ size, want int }{{224, 256}, {96, 109}, {128, 146}, {256, 292}} {
		if got := EvalResize(c.size); got != c.want {
			t.Errorf("EvalResize(%d) = %d, want %d", c.size, got, c.want)
		}
	}
	for _, c := range []struct{ w, h, s, ww, wh int }{
		{500, 375, 256, 341, 256}, {375, 500, 256, 256, 341}, {300, 300, 256, 256, 256}, {1, 1000, 3, 3, 3000}, {28, 36, 32, 32, 41},
	} {
		if w, h := ResizeShorterSize(c.w, c.h, c.s); w != c.ww || h != c.wh {
			t.Errorf("ResizeShorterSize(%d, %d, %d) = %dx%d, want %dx%d", c.w, c.h, c.s, w, h, c.ww, c.wh)
		}
	}
	// Python round half to even; negative offsets mean padding.
	for _, c := range []struct{ n, c, want int }{{41, 28, 6}, {43, 28, 8}, {36, 32, 2}, {32, 32, 0}, {28, 32, -2}, {29, 32, -1}} {
		if got := CenterCropOffset(c.n, c.c); got != c.want {
			t.Errorf("CenterCropOffset(%d, %d) = %d, want %d", c.n, c.c, got, c.want)
		}
	}
}

func TestLumaAndSimpleOps(t *testing.T) {
	// ITU-R 601-2 weights in PIL's 16-bit fixed point.
	for _, c := range []struct{ r, g, b, want uint8 }{{255, 255, 255, 255}, {255, 0, 0, 76}, {0, 255, 0, 150}, {0, 0, 255, 29}, {0, 0, 0, 0}, {10, 20, 30, 18}} {
		if got := luma(c.r, c.g, c.b); got != c.want {
			t.Errorf("luma(%d,%d,%d) = %d, want %d", c.r, c.g, c.b, got, c.want)
		}
	}
	img := NewImage(3, 1)
	copy(img.Pix, []uint8{255, 0, 0, 10, 20, 30, 127, 128, 200})
	out := &Image{}
	Grayscale(out, img)
	if want := []uint8{76, 76, 76, 18, 18, 18, 136, 136, 136}; !bytes.Equal(out.Pix, want) {
		t.Errorf("Grayscale = %v, want %v", out.Pix, want)
	}
	Solarize(out, img, 128)
	if want := []uint8{0, 0, 0, 10, 20, 30, 127, 127, 55}; !bytes.Equal(out.Pix, want) {
		t.Errorf("Solarize = %v, want %v", out.Pix, want)
	}
	HFlip(out, img)
	if want := []uint8{127, 128, 200, 10, 20, 30, 255, 0, 0}; !bytes.Equal(out.Pix, want) {
		t.Errorf("HFlip = %v, want %v", out.Pix, want)
	}
	// Brightness 0.5 halves and truncates; 1.5 saturates at 255.
	if err := AdjustBrightness(out, img, 0.5); err != nil {
		t.Fatal(err)
	}
	if want := []uint8{127, 0, 0, 5, 10, 15, 63, 64, 100}; !bytes.Equal(out.Pix, want) {
		t.Errorf("AdjustBrightness(0.5) = %v, want %v", out.Pix, want)
	}
	if err := AdjustBrightness(out, img, 1.5); err != nil {
		t.Fatal(err)
	}
	if want := []uint8{255, 0, 0, 15, 30, 45, 190, 192, 255}; !bytes.Equal(out.Pix, want) {
		t.Errorf("AdjustBrightness(1.5) = %v, want %v", out.Pix, want)
	}
	// Mean L is (76 + 18 + 136)/3 = 76.67, rounded to 77; contrast 0 gives
	// that grey.
	if got := MeanLuma(img); got != 77 {
		t.Errorf("MeanLuma = %d, want 77", got)
	}
	if err := AdjustContrast(out, img, 0); err != nil {
		t.Fatal(err)
	}
	for _, v := range out.Pix {
		if v != 77 {
			t.Fatalf("AdjustContrast(0) = %v, want all 77", out.Pix)
		}
	}
	// Saturation 0 is the grayscale image.
	if err := AdjustSaturation(out, img, 0); err != nil {
		t.Fatal(err)
	}
	if want := []uint8{76, 76, 76, 18, 18, 18, 136, 136, 136}; !bytes.Equal(out.Pix, want) {
		t.Errorf("AdjustSaturation(0) = %v, want %v", out.Pix, want)
	}
}

func TestCenterCropPads(t *testing.T) {
	img := NewImage(2, 2)
	copy(img.Pix, []uint8{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4})
	out := &Image{}
	if err := CenterCrop(out, img, 4, 3); err != nil {
		t.Fatal(err)
	}
	// torchvision pads left (4-2)//2 = 1 and top (3-2)//2 = 0.
	want := []uint8{
		0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 0,
		0, 0, 0, 3, 3, 3, 4, 4, 4, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	}
	if !bytes.Equal(out.Pix, want) {
		t.Errorf("CenterCrop = %v, want %v", out.Pix, want)
	}
}

func TestResizeSameSizeIsCopyAndFlip(t *testing.T) {
	src := patternImage(23, 17)
	box := Rect{Top: 2, Left: 3, Height: 11, Width: 13}
	crop, err := src.SubImage(box)
	if err != nil {
		t.Fatal(err)
	}
	got := &Image{}
	if err := ResizedCrop(got, src, box, 13, 11, false); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Tight(), crop.Tight()) {
		t.Error("resizing a crop to its own size changed it")
	}
	if err := ResizedCrop(got, src, box, 13, 11, true); err != nil {
		t.Fatal(err)
	}
	flipped := &Image{}
	HFlip(flipped, crop)
	if !equalImages(got, flipped) {
		t.Error("same-size resize with flip is not the mirrored crop")
	}
	// Flip folded into a real resize equals resize then HFlip.
	var r Resampler
	a, b := &Image{}, &Image{}
	if err := r.ResizedCrop(a, src, box, 7, 19, true); err != nil {
		t.Fatal(err)
	}
	if err := r.ResizedCrop(b, src, box, 7, 19, false); err != nil {
		t.Fatal(err)
	}
	HFlip(b, b)
	if !equalImages(a, b) {
		t.Error("flip folded into the resize weights differs from flipping afterwards")
	}
}

// TestOpsHonourStride runs every operation on a sub-image (padded stride,
// shared pixels) and on a tight copy of it: results must be equal and the
// parent's pixels outside the sub-image untouched by in-place operations.
func TestOpsHonourStride(t *testing.T) {
	parent := patternImage(40, 30)
	box := Rect{Top: 3, Left: 5, Height: 20, Width: 27}
	ops := []struct {
		name string
		fn   func(dst, src *Image) error
	}{
		{"resize", func(d, s *Image) error { return Resize(d, s, 11, 9) }},
		{"resized crop", func(d, s *Image) error {
			return ResizedCrop(d, s, Rect{Top: 1, Left: 2, Height: 15, Width: 20}, 31, 8, true)
		}},
		{"brightness", func(d, s *Image) error { return AdjustBrightness(d, s, 1.3) }},
		{"contrast", func(d, s *Image) error { return AdjustContrast(d, s, 0.6) }},
		{"saturation", func(d, s *Image) error { return AdjustSaturation(d, s, 1.7) }},
		{"hue", func(d, s *Image) error { return AdjustHue(d, s, -0.21) }},
		{"grayscale", func(d, s *Image) error { Grayscale(d, s); return nil }},
		{"solarize", func(d, s *Image) error { Solarize(d, s, 100); return nil }},
		{"hflip", func(d, s *Image) error { HFlip(d, s); return nil }},
		{"blur", func(d, s *Image) error { return GaussianBlur(d, s, 1.7) }},
		{"jitter", func(d, s *Image) error {
			return ColorJitter(d, s, &JitterParams{Order: mustOrder(3, 1, 0, 2), Brightness: 0.7, Contrast: 1.2, Saturation: 0.9, Hue: 0.04})
		}},
		{"eval", func(d, s *Image) error { return EvalTransform(d, s, 12) }},
	}
	for _, op := range ops {
		sub, _ := parent.SubImage(box)
		tight := &Image{}
		copyImage(tight, sub)
		want, got := &Image{}, &Image{}
		if err := op.fn(want, tight); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if err := op.fn(got, sub); err != nil {
			t.Fatalf("%s on sub-image: %v", op.name, err)
		}
		if !equalImages(want, got) {
			t.Errorf("%s: result on a padded-stride sub-image differs", op.name)
		}
		if op.name == "resize" || op.name == "resized crop" || op.name == "eval" {
			continue
		}
		// In place on the sub-image: same result, parent outside untouched.
		before := append([]uint8(nil), parent.Pix...)
		if err := op.fn(sub, sub); err != nil {
			t.Fatalf("%s in place: %v", op.name, err)
		}
		if !equalImages(want, sub) {
			t.Errorf("%s: in-place result differs", op.name)
		}
		for y := 0; y < parent.H; y++ {
			for x := 0; x < parent.W; x++ {
				if y >= box.Top && y < box.Top+box.Height && x >= box.Left && x < box.Left+box.Width {
					continue
				}
				i := y*parent.Stride + 3*x
				if !bytes.Equal(parent.Pix[i:i+3], before[i:i+3]) {
					t.Fatalf("%s in place wrote outside the sub-image at (%d, %d)", op.name, x, y)
				}
			}
		}
		copy(parent.Pix, before)
	}
}

func TestOpErrors(t *testing.T) {
	img := patternImage(10, 8)
	out := &Image{}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"hue above 0.5", AdjustHue(out, img, 0.6), ErrBadFactor},
		{"hue NaN", AdjustHue(out, img, math.NaN()), ErrBadFactor},
		{"negative brightness", AdjustBrightness(out, img, -0.1), ErrBadFactor},
		{"NaN contrast", AdjustContrast(out, img, math.NaN()), ErrBadFactor},
		{"infinite saturation", AdjustSaturation(out, img, math.Inf(1)), ErrBadFactor},
		{"negative blur", GaussianBlur(out, img, -1), ErrBadFactor},
		{"huge blur", GaussianBlur(out, img, 1e9), ErrBadFactor},
		{"blur empty", GaussianBlur(out, &Image{}, 1), ErrEmptyImage},
		{"box outside", ResizedCrop(out, img, Rect{Top: 5, Left: 0, Height: 4, Width: 4}, 3, 3, false), ErrBadBox},
		{"empty box", ResizedCrop(out, img, Rect{Height: 0, Width: 4}, 3, 3, false), ErrBadBox},
		{"zero output", ResizedCrop(out, img, Rect{Height: 4, Width: 4}, 0, 3, false), ErrBadSize},
		{"huge output", ResizedCrop(out, img, Rect{Height: 4, Width: 4}, 1<<20, 1<<20, false), ErrBadSize},
		{"aliased", ResizedCrop(img, img, Rect{Height: 4, Width: 4}, 3, 3, false), ErrAliased},
		{"empty source", Resize(out, &Image{}, 3, 3), ErrEmptyImage},
		{"short tensor", ToTensorNormalize(make([]float32, 10), img, ImageNetMean, ImageNetStd), ErrShortBuffer},
		{"zero std", ToTensorNormalize(make([]float32, 240), img, ImageNetMean, [3]float32{1, 0, 1}), ErrBadFactor},
		{"center crop size", CenterCrop(out, img, 0, 4), ErrBadSize},
		{"eval size", EvalTransform(out, img, 0), ErrBadSize},
		{"jitter op", func() error { _, err := MakeJitterOrder(0, 7); return err }(), ErrBadPolicy},
		{"jitter repeat", func() error { _, err := MakeJitterOrder(2, 1, 2); return err }(), ErrBadPolicy},
		{"jitter json", json.Unmarshal([]byte(`{"order":[0,1,2,3,0]}`), &JitterParams{}), ErrBadPolicy},
		{"jitter factor", ColorJitter(out, img, &JitterParams{Order: mustOrder(0, 3), Brightness: 1, Hue: 2}), ErrBadFactor},
		{"replay size", Replay(out, img, &ViewParams{Size: MaxViewSize + 1, Crop: CropParams{Rect: Rect{Height: 2, Width: 2}}}), ErrBadPolicy},
		{"rrc empty", func() error {
			_, err := RandomResizedCropParams(0, 5, [2]float64{0.1, 1}, DefaultRatio, nil)
			return err
		}(), ErrEmptyImage},
		{"rrc scale", func() error {
			_, err := RandomResizedCropParams(5, 5, [2]float64{0.9, 0.1}, DefaultRatio, nil)
			return err
		}(), ErrBadPolicy},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
	if _, err := img.SubImage(Rect{Top: 0, Left: 8, Height: 2, Width: 3}); !errors.Is(err, ErrBadBox) {
		t.Errorf("SubImage outside: got %v", err)
	}
}

func TestToTensorNormalizeLayout(t *testing.T) {
	img := NewImage(2, 1)
	copy(img.Pix, []uint8{0, 255, 51, 255, 0, 102})
	out := make([]float32, 6)
	if err := ToTensorNormalize(out, img, [3]float32{0, 0.5, 0}, [3]float32{1, 0.5, 0.2}); err != nil {
		t.Fatal(err)
	}
	// CHW: R plane, G plane, B plane; (v/255 - mean) / std.
	want := []float32{0, 1, 1, -1, 1, 2}
	for i := range want {
		if math.Abs(float64(out[i]-want[i])) > 1e-6 {
			t.Fatalf("tensor = %v, want %v", out, want)
		}
	}
}

func TestFromStdImage(t *testing.T) {
	b := image.Rect(3, 2, 3+13, 2+9)
	sources := map[string]image.Image{}
	for name, ratio := range map[string]image.YCbCrSubsampleRatio{
		"420": image.YCbCrSubsampleRatio420, "422": image.YCbCrSubsampleRatio422, "444": image.YCbCrSubsampleRatio444, "440": image.YCbCrSubsampleRatio440,
	} {
		m := image.NewYCbCr(b, ratio)
		for i := range m.Y {
			m.Y[i] = uint8(i * 7)
		}
		for i := range m.Cb {
			m.Cb[i], m.Cr[i] = uint8(i*13+40), uint8(255-i*5)
		}
		sources["ycbcr"+name] = m
	}
	gray := image.NewGray(b)
	rgba := image.NewRGBA(b)
	nrgba := image.NewNRGBA(b)
	pal := image.NewPaletted(b, color.Palette{color.RGBA{1, 2, 3, 255}, color.RGBA{200, 100, 50, 255}})
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 3)
	}
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 5)
		nrgba.Pix[i] = uint8(i * 11)
	}
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 2)
	}
	sources["gray"], sources["rgba"], sources["nrgba"], sources["paletted"] = gray, rgba, nrgba, pal
	for name, src := range sources {
		got := &Image{}
		if err := FromStdImage(got, src); err != nil {
			t.Fatal(err)
		}
		// Independent path: draw onto an RGBA canvas pixel by pixel via At.
		ref := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(ref, ref.Bounds(), src, b.Min, draw.Src)
		if name == "nrgba" {
			// NRGBA keeps straight (not premultiplied) colour: compare to Pix.
			for y := 0; y < b.Dy(); y++ {
				for x := 0; x < b.Dx(); x++ {
					o := nrgba.PixOffset(b.Min.X+x, b.Min.Y+y)
					if !bytes.Equal(got.Row(y)[3*x:3*x+3], nrgba.Pix[o:o+3]) {
						t.Fatalf("nrgba (%d,%d) differs", x, y)
					}
				}
			}
			continue
		}
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				o := ref.PixOffset(x, y)
				if !bytes.Equal(got.Row(y)[3*x:3*x+3], ref.Pix[o:o+3]) {
					t.Fatalf("%s (%d,%d): got %v want %v", name, x, y, got.Row(y)[3*x:3*x+3], ref.Pix[o:o+3])
				}
			}
		}
	}
	if err := FromStdImage(&Image{}, image.NewGray(image.Rect(0, 0, 0, 5))); !errors.Is(err, ErrEmptyImage) {
		t.Errorf("empty image: got %v", err)
	}
}
