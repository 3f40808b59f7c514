package augment

import (
	"testing"
	"time"
)

// Per-operation benchmarks on a 224×224 view cut from a real photo, the size
// of a global crop; MB/s counts the view's bytes.

func benchView(b *testing.B) *Image {
	b.Helper()
	photos := loadTestPhotos(b)
	v := &Image{}
	if err := ResizedCrop(v, photos[0].img, Rect{Top: 10, Left: 20, Height: 300, Width: 300}, 224, 224, false); err != nil {
		b.Fatal(err)
	}
	return v
}

func BenchmarkOps(b *testing.B) {
	src := benchView(b)
	photo := loadTestPhotos(b)[0].img
	dst := &Image{}
	var rs Resampler
	var bl Blurrer
	ops := []struct {
		name string
		fn   func() error
	}{
		{"ResizedCrop_global", func() error {
			return rs.ResizedCrop(dst, photo, Rect{Top: 5, Left: 9, Height: 371, Width: 402}, 224, 224, true)
		}},
		{"ResizedCrop_local", func() error {
			return rs.ResizedCrop(dst, photo, Rect{Top: 50, Left: 90, Height: 180, Width: 160}, 128, 128, false)
		}},
		{"Brightness", func() error { return AdjustBrightness(dst, src, 1.3) }},
		{"Contrast", func() error { return AdjustContrast(dst, src, 0.7) }},
		{"Saturation", func() error { return AdjustSaturation(dst, src, 1.2) }},
		{"Hue", func() error { return AdjustHue(dst, src, 0.07) }},
		{"ColorJitter", func() error {
			return ColorJitter(dst, src, &JitterParams{Order: mustOrder(2, 0, 3, 1), Brightness: 1.2, Contrast: 0.8, Saturation: 1.1, Hue: -0.05})
		}},
		{"Grayscale", func() error { Grayscale(dst, src); return nil }},
		{"GaussianBlur", func() error { return bl.GaussianBlur(dst, src, 1.3) }},
		{"Solarize", func() error { Solarize(dst, src, 128); return nil }},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			b.SetBytes(int64(len(src.Pix)))
			cpu0, n := processCPU(), 0
			for b.Loop() {
				if err := op.fn(); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(n), "cpu-ns/op")
		})
	}
}

// BenchmarkMultiCropStages splits the per-image time of the SSLight policy
// (decode excluded) into its stages, replaying each view's recorded
// parameters one step at a time: where the time goes, for tuning.
func BenchmarkMultiCropStages(b *testing.B) {
	photos := loadTestPhotos(b)
	p := SSLightPolicy()
	var ws workspace
	var dst Image
	var tResize, tColour, tBlur, tSolarize time.Duration
	n := 0
	for b.Loop() {
		ph := photos[n%len(photos)]
		for v := 0; v < p.NumViews(); v++ {
			vp, err := p.DrawParams(ph.img.W, ph.img.H, 1, ph.name, n, v)
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if err := ws.rs.ResizedCrop(&dst, ph.img, vp.Crop.Rect, vp.Size, vp.Size, vp.Flip); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if vp.Jittered || vp.Gray {
				var none JitterParams
				j := &vp.Jitter
				if !vp.Jittered {
					j = &none
				}
				if err := colorJitter(&dst, &dst, j, vp.Gray); err != nil {
					b.Fatal(err)
				}
			}
			t2 := time.Now()
			if vp.Blur {
				if err := ws.bl.GaussianBlur(&dst, &dst, vp.BlurRadius); err != nil {
					b.Fatal(err)
				}
			}
			t3 := time.Now()
			if vp.Solarize {
				Solarize(&dst, &dst, 128)
			}
			tResize += t1.Sub(t0)
			tColour += t2.Sub(t1)
			tBlur += t3.Sub(t2)
			tSolarize += time.Since(t3)
		}
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	b.ReportMetric(per(tResize), "resize-us/img")
	b.ReportMetric(per(tColour), "colour-us/img")
	b.ReportMetric(per(tBlur), "blur-us/img")
	b.ReportMetric(per(tSolarize), "solarize-us/img")
}
