package detect

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"testing"
	"time"

	"github.com/sslight-go/sslight/internal/datasets/cocosynth"
	"github.com/sslight-go/sslight/sinks/idx"
	"github.com/sslight-go/sslight/trainer/backbone"
)

var fashionClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// fixtureItems reads the first three t10k items of every Fashion-MNIST
// class (testdata/items-*, a copy of internal/datasets/cocosynth's fixture).
func fixtureItems(t testing.TB) cocosynth.Items {
	t.Helper()
	open := func(name string) []byte {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		r, err := idx.Decompress(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(r); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	im, err := idx.ReadImages(bytes.NewReader(open("items-images-idx3-ubyte.gz")), "items")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := idx.ReadLabels(bytes.NewReader(open("items-labels-idx1-ubyte.gz")), "labels")
	if err != nil {
		t.Fatal(err)
	}
	var pix []uint8
	for i := 0; i < im.N; i++ {
		pix = append(pix, im.Record(i)...)
	}
	return cocosynth.Items{N: im.N, H: im.H, W: im.W, Pix: pix, Labels: lb, Classes: fashionClasses}
}

// synthSet generates a split and converts it to a Set with the standard
// library's PNG decoder (gray replicated to RGB).
func synthSet(t testing.TB, items cocosynth.Items, split string, n, canvas int, seed uint64) (*Set, *cocosynth.Set) {
	t.Helper()
	cfg := cocosynth.DefaultConfig()
	cfg.Images, cfg.Canvas, cfg.Seed, cfg.Split = n, canvas, seed, split
	gen, err := cocosynth.Generate(items, cfg)
	if err != nil {
		t.Fatal(err)
	}
	set := &Set{Size: canvas, Mean: [3]float32{0.1, 0.1, 0.1}, Std: [3]float32{0.2, 0.2, 0.2}}
	for _, c := range gen.Dataset.Categories {
		set.CategoryIDs = append(set.CategoryIDs, c.ID)
	}
	byImage := map[int64][]Object{}
	for _, a := range gen.Dataset.Annotations {
		byImage[a.ImageID] = append(byImage[a.ImageID], Object{Class: int(a.CategoryID - 1), Box: a.BBox})
	}
	for i, im := range gen.Dataset.Images {
		dec, err := png.Decode(bytes.NewReader(gen.PNG[i]))
		if err != nil {
			t.Fatal(err)
		}
		g := dec.(*image.Gray)
		pix := make([]uint8, 0, 3*canvas*canvas)
		for _, v := range g.Pix {
			pix = append(pix, v, v, v)
		}
		set.Images = append(set.Images, Image{ID: im.ID, Pix: pix, ScaleX: 1, ScaleY: 1, Objects: byImage[im.ID]})
	}
	return set, gen
}

// TestDetectionEndToEnd trains the detector briefly on a tiny generated
// set and checks that the protocol produces finite COCO AP numbers and
// that training beats the untrained head on the validation images.
func TestDetectionEndToEnd(t *testing.T) {
	start := time.Now()
	items := fixtureItems(t)
	train, _ := synthSet(t, items, "train", 32, 64, 1)
	val, valGen := synthSet(t, items, "val", 16, 64, 2)
	newModel := func() *Model {
		bb, err := backbone.New("resnet18", backbone.Options{Seed: 1, Width: 0.125, SmallImageStem: true})
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewModel(bb, len(train.CategoryIDs), DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	score := func(m *Model) *Metrics {
		res, err := Predict(m, val, 100)
		if err != nil {
			t.Fatal(err)
		}
		per := map[int64]int{}
		for _, r := range res {
			per[r.ImageID]++
		}
		for _, im := range val.Images {
			if n := per[im.ID]; n < 1 || n > 100 {
				t.Errorf("image %d has %d results, want 1–100", im.ID, n)
			}
		}
		mt, err := Score(context.Background(), valGen.Dataset, res)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range mt.Stats {
			if math.IsNaN(s) || s < -1 || s > 1 {
				t.Errorf("stat %d = %g", i, s)
			}
		}
		return mt
	}
	untrained := score(newModel())

	m := newModel()
	cfg := DefaultConfig()
	cfg.Epochs, cfg.BatchSize, cfg.WarmupIters = 12, 8, 4
	tr, err := Train(m, train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Stride != 4 || tr.GridW != 16 || tr.Steps != 12*4 {
		t.Errorf("train result %+v: want stride 4 (8 upsampled once), a 16-cell grid and 48 steps", tr)
	}
	trained := score(m)
	t.Logf("untrained AP %.4f AP50 %.4f; trained AP %.4f AP50 %.4f AP75 %.4f (loss %.3f, heatmap %.3f) in %s",
		untrained.AP, untrained.AP50, trained.AP, trained.AP50, trained.AP75, tr.Loss, tr.HeatLoss, time.Since(start).Round(time.Millisecond))
	if !(trained.AP50 > untrained.AP50) || !(trained.AP > untrained.AP) {
		t.Errorf("training did not help: AP %.4f / AP50 %.4f after, %.4f / %.4f before", trained.AP, trained.AP50, untrained.AP, untrained.AP50)
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	items := fixtureItems(t)
	set, _ := synthSet(t, items, "train", 4, 64, 1)
	bb, _ := backbone.New("resnet18", backbone.Options{Seed: 1, Width: 0.125, SmallImageStem: true})
	m, err := NewModel(bb, 10, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	one := *set
	one.Images = set.Images[:1]
	badClass := *set
	badClass.Images = append([]Image(nil), set.Images...)
	badClass.Images[0].Objects = []Object{{Class: 12, Box: [4]float64{1, 1, 5, 5}}}
	fewer := *set
	fewer.CategoryIDs = fewer.CategoryIDs[:3]
	cfgBad := DefaultConfig()
	cfgBad.Optimizer = "LARS"
	tests := []struct {
		name string
		set  *Set
		cfg  Config
	}{
		{"one image", &one, DefaultConfig()},
		{"class out of range", &badClass, DefaultConfig()},
		{"categories differ from the model's", &fewer, DefaultConfig()},
		{"optimizer", set, cfgBad},
		{"empty", &Set{Size: 64, CategoryIDs: []int64{1}, Std: [3]float32{1, 1, 1}}, DefaultConfig()},
	}
	for _, tc := range tests {
		if _, err := Train(m, tc.set, tc.cfg); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err %v, want ErrInput", tc.name, err)
		}
	}
	vit, _ := backbone.New("vit_tiny", backbone.Options{Seed: 1})
	if _, err := NewModel(vit, 10, DefaultConfig()); !errors.Is(err, ErrInput) {
		t.Errorf("a ViT: err %v, want ErrInput (no feature map)", err)
	}
}
