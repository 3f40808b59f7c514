package augment_test

import (
	"encoding/json"
	"fmt"

	"github.com/sslight-go/sslight/augment"
)

// gradient is a small image to run the examples on: red rises to the right,
// green downwards, blue is constant.
func gradient(w, h int) *augment.Image {
	img := augment.NewImage(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := img.Row(y)[3*x:]
			p[0], p[1], p[2] = uint8(x*255/(w-1)), uint8(y*255/(h-1)), 100
		}
	}
	return img
}

// A crop resized with PIL's antialiased bicubic filter, mirrored in the same
// pass: the first step of every view.
func ExampleResizedCrop() {
	src := gradient(64, 48)
	var view augment.Image
	box := augment.Rect{Top: 8, Left: 16, Height: 32, Width: 40}
	if err := augment.ResizedCrop(&view, src, box, 20, 16, true); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(view.W, view.H)
	// Mirrored: red now falls from left to right.
	fmt.Println(view.Row(0)[0] > view.Row(0)[3*19])
	// Output:
	// 20 16
	// true
}

// ColorJitter with a fixed draw; the same factors torchvision would apply.
func ExampleColorJitter() {
	img := augment.NewImage(1, 1)
	copy(img.Pix, []uint8{200, 100, 50})
	order, _ := augment.MakeJitterOrder(augment.JitterBrightness, augment.JitterSaturation)
	p := augment.JitterParams{Order: order, Brightness: 0.5, Saturation: 0}
	if err := augment.ColorJitter(img, img, &p); err != nil {
		fmt.Println(err)
		return
	}
	// Brightness 0.5 halves (100, 50, 25); saturation 0 is PIL's grey L of that.
	fmt.Println(img.Pix)
	// Output: [62 62 62]
}

// PIL's Gaussian blur keeps the size and smooths a step edge.
func ExampleGaussianBlur() {
	img := augment.NewImage(8, 1)
	for x := 4; x < 8; x++ {
		copy(img.Row(0)[3*x:], []uint8{255, 255, 255})
	}
	if err := augment.GaussianBlur(img, img, 1.0); err != nil {
		fmt.Println(err)
		return
	}
	for x := 0; x < 8; x++ {
		if x > 0 {
			fmt.Print(" ")
		}
		fmt.Print(img.Row(0)[3*x])
	}
	fmt.Println()
	// Output: 0 1 15 75 179 240 254 255
}

// The evaluation transform: Resize(256) + CenterCrop(224), scaled for 96.
func ExampleEvalTransform() {
	src := gradient(500, 375)
	var view augment.Image
	if err := augment.EvalTransform(&view, src, 96); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(augment.EvalResize(96), view.W, view.H)
	// Output: 109 96 96
}

// The trainer's input: float32 CHW, normalised with ImageNet statistics.
func ExampleToTensorNormalize() {
	img := augment.NewImage(2, 1)
	copy(img.Pix, []uint8{124, 116, 104, 255, 255, 255})
	t := make([]float32, 3*2*1)
	if err := augment.ToTensorNormalize(t, img, augment.ImageNetMean, augment.ImageNetStd); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.3f\n", t)
	// Output: [0.006 2.249 -0.005 2.429 0.008 2.640]
}

// RandomResizedCrop's parameters from a view's random stream.
func ExampleRandomResizedCropParams() {
	var rng augment.ViewRNG
	rng.Seed(augment.ViewSeed(augment.ImageSeed(1, "img0", 0), 0))
	box, err := augment.RandomResizedCropParams(500, 375, [2]float64{0.3, 1}, augment.DefaultRatio, &rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	area := float64(box.Width*box.Height) / (500 * 375)
	fmt.Println(box.Top+box.Height <= 375 && box.Left+box.Width <= 500, area >= 0.29 && area <= 1.01)
	// Output: true true
}

// The SSLight multi-crop policy: 2 global and 6 local views per image, every
// random choice a function of (seed, key, epoch, view) and recorded.
func ExampleMultiCropPolicy_Apply() {
	policy := augment.SSLightPolicy()
	src := gradient(320, 240)
	var views augment.MultiCropViews
	if err := policy.Apply(src, 42, "train/img0.jpg", 3, &views); err != nil {
		fmt.Println(err)
		return
	}
	for i, v := range views.Views {
		if i > 0 {
			fmt.Print(" ")
		}
		fmt.Print(v.W, "x", v.H)
	}
	fmt.Println()
	// The same inputs give the same views on any worker; the record replays.
	js, _ := json.Marshal(views.Params[0])
	var p augment.ViewParams
	_ = json.Unmarshal(js, &p)
	var again augment.Image
	_ = augment.Replay(&again, src, &p)
	fmt.Println(string(again.Tight()) == string(views.Views[0].Tight()))
	// Output:
	// 224x224 224x224 128x128 128x128 128x128 128x128 128x128 128x128
	// true
}
