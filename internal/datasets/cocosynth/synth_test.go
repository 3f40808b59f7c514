package cocosynth

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sslight-go/sslight/sinks/coco"
	"github.com/sslight-go/sslight/sinks/idx"
)

// fashion are Fashion-MNIST's class names (the fixture's labels index them).
var fashion = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// loadItems reads the fixture: the first three t10k items of every
// Fashion-MNIST class (30 items).
func loadItems(t testing.TB) Items {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r, err := idx.Decompress(bytes.NewReader(read("items-images-idx3-ubyte.gz")))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.ReadImages(r, "items")
	if err != nil {
		t.Fatal(err)
	}
	r, err = idx.Decompress(bytes.NewReader(read("items-labels-idx1-ubyte.gz")))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := idx.ReadLabels(r, "labels")
	if err != nil {
		t.Fatal(err)
	}
	pix := make([]uint8, 0, im.N*im.H*im.W)
	for i := 0; i < im.N; i++ {
		pix = append(pix, im.Record(i)...)
	}
	return Items{N: im.N, H: im.H, W: im.W, Pix: pix, Labels: lb, Classes: fashion}
}

func smallConfig(n int, seed uint64) Config {
	c := DefaultConfig()
	c.Images, c.Seed, c.Split = n, seed, "val"
	return c
}

func TestGenerateIsDeterministic(t *testing.T) {
	items := loadItems(t)
	enc := func(c Config) ([][]byte, []byte) {
		s, err := Generate(items, c)
		if err != nil {
			t.Fatal(err)
		}
		j, err := s.AnnotationsJSON()
		if err != nil {
			t.Fatal(err)
		}
		return s.PNG, j
	}
	p1, j1 := enc(smallConfig(12, 7))
	p2, j2 := enc(smallConfig(12, 7))
	if !slices.EqualFunc(p1, p2, bytes.Equal) || !bytes.Equal(j1, j2) {
		t.Fatal("two runs with the same seed differ")
	}
	p3, _ := enc(smallConfig(12, 8))
	if bytes.Equal(p1[0], p3[0]) {
		t.Error("seeds 7 and 8 drew the same first image")
	}
	other := smallConfig(12, 7)
	other.Split = "train"
	p4, _ := enc(other)
	if bytes.Equal(p1[0], p4[0]) {
		t.Error("splits val and train drew the same first image")
	}
	// Image i depends on (seed, split, i) only: a shorter set is a prefix.
	p5, _ := enc(smallConfig(5, 7))
	if !slices.EqualFunc(p1[:5], p5, bytes.Equal) {
		t.Error("the first 5 images of a 12-image set differ from a 5-image set")
	}
}

// TestGenerateIsValidCOCO checks every annotation against the mask it was
// made from, with the sinks/coco reader and pycocotools' rasteriser as the
// independent side.
func TestGenerateIsValidCOCO(t *testing.T) {
	items := loadItems(t)
	cfg := smallConfig(40, 3)
	set, err := Generate(items, cfg)
	if err != nil {
		t.Fatal(err)
	}
	j, err := set.AnnotationsJSON()
	if err != nil {
		t.Fatal(err)
	}
	d, err := coco.Parse(bytes.NewReader(j), "instances_val.json")
	if err != nil {
		t.Fatal(err)
	}
	ix, probs := coco.Check(d)
	if len(probs) > 0 {
		t.Fatalf("Check refused records: %v", probs)
	}
	if len(ix.Images) != 40 || len(ix.Categories) != 10 || ix.Categories[0].Name != "T-shirt/top" || ix.Categories[9].ID != 10 {
		t.Fatalf("%d images, categories %v", len(ix.Images), ix.Categories)
	}
	perImage := map[int64]int{}
	n := cfg.Canvas
	for a, ann := range d.Annotations {
		perImage[ann.ImageID]++
		m := set.Masks[a]
		// The tight box of the mask, found here by a plain scan.
		x0, y0, x1, y1, count := n, n, -1, -1, 0
		for y := 0; y < n; y++ {
			for x := 0; x < n; x++ {
				if m[y*n+x] {
					count++
					x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
				}
			}
		}
		want := coco.BBox{float64(x0), float64(y0), float64(x1 - x0 + 1), float64(y1 - y0 + 1)}
		if ann.BBox != want || ann.Area != float64(count) || ann.IsCrowd != 0 {
			t.Errorf("annotation %d: bbox %v area %g, want %v and %d (the mask's)", ann.ID, ann.BBox, ann.Area, want, count)
		}
		if ann.BBox[2] < 3 || ann.BBox[3] < 3 {
			t.Errorf("annotation %d: a %gx%g object", ann.ID, ann.BBox[2], ann.BBox[3])
		}
		polys := ann.Segmentation.Polygons
		if err := coco.CheckPolygons(polys, n, n); err != nil {
			t.Errorf("annotation %d: %v", ann.ID, err)
			continue
		}
		got, err := coco.SegmentationRLE(ann.Segmentation, n, n)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Counts, coco.EncodeMask(colMajor(m, n, n), n, n).Counts) {
			t.Errorf("annotation %d: its polygons rasterise to %d pixels that are not its mask (%d pixels)", ann.ID, got.Area(), count)
		}
	}
	hist := map[int]int{}
	for _, im := range d.Images {
		c := perImage[im.ID]
		hist[c]++
		if c < cfg.MinObjects || c > cfg.MaxObjects {
			t.Errorf("image %d has %d objects, want %d–%d", im.ID, c, cfg.MinObjects, cfg.MaxObjects)
		}
	}
	if len(hist) < 3 {
		t.Errorf("objects per image %v: want a spread over 1–4", hist)
	}
	// Images decode to the canvas size, dark where no object lies.
	g, err := png.Decode(bytes.NewReader(set.PNG[0]))
	if err != nil {
		t.Fatal(err)
	}
	if b := g.Bounds(); b.Dx() != n || b.Dy() != n {
		t.Errorf("image 1 is %v, want %dx%d", b, n, n)
	}
}

func colMajor(m []bool, h, w int) []byte {
	out := make([]byte, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if m[y*w+x] {
				out[x*h+y] = 1
			}
		}
	}
	return out
}

// TestObjectsAreDistinct checks the overlap limit: no two objects of an
// image share more than MaxOverlap of the smaller one's box.
func TestObjectsAreDistinct(t *testing.T) {
	set, err := Generate(loadItems(t), smallConfig(60, 11))
	if err != nil {
		t.Fatal(err)
	}
	byImage := map[int64][]coco.BBox{}
	for _, a := range set.Dataset.Annotations {
		byImage[a.ImageID] = append(byImage[a.ImageID], a.BBox)
	}
	for id, boxes := range byImage {
		for i := range boxes {
			for j := i + 1; j < len(boxes); j++ {
				a, b := boxes[i], boxes[j]
				iw := math.Min(a[0]+a[2], b[0]+b[2]) - math.Max(a[0], b[0])
				ih := math.Min(a[1]+a[3], b[1]+b[3]) - math.Max(a[1], b[1])
				// Occlusion can only shrink a box, so the limit still holds
				// on the visible boxes.
				if iw > 0 && ih > 0 && iw*ih > 0.25*math.Min(a[2]*a[3], b[2]*b[3])+1e-9 {
					t.Errorf("image %d: boxes %v and %v overlap by %g px²", id, a, b, iw*ih)
				}
			}
		}
	}
}

func TestWriteLayout(t *testing.T) {
	set, err := Generate(loadItems(t), smallConfig(3, 1))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := set.Write(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"val/000000000001.png", "val/000000000003.png", "annotations/instances_val.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "val/000000000002.png"))
	if err != nil || !bytes.Equal(b, set.PNG[1]) {
		t.Errorf("val/000000000002.png does not hold image 2 (%v)", err)
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	items := loadItems(t)
	badLabel := items
	badLabel.Labels = slices.Clone(items.Labels)
	badLabel.Labels[4] = 12
	mod := func(f func(*Config)) Config { c := smallConfig(2, 0); f(&c); return c }
	tests := []struct {
		name  string
		items Items
		cfg   Config
	}{
		{"no images", items, mod(func(c *Config) { c.Images = 0 })},
		{"canvas too small", items, mod(func(c *Config) { c.Canvas = 40 })},
		{"min objects 0", items, mod(func(c *Config) { c.MinObjects = 0 })},
		{"max < min", items, mod(func(c *Config) { c.MaxObjects, c.MinObjects = 1, 2 })},
		{"scale 0", items, mod(func(c *Config) { c.MinScale = 0 })},
		{"overlap 2", items, mod(func(c *Config) { c.MaxOverlap = 2 })},
		{"split with slash", items, mod(func(c *Config) { c.Split = "a/b" })},
		{"split ..", items, mod(func(c *Config) { c.Split = ".." })},
		{"label without name", badLabel, smallConfig(2, 0)},
		{"pixels missing", Items{N: 2, H: 28, W: 28, Pix: make([]uint8, 10), Labels: []uint8{0, 1}, Classes: fashion}, smallConfig(2, 0)},
	}
	for _, tc := range tests {
		if _, err := Generate(tc.items, tc.cfg); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err %v, want ErrInput", tc.name, err)
		}
	}
}

// TestResizeMatchesTorch compares with F.interpolate(mode="bilinear",
// align_corners=False) in torch 1.13, rounded (within 1 level: the resize
// runs in 8-bit fixed point).
func TestResizeMatchesTorch(t *testing.T) {
	tests := []struct {
		src  []uint8
		n, s int
		want []float64
	}{
		{[]uint8{0, 255, 255, 0}, 2, 4, []float64{0, 63.75, 191.25, 255, 63.75, 95.625, 159.375, 191.25, 191.25, 159.375, 95.625, 63.75, 255, 191.25, 63.75, 0}},
		{[]uint8{0, 100, 200, 30, 60, 90, 255, 0, 255}, 3, 2, []float64{28.125, 151.875, 152.8125, 164.0625}},
		{[]uint8{0, 100, 200, 30, 60, 90, 255, 0, 255}, 3, 5, []float64{0, 40, 100, 160, 200, 12, 40.8, 84, 127.2, 156, 30, 42, 60, 78, 90, 165, 108.6, 24, 123, 189, 255, 153, 0, 153, 255}},
	}
	for _, tc := range tests {
		got := resize(tc.src, tc.n, tc.n, tc.s)
		for i, w := range tc.want {
			if math.Abs(float64(got[i])-w) > 1 {
				t.Errorf("%dx%d → %d: pixel %d = %d, want %.3f", tc.n, tc.n, tc.s, i, got[i], w)
			}
		}
	}
}
