package augment

import (
	"encoding/json"
	"errors"
	"testing"
)

// Fuzz targets. Each compares the fast path (SIMD kernels in cgo builds,
// folded crop/flip/window logic, transposed blur) with a plain reference
// written the way PIL's C reads, or checks that bad input is an error rather
// than a panic. Seed corpora live in testdata/fuzz/<FuzzName>/.

// sentinels are the errors this package's functions wrap.
var sentinels = []error{ErrEmptyImage, ErrBadBox, ErrBadSize, ErrBadFactor, ErrAliased, ErrShortBuffer, ErrBadPolicy}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// fuzzImage builds a w×h image from data (cycled), w and h in [1, maxSide].
func fuzzImage(data []byte, w, h, maxSide int) *Image {
	w = 1 + abs(w)%maxSide
	h = 1 + abs(h)%maxSide
	img := NewImage(w, h)
	if len(data) == 0 {
		data = []byte{0}
	}
	for i := range img.Pix {
		img.Pix[i] = data[i%len(data)] + uint8(i/len(data))*31
	}
	return img
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// FuzzReplay feeds arbitrary JSON to the parameter decoder and Replay: any
// input must either render a Size×Size view or fail with a classified error.
func FuzzReplay(f *testing.F) {
	p := SSLightPolicy()
	p.GlobalSize, p.LocalSize = 40, 24
	for v := 0; v < 4; v++ {
		vp, err := p.DrawParams(53, 41, 7, "seed", 0, v)
		if err != nil {
			f.Fatal(err)
		}
		js, _ := json.Marshal(vp)
		f.Add(js)
	}
	f.Add([]byte(`{"size":8,"crop":{"top":0,"left":0,"height":41,"width":53},"jittered":true,"jitter":{"order":[3,3]}}`))
	f.Add([]byte(`{"size":-1}`))
	f.Add([]byte(`{"size":16,"crop":{"top":40,"left":52,"height":1,"width":1},"blur":true,"blur_radius":999}`))
	src := patternImage(53, 41)
	f.Fuzz(func(t *testing.T, data []byte) {
		var vp ViewParams
		if err := json.Unmarshal(data, &vp); err != nil {
			return
		}
		if vp.Size > 256 {
			return // valid but slow; the size limit has its own test
		}
		var dst Image
		err := Replay(&dst, src, &vp)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("unclassified error %v for %s", err, data)
			}
			return
		}
		if dst.W != vp.Size || dst.H != vp.Size {
			t.Fatalf("view %dx%d, want %d", dst.W, dst.H, vp.Size)
		}
	})
}

// naiveResizedCrop is F.resized_crop as PIL computes it, without the
// optimisations: copy the crop, horizontal pass over every row (skipped when
// the width does not change), vertical pass (skipped likewise), then mirror.
func naiveResizedCrop(src *Image, box Rect, w, h int, flip bool) *Image {
	crop := NewImage(box.Width, box.Height)
	for y := 0; y < box.Height; y++ {
		copy(crop.Row(y), src.Row(box.Top + y)[3*box.Left:3*(box.Left+box.Width)])
	}
	cur := crop
	if w != box.Width {
		var f axisFilter
		f.prepare(box.Width, w, false)
		next := NewImage(w, cur.H)
		for y := 0; y < cur.H; y++ {
			for x := 0; x < w; x++ {
				for c := 0; c < 3; c++ {
					acc := int32(1 << (resamplePrecision - 1))
					for i := 0; i < int(f.count[x]); i++ {
						acc += int32(cur.Row(y)[3*(int(f.start[x])+i)+c]) * f.w[x*f.ksize+i]
					}
					next.Row(y)[3*x+c] = clip8(acc)
				}
			}
		}
		cur = next
	}
	if h != box.Height {
		var f axisFilter
		f.prepare(box.Height, h, false)
		next := NewImage(cur.W, h)
		for y := 0; y < h; y++ {
			for x := 0; x < 3*cur.W; x++ {
				acc := int32(1 << (resamplePrecision - 1))
				for i := 0; i < int(f.count[y]); i++ {
					acc += int32(cur.Row(int(f.start[y]) + i)[x]) * f.w[y*f.ksize+i]
				}
				next.Row(y)[x] = clip8(acc)
			}
		}
		cur = next
	}
	if flip {
		out := NewImage(cur.W, cur.H)
		for y := 0; y < cur.H; y++ {
			for x := 0; x < cur.W; x++ {
				copy(out.Row(y)[3*x:3*x+3], cur.Row(y)[3*(cur.W-1-x):3*(cur.W-x)])
			}
		}
		cur = out
	}
	return cur
}

// FuzzResizedCrop compares ResizedCrop with the plain reference on random
// images, boxes (valid or not), output sizes and flips.
func FuzzResizedCrop(f *testing.F) {
	f.Add([]byte("seed"), 40, 30, 2, 3, 20, 25, 12, 9, false)
	f.Add([]byte{255, 0, 7}, 9, 200, 0, 0, 9, 200, 3, 1, true)
	f.Add([]byte{1}, 1, 1, 0, 0, 1, 1, 64, 64, true)
	f.Add([]byte("edge"), 64, 2, 0, 60, 2, 4, 64, 2, false)
	f.Fuzz(func(t *testing.T, data []byte, sw, sh, top, left, bh, bw, ow, oh int, flip bool) {
		src := fuzzImage(data, sw, sh, 96)
		box := Rect{Top: top % 100, Left: left % 100, Height: bh % 100, Width: bw % 100}
		ow, oh = ow%130, oh%130
		var dst Image
		err := ResizedCrop(&dst, src, box, ow, oh, flip)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			if box.within(src) == nil && ow > 0 && oh > 0 {
				t.Fatalf("valid resize failed: %v", err)
			}
			return
		}
		want := naiveResizedCrop(src, box, ow, oh, flip)
		if !equalImages(&dst, want) {
			t.Fatalf("%dx%d box %+v -> %dx%d flip %v: differs from the plain reference", src.W, src.H, box, ow, oh, flip)
		}
	})
}

// naiveBoxBlurRow is PIL's ImagingLineBoxBlur on one row of one channel,
// indices clamped to the row.
func naiveBoxBlurRow(out, in []uint32, bw boxWeights) {
	last := len(in) - 1
	at := func(k int) uint32 { return in[max(0, min(k, last))] }
	for x := range in {
		var acc uint32
		for k := x - bw.r; k <= x+bw.r; k++ {
			acc += at(k)
		}
		out[x] = (acc*bw.ww + (at(x-bw.r-1)+at(x+bw.r+1))*bw.fw + 1<<23) >> 24
	}
}

// naiveGaussianBlur is PIL's GaussianBlur as written: three passes over the
// rows, then three over the columns.
func naiveGaussianBlur(src *Image, radius float32) *Image {
	bw := newBoxWeights(GaussianBoxRadius(radius))
	w, h := src.W, src.H
	plane := make([][]uint32, 3)
	for c := range plane {
		plane[c] = make([]uint32, w*h)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				plane[c][y*w+x] = uint32(src.Row(y)[3*x+c])
			}
		}
	}
	line, out := make([]uint32, max(w, h)), make([]uint32, max(w, h))
	for c := range plane {
		for p := 0; p < gaussianPasses; p++ {
			for y := 0; y < h; y++ {
				naiveBoxBlurRow(out[:w], plane[c][y*w:(y+1)*w], bw)
				copy(plane[c][y*w:], out[:w])
			}
		}
		for p := 0; p < gaussianPasses; p++ {
			for x := 0; x < w; x++ {
				for y := 0; y < h; y++ {
					line[y] = plane[c][y*w+x]
				}
				naiveBoxBlurRow(out[:h], line[:h], bw)
				for y := 0; y < h; y++ {
					plane[c][y*w+x] = out[y]
				}
			}
		}
	}
	dst := NewImage(w, h)
	for c := range plane {
		for i, v := range plane[c] {
			dst.Pix[3*i+c] = uint8(v)
		}
	}
	return dst
}

// FuzzGaussianBlur compares GaussianBlur with PIL's row-by-row formulation.
func FuzzGaussianBlur(f *testing.F) {
	f.Add([]byte("seed"), 17, 9, 1.3)
	f.Add([]byte{0, 255}, 1, 1, 0.1)
	f.Add([]byte{9, 99, 199}, 3, 40, 7.5)
	f.Add([]byte{200}, 30, 2, 2.0)
	f.Fuzz(func(t *testing.T, data []byte, w, h int, radius float64) {
		src := fuzzImage(data, w, h, 48)
		var dst Image
		err := GaussianBlur(&dst, src, radius)
		if err != nil {
			if !errors.Is(err, ErrBadFactor) {
				t.Fatalf("radius %v: %v", radius, err)
			}
			return
		}
		if float32(radius) == 0 {
			if !equalImages(&dst, src) {
				t.Fatal("radius 0 changed the image")
			}
			return
		}
		if want := naiveGaussianBlur(src, float32(radius)); !equalImages(&dst, want) {
			t.Fatalf("%dx%d radius %v: differs from the row-by-row reference", src.W, src.H, radius)
		}
	})
}

// FuzzPixelOps compares the fused per-pixel kernel (AVX2 in cgo builds)
// with one portable pass per operation, including the L sum.
func FuzzPixelOps(f *testing.F) {
	f.Add([]byte("seed pixels"), 13, 3, []byte{0, 200, 3, 77, 2, 10, 1, 128})
	f.Add([]byte{255, 255, 255, 0, 0, 0}, 8, 1, []byte{3, 0, 3, 255, 4, 0, 5, 128})
	f.Add([]byte{1, 2, 3}, 1, 1, []byte{})
	f.Fuzz(func(t *testing.T, data []byte, w, h int, spec []byte) {
		src := fuzzImage(data, w, h, 40)
		var ops []pixelOp
		for i := 0; i+1 < len(spec) && len(ops) < 10; i += 2 {
			k := int32(spec[i] % 6)
			a := float32(spec[i+1]) / 64 // factors 0 .. ~4
			ops = append(ops, pixelOp{kind: k, alpha: a, arg: int32(spec[i+1])})
		}
		want := &Image{}
		wantSum := runPixelOpsGo(want, src, ops, true)
		got := &Image{}
		gotSum := runPixelOpsLuma(got, src, ops, true)
		if !equalImages(want, got) || wantSum != gotSum {
			t.Fatalf("%dx%d ops %+v: fused kernel differs from the per-operation passes", src.W, src.H, ops)
		}
	})
}
