package augment

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// smallPolicy is SSLight's policy at small output sizes, so tests that run
// the whole policy many times (and under -race) stay fast.
func smallPolicy() MultiCropPolicy {
	p := SSLightPolicy()
	p.GlobalSize, p.LocalSize = 48, 24
	return p
}

// viewDigest summarises one image's views and parameters.
func viewDigest(t testing.TB, v *MultiCropViews) string {
	t.Helper()
	h := sha256.New()
	for i := range v.Views {
		fmt.Fprintf(h, "%dx%d;", v.Views[i].W, v.Views[i].H)
		h.Write(v.Views[i].Tight())
		js, err := json.Marshal(v.Params[i])
		if err != nil {
			t.Fatal(err)
		}
		h.Write(js)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestViewSeedIsPinned(t *testing.T) {
	// Expected values computed with Python's hashlib from the documented
	// derivation; a change here changes every shard ever written.
	cases := []struct {
		seed       uint64
		key        string
		epoch      int
		view       int
		image, vew string
	}{
		{0, "", 0, 0,
			"26c966b8eda0ed8c5787ceb20a843c9f76af53e0d7d824c06f98057d9dd74d77",
			"332542130b1b932488c911f66d28d2bdd8b7c525e3b1d155bc8a8715772d7592"},
		{42, "n01440764/n01440764_10026.JPEG", 3, 7,
			"e34da1f84a72fb29e8f3ab496f86e4ffb6bede8f698484015b1bb7f6613f1b0d",
			"a91e7877723f5ca4dfcdd17b06dac212134522d1643183de9a06b790fa08ca17"},
		{math.MaxUint64, "k", -1, 1,
			"4ed6c110a836e54d793329f002723217440d9751fec0e953071c7e2517ecef92",
			"e7a9f687f9fa501ae3113bb1c13708365e7c80e22ecd09f3f9fcd1b3d4f2f822"},
	}
	for _, c := range cases {
		is := ImageSeed(c.seed, c.key, c.epoch)
		if got := hex.EncodeToString(is[:]); got != c.image {
			t.Errorf("ImageSeed(%d, %q, %d) = %s, want %s", c.seed, c.key, c.epoch, got, c.image)
		}
		vs := ViewSeed(is, c.view)
		if got := hex.EncodeToString(vs[:]); got != c.vew {
			t.Errorf("ViewSeed(.., %d) = %s, want %s", c.view, got, c.vew)
		}
	}
}

func TestMultiCropConcurrentMatchesSequential(t *testing.T) {
	photos := loadTestPhotos(t)
	p := smallPolicy()
	type task struct {
		photo int
		key   string
		epoch int
	}
	var tasks []task
	for i, ph := range photos {
		for _, epoch := range []int{0, 1, 5} {
			tasks = append(tasks, task{i, ph.name, epoch})
		}
	}
	const seed = 20230501
	want := make([]string, len(tasks))
	var seq MultiCropViews
	for i, tk := range tasks {
		if err := p.Apply(photos[tk.photo].img, seed, tk.key, tk.epoch, &seq); err != nil {
			t.Fatal(err)
		}
		want[i] = viewDigest(t, &seq)
	}
	// Same views for every (key, epoch) pair must not collide.
	seen := map[string]int{}
	for i, d := range want {
		if j, ok := seen[d]; ok {
			t.Fatalf("tasks %d and %d produced identical views", j, i)
		}
		seen[d] = i
	}
	const workers = 8
	got := make([]string, len(tasks))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var out MultiCropViews // one per goroutine, reused across images
			order := rand.New(rand.NewPCG(uint64(w), 99)).Perm(len(tasks))
			for _, i := range order {
				tk := tasks[i]
				if err := p.Apply(photos[tk.photo].img, seed, tk.key, tk.epoch, &out); err != nil {
					errs <- err
					return
				}
				d := viewDigest(t, &out)
				if w == 0 {
					got[i] = d
				} else if d != want[i] {
					errs <- fmt.Errorf("worker %d task %d (%s epoch %d): views differ from the sequential run", w, i, tk.key, tk.epoch)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range tasks {
		if got[i] != want[i] {
			t.Errorf("task %d: concurrent run differs from sequential", i)
		}
	}
}

func TestMultiCropReplayAfterJSON(t *testing.T) {
	photos := loadTestPhotos(t)
	p := SSLightPolicy()
	var out MultiCropViews
	for _, ph := range photos[:3] {
		if err := p.Apply(ph.img, 7, ph.name, 2, &out); err != nil {
			t.Fatal(err)
		}
		for i := range out.Views {
			js, err := json.Marshal(out.Params[i])
			if err != nil {
				t.Fatal(err)
			}
			var vp ViewParams
			if err := json.Unmarshal(js, &vp); err != nil {
				t.Fatal(err)
			}
			var again Image
			if err := Replay(&again, ph.img, &vp); err != nil {
				t.Fatal(err)
			}
			if !equalImages(&again, &out.Views[i]) {
				t.Errorf("%s view %d: replay from %s differs", ph.name, i, js)
			}
		}
	}
}

// TestMultiCropMatchesSeparateOps renders every view a second way, one
// package function per step with fresh buffers and the flip as its own step,
// and requires the same bytes as the fused, in-place Apply.
func TestMultiCropMatchesSeparateOps(t *testing.T) {
	photos := loadTestPhotos(t)
	p := SSLightPolicy()
	var out MultiCropViews
	flips, jitters, grays, blurs, solars := 0, 0, 0, 0, 0
	for k, ph := range photos {
		for epoch := 0; epoch < 3; epoch++ {
			if err := p.Apply(ph.img, uint64(k), ph.name, epoch, &out); err != nil {
				t.Fatal(err)
			}
			for i := range out.Views {
				vp := out.Params[i]
				cur := &Image{}
				if err := ResizedCrop(cur, ph.img, vp.Crop.Rect, vp.Size, vp.Size, false); err != nil {
					t.Fatal(err)
				}
				step := func(f func(dst, src *Image) error) {
					next := &Image{}
					if err := f(next, cur); err != nil {
						t.Fatal(err)
					}
					cur = next
				}
				if vp.Flip {
					flips++
					step(func(d, s *Image) error { HFlip(d, s); return nil })
				}
				if vp.Jittered {
					jitters++
					for _, op := range vp.Jitter.Order.Ops() {
						switch op {
						case JitterBrightness:
							step(func(d, s *Image) error { return AdjustBrightness(d, s, vp.Jitter.Brightness) })
						case JitterContrast:
							step(func(d, s *Image) error { return AdjustContrast(d, s, vp.Jitter.Contrast) })
						case JitterSaturation:
							step(func(d, s *Image) error { return AdjustSaturation(d, s, vp.Jitter.Saturation) })
						case JitterHue:
							step(func(d, s *Image) error { return AdjustHue(d, s, vp.Jitter.Hue) })
						}
					}
				}
				if vp.Gray {
					grays++
					step(func(d, s *Image) error { Grayscale(d, s); return nil })
				}
				if vp.Blur {
					blurs++
					step(func(d, s *Image) error { return GaussianBlur(d, s, vp.BlurRadius) })
				}
				if vp.Solarize {
					solars++
					step(func(d, s *Image) error { Solarize(d, s, 128); return nil })
				}
				if !equalImages(cur, &out.Views[i]) {
					t.Fatalf("%s epoch %d view %d (%+v): fused render differs from separate ops", ph.name, epoch, i, vp)
				}
			}
		}
	}
	// The sample must exercise every step for the comparison to mean much.
	if flips == 0 || jitters == 0 || grays == 0 || blurs == 0 || solars == 0 {
		t.Errorf("sample too small: flips %d jitters %d grays %d blurs %d solarizes %d", flips, jitters, grays, blurs, solars)
	}
}

// binomialOK reports whether k successes of n are within 5 standard
// deviations of probability p (deterministic here: the draws are seeded).
func binomialOK(k, n int, p float64) bool {
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return math.Abs(float64(k)-float64(n)*p) <= 5*sd+1e-9
}

func TestMultiCropDrawDistribution(t *testing.T) {
	p := SSLightPolicy()
	const n = 3000
	const W, H = 500, 375
	type counts struct{ flip, jit, gray, blur, sol, fallback int }
	var global1, global2, local counts
	for k := 0; k < n; k++ {
		key := fmt.Sprintf("img%05d", k)
		for v := 0; v < p.NumViews(); v++ {
			vp, err := p.DrawParams(W, H, 1, key, 0, v)
			if err != nil {
				t.Fatal(err)
			}
			c := &local
			scale := p.LocalScale
			size := p.LocalSize
			switch v {
			case 0:
				c, scale, size = &global1, p.GlobalScale, p.GlobalSize
			case 1:
				c, scale, size = &global2, p.GlobalScale, p.GlobalSize
			}
			if vp.View != v || vp.Size != size {
				t.Fatalf("view %d recorded as view %d size %d", v, vp.View, vp.Size)
			}
			b := vp.Crop
			if b.Top < 0 || b.Left < 0 || b.Top+b.Height > H || b.Left+b.Width > W {
				t.Fatalf("view %d crop %+v outside %dx%d", v, b, W, H)
			}
			if b.Fallback {
				c.fallback++
			} else {
				// Rounding w and h moves the area a little off the scale range.
				frac := float64(b.Width*b.Height) / (W * H)
				slack := float64(b.Width+b.Height+1) / (W * H)
				if frac < scale[0]-slack || frac > scale[1]+slack {
					t.Fatalf("view %d crop area fraction %v outside %v", v, frac, scale)
				}
				ar := float64(b.Width) / float64(b.Height)
				if ar < 0.75*(1-1.0/float64(b.Height))-1e-9 || ar > 4.0/3*(1+1.0/float64(b.Height))+1e-9 {
					t.Fatalf("view %d aspect %v outside (3/4, 4/3)", v, ar)
				}
			}
			if vp.Flip {
				c.flip++
			}
			if vp.Jittered {
				c.jit++
				j := vp.Jitter
				if j.Order.Len() != 4 {
					t.Fatalf("jitter order %v is not a permutation of all four ops", j.Order)
				}
				seen := [4]bool{}
				for _, op := range j.Order.Ops() {
					seen[op] = true
				}
				if seen != [4]bool{true, true, true, true} {
					t.Fatalf("jitter order %v is not a permutation", j.Order)
				}
				if j.Brightness < 0.6 || j.Brightness > 1.4 || j.Contrast < 0.6 || j.Contrast > 1.4 ||
					j.Saturation < 0.8 || j.Saturation > 1.2 || j.Hue < -0.1 || j.Hue > 0.1 {
					t.Fatalf("jitter factors out of range: %+v", j)
				}
			}
			if vp.Gray {
				c.gray++
			}
			if vp.Blur {
				c.blur++
				if vp.BlurRadius < 0.1 || vp.BlurRadius > 2.0 {
					t.Fatalf("blur radius %v outside [0.1, 2]", vp.BlurRadius)
				}
			}
			if vp.Solarize {
				c.sol++
			}
		}
	}
	nl := n * p.NumLocal
	checks := []struct {
		name string
		k, n int
		p    float64
	}{
		{"global1 flip", global1.flip, n, 0.5}, {"global2 flip", global2.flip, n, 0.5}, {"local flip", local.flip, nl, 0.5},
		{"global1 jitter", global1.jit, n, 0.8}, {"global2 jitter", global2.jit, n, 0.8}, {"local jitter", local.jit, nl, 0.8},
		{"global1 gray", global1.gray, n, 0.2}, {"global2 gray", global2.gray, n, 0.2}, {"local gray", local.gray, nl, 0.2},
		{"global1 blur", global1.blur, n, 1.0}, {"global2 blur", global2.blur, n, 0.1}, {"local blur", local.blur, nl, 0.5},
		{"global1 solarize", global1.sol, n, 0}, {"global2 solarize", global2.sol, n, 0.2}, {"local solarize", local.sol, nl, 0},
	}
	for _, c := range checks {
		if !binomialOK(c.k, c.n, c.p) {
			t.Errorf("%s: %d of %d, expected p = %v", c.name, c.k, c.n, c.p)
		}
	}
	// On a 4:3 image with these scales the first attempt almost always fits.
	if global1.fallback+global2.fallback+local.fallback > 0 {
		t.Errorf("unexpected fallbacks: %d %d %d", global1.fallback, global2.fallback, local.fallback)
	}
}

func TestDrawParamsMatchesApply(t *testing.T) {
	src := patternImage(97, 61)
	p := smallPolicy()
	var out MultiCropViews
	if err := p.Apply(src, 3, "pattern", 4, &out); err != nil {
		t.Fatal(err)
	}
	for v := range out.Params {
		vp, err := p.DrawParams(src.W, src.H, 3, "pattern", 4, v)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(vp)
		b, _ := json.Marshal(out.Params[v])
		if string(a) != string(b) {
			t.Errorf("view %d: DrawParams %s, Apply recorded %s", v, a, b)
		}
	}
	// Any change of seed, key, epoch or view changes the draw.
	base, _ := p.DrawParams(src.W, src.H, 3, "pattern", 4, 2)
	for _, alt := range []struct {
		seed  uint64
		key   string
		epoch int
		view  int
	}{{4, "pattern", 4, 2}, {3, "pattern2", 4, 2}, {3, "pattern", 5, 2}, {3, "pattern", 4, 3}} {
		vp, _ := p.DrawParams(src.W, src.H, alt.seed, alt.key, alt.epoch, alt.view)
		vp.View = base.View
		a, _ := json.Marshal(vp)
		b, _ := json.Marshal(base)
		if string(a) == string(b) {
			t.Errorf("%+v drew the same parameters as the base view", alt)
		}
	}
}

func TestMultiCropDisabledJitterOps(t *testing.T) {
	// Intensity 0 disables an operation: it is neither drawn nor applied.
	p := smallPolicy()
	p.JitterProb = 1
	p.Jitter = [4]float64{0.4, 0, 0.2, 0}
	for k := 0; k < 50; k++ {
		vp, err := p.DrawParams(64, 64, 1, fmt.Sprint(k), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !vp.Jittered || vp.Jitter.Order.Len() != 2 {
			t.Fatalf("order %v: want brightness and saturation only", vp.Jitter.Order)
		}
		for _, op := range vp.Jitter.Order.Ops() {
			if op != JitterBrightness && op != JitterSaturation {
				t.Fatalf("disabled op %d in order %v", op, vp.Jitter.Order)
			}
		}
	}
	p.Jitter = [4]float64{}
	vp, _ := p.DrawParams(64, 64, 1, "x", 0, 0)
	if vp.Jittered {
		t.Errorf("all-zero jitter intensities still jittered: %+v", vp.Jitter)
	}
}

func TestMultiCropErrors(t *testing.T) {
	good := SSLightPolicy()
	mutate := func(f func(p *MultiCropPolicy)) MultiCropPolicy {
		p := good
		f(&p)
		return p
	}
	policies := []struct {
		name  string
		p     MultiCropPolicy
		field string
	}{
		{"negative scale", mutate(func(p *MultiCropPolicy) { p.GlobalScale = [2]float64{-0.1, 1} }), "GlobalScale"},
		{"reversed scale", mutate(func(p *MultiCropPolicy) { p.LocalScale = [2]float64{0.3, 0.05} }), "LocalScale"},
		{"zero size", mutate(func(p *MultiCropPolicy) { p.GlobalSize = 0 }), "GlobalSize"},
		{"negative locals", mutate(func(p *MultiCropPolicy) { p.NumLocal = -1 }), "NumLocal"},
		{"flip prob", mutate(func(p *MultiCropPolicy) { p.FlipProb = 1.5 }), "FlipProb"},
		{"nan jitter prob", mutate(func(p *MultiCropPolicy) { p.JitterProb = math.NaN() }), "JitterProb"},
		{"hue too large", mutate(func(p *MultiCropPolicy) { p.Jitter[3] = 0.6 }), "hue"},
		{"negative brightness", mutate(func(p *MultiCropPolicy) { p.Jitter[0] = -1 }), "Jitter[0]"},
		{"blur radius", mutate(func(p *MultiCropPolicy) { p.BlurRadius = [2]float64{2, 0.1} }), "BlurRadius"},
	}
	src := patternImage(32, 32)
	for _, c := range policies {
		var out MultiCropViews
		err := c.p.Apply(src, 0, "k", 0, &out)
		if !errors.Is(err, ErrBadPolicy) {
			t.Errorf("%s: got %v, want ErrBadPolicy", c.name, err)
			continue
		}
		if !containsStr(err.Error(), c.field) {
			t.Errorf("%s: error %q does not name %s", c.name, err, c.field)
		}
	}
	var out MultiCropViews
	if err := good.Apply(&Image{}, 0, "empty", 0, &out); !errors.Is(err, ErrEmptyImage) {
		t.Errorf("empty image: got %v", err)
	}
	if err := good.Apply(nil, 0, "nil", 0, &out); !errors.Is(err, ErrEmptyImage) {
		t.Errorf("nil image: got %v", err)
	}
	// A 1×1 image is valid input: every crop falls back to the whole pixel.
	one := NewImage(1, 1)
	one.Pix[0], one.Pix[1], one.Pix[2] = 10, 200, 30
	if err := good.Apply(one, 0, "one", 0, &out); err != nil {
		t.Fatalf("1x1 image: %v", err)
	}
	for i, vp := range out.Params {
		if vp.Crop.Rect != (Rect{Height: 1, Width: 1}) {
			t.Errorf("view %d of a 1x1 image: crop %+v", i, vp.Crop)
		}
	}
	bad := ViewParams{Size: 8, Crop: CropParams{Rect: Rect{Top: 30, Left: 0, Height: 5, Width: 5}}}
	var dst Image
	if err := Replay(&dst, src, &bad); !errors.Is(err, ErrBadBox) {
		t.Errorf("replay with box outside image: got %v", err)
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestViewRNG(t *testing.T) {
	var r ViewRNG
	r.Seed(ViewSeed(ImageSeed(1, "rng", 0), 0))
	const n = 60000
	var hist [7]int
	var perms = map[[4]int]int{}
	for i := 0; i < n; i++ {
		v := r.IntN(7)
		if v < 0 || v >= 7 {
			t.Fatalf("IntN(7) = %d", v)
		}
		hist[v]++
		u := r.Uniform32(0.6, 1.4)
		if u < 0.6 || u > 1.4 {
			t.Fatalf("Uniform32(0.6, 1.4) = %v", u)
		}
		f := r.Float64()
		if f < 0 || f >= 1 {
			t.Fatalf("Float64() = %v", f)
		}
		perms[r.Perm4()]++
	}
	for v, c := range hist {
		if !binomialOK(c, n, 1.0/7) {
			t.Errorf("IntN(7) gave %d %d times of %d", v, c, n)
		}
	}
	if len(perms) != 24 {
		t.Fatalf("Perm4 produced %d distinct permutations, want 24", len(perms))
	}
	for p, c := range perms {
		if !binomialOK(c, n, 1.0/24) {
			t.Errorf("permutation %v drawn %d times of %d", p, c, n)
		}
	}
	// The stream restarts exactly on reseeding.
	var a, b ViewRNG
	a.Seed(ViewSeed(ImageSeed(9, "x", 1), 2))
	b.Seed(ViewSeed(ImageSeed(9, "x", 1), 2))
	for i := 0; i < 100; i++ {
		if a.Uint64() != b.Uint64() {
			t.Fatal("same seed, different streams")
		}
	}
}
