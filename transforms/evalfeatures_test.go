package transforms

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/featurefile"
	"github.com/sslight-go/sslight/sinks/npy"
	"github.com/sslight-go/sslight/transforms/source"
)

var imagenetView = EvalView{Mean: augment.ImageNetMean, Std: augment.ImageNetStd}

// TestEvalViewGolden compares the evaluation view of PNG files with
// torchvision's Resize + CenterCrop + ToTensor + Normalize run on PIL
// (testdata/evalfeatures/gen_golden.py): downscaling a landscape RGB image
// and upscaling a small portrait gray one.
func TestEvalViewGolden(t *testing.T) {
	for _, tc := range []struct {
		png, npy string
		size     int
	}{
		{"rgb_50x37.png", "rgb_50x37_s24.npy", 24},
		{"gray_8x10.png", "gray_8x10_s16.npy", 16},
	} {
		dir := "testdata/evalfeatures"
		f, err := os.Open(filepath.Join(dir, tc.npy))
		if err != nil {
			t.Fatal(err)
		}
		shape, want, err := npy.ReadFloat32(f, nil)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(shape, []int{3, tc.size, tc.size}) {
			t.Fatalf("%s: shape %v", tc.npy, shape)
		}
		st, err := os.Stat(filepath.Join(dir, tc.png))
		if err != nil {
			t.Fatal(err)
		}
		it := source.Item{URI: filepath.Join(dir, tc.png), Key: tc.png, Index: -1, Size: st.Size()}
		v := imagenetView
		v.Size = tc.size
		got := make([]float32, 3*tc.size*tc.size)
		if stage, err := v.ApplyItem(context.Background(), it, got, &EvalScratch{}); err != nil {
			t.Fatalf("%s: %s: %v", tc.png, stage, err)
		}
		// PIL's and augment's resampling agree to the 8-bit level: one
		// level is 1/255/std ≈ 0.0175 after normalisation.
		worst := 0.0
		for i := range want {
			worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		}
		if worst > 1e-6 {
			t.Errorf("%s at %d: differs from torchvision by up to %.3g", tc.png, tc.size, worst)
		}
	}
}

// TestEvalViewIdentityResize: when the shorter side already equals
// Resize(S) (a 32×32 record at S = 28, the Fashion-MNIST case at 32 px)
// the view is the centre 28×28 window, offset 2, normalised by hand.
func TestEvalViewIdentityResize(t *testing.T) {
	img := augment.NewImage(32, 32)
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			v := uint8(7*x + y)
			copy(img.Pix[y*img.Stride+3*x:], []uint8{v, v, v})
		}
	}
	v := EvalView{Size: 28, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25}}
	got := make([]float32, 3*28*28)
	if err := v.ApplyImage(got, img, &EvalScratch{}); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 3; c++ {
		for y := 0; y < 28; y++ {
			for x := 0; x < 28; x++ {
				want := (float32(7*(x+2)+(y+2))/255 - 0.5) / 0.25
				if g := got[c*28*28+y*28+x]; math.Abs(float64(g-want)) > 1e-6 {
					t.Fatalf("channel %d (%d,%d) = %v, want %v", c, x, y, g, want)
				}
			}
		}
	}
	if info := v.Info(); info.Resize != 32 || info.Crop != 28 {
		t.Errorf("Info %+v, want resize 32 crop 28", info)
	}
}

func TestEvalViewValidate(t *testing.T) {
	for _, v := range []EvalView{
		{Size: 0, Mean: augment.ImageNetMean, Std: augment.ImageNetStd},
		{Size: 224, Mean: augment.ImageNetMean, Std: [3]float32{0.2, 0, 0.2}},
	} {
		if err := v.Validate(); err == nil {
			t.Errorf("%+v accepted", v)
		}
	}
}

// channelMeans is a stand-in extractor with a hand-checkable output: the
// mean of each channel of the view. It records its batch sizes.
type channelMeans struct {
	mu      sync.Mutex
	batches []int
	fail    error
}

func (c *channelMeans) Dim(h, w int) int { return 3 }

func (c *channelMeans) Extract(images [][]float32, h, w int) ([]float32, error) {
	if c.fail != nil {
		return nil, c.fail
	}
	c.mu.Lock()
	c.batches = append(c.batches, len(images))
	c.mu.Unlock()
	out := make([]float32, 0, 3*len(images))
	for _, im := range images {
		for ch := 0; ch < 3; ch++ {
			var s float64
			for _, v := range im[ch*h*w : (ch+1)*h*w] {
				s += float64(v)
			}
			out = append(out, float32(s/float64(h*w)))
		}
	}
	return out, nil
}

// evalItems lists four real photos and three bad inputs, with the stage
// each bad one must be dead-lettered at.
func evalItems(t *testing.T) ([]source.Item, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	var items []source.Item
	add := func(src, name string, label int) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		items = append(items, source.Item{URI: p, Key: name, Index: -1, Label: label, Size: int64(len(b))})
	}
	photos, _ := filepath.Glob("../testdata/photos/*.jpg")
	if len(photos) < 4 {
		t.Fatalf("want the real photos in testdata/photos, found %d", len(photos))
	}
	for i, p := range photos[:4] {
		add(p, fmt.Sprintf("c%d/%s", i%2, filepath.Base(p)), i%2)
	}
	add("../testdata/prepare/bad/truncated.JPEG", "c1/truncated.JPEG", 1)
	add("../testdata/prepare/bad/random_bytes.JPEG", "c0/random.JPEG", 0)
	items = append(items, source.Item{URI: filepath.Join(dir, "gone.png"), Key: "c0/gone.png", Index: -1, Size: 10})
	return items, map[string]string{"c1/truncated.JPEG": StageDecode, "c0/random.JPEG": StageDecode, "c0/gone.png": StageRead}
}

func TestFeatureBuilder(t *testing.T) {
	items, wantDead := evalItems(t)
	// Reverse the delivery order: the part must not depend on it.
	rev := make([]source.Item, len(items))
	for i, it := range items {
		rev[len(items)-1-i] = it
	}
	ctx := context.Background()
	view := imagenetView
	view.Size = 24
	var first *featurefile.Part
	for _, tc := range []struct{ workers, batch int }{{1, 1}, {3, 2}, {0, 0}} {
		out := t.TempDir()
		x := &channelMeans{}
		b := &FeatureBuilder{Out: out, View: view, Workers: tc.workers, Batch: tc.batch, Metadata: map[string]string{"config_hash": "h"}}
		info, dead, err := b.Build(ctx, FeatureJob{Index: 2, Parts: 5, Items: rev}, x)
		if err != nil {
			t.Fatal(err)
		}
		if info == nil || info.Name != "part-00002-of-00005.safetensors" || info.Samples != 4 {
			t.Fatalf("workers %d batch %d: info %+v", tc.workers, tc.batch, info)
		}
		for _, n := range x.batches {
			if tc.batch > 0 && n > tc.batch {
				t.Errorf("extractor got a batch of %d, want at most %d", n, tc.batch)
			}
		}
		got := map[string]string{}
		for _, d := range dead {
			if d.Epoch != nil || d.Error == "" {
				t.Errorf("dead letter %+v: want no epoch and an error", d)
			}
			got[d.Key] = d.Stage
		}
		if !reflect.DeepEqual(got, wantDead) {
			t.Errorf("dead letters %v, want %v", got, wantDead)
		}
		p, err := featurefile.ReadPart(ctx, out, *info)
		if err != nil {
			t.Fatal(err)
		}
		if !sort.StringsAreSorted(p.Keys) || p.Metadata["config_hash"] != "h" {
			t.Errorf("keys %v not sorted, or metadata %v lost", p.Keys, p.Metadata)
		}
		// Each row is the channel means of the photo's view, computed here
		// with ApplyItem, and its label the item's.
		byKey := map[string]source.Item{}
		for _, it := range items {
			byKey[it.Key] = it
		}
		for i, k := range p.Keys {
			it := byKey[k]
			v := make([]float32, 3*24*24)
			if _, err := view.ApplyItem(ctx, it, v, &EvalScratch{}); err != nil {
				t.Fatal(err)
			}
			want, _ := (&channelMeans{}).Extract([][]float32{v}, 24, 24)
			if !reflect.DeepEqual(p.X[3*i:3*i+3], want) || p.Labels[i] != int64(it.Label) {
				t.Errorf("row %s: %v label %d, want %v label %d", k, p.X[3*i:3*i+3], p.Labels[i], want, it.Label)
			}
		}
		if first == nil {
			first = p
		} else if !reflect.DeepEqual(p, first) {
			t.Errorf("workers %d batch %d: part differs from the first run", tc.workers, tc.batch)
		}
	}
}

func TestFeatureBuilderAllDeadAndErrors(t *testing.T) {
	ctx := context.Background()
	items, _ := evalItems(t)
	view := imagenetView
	view.Size = 16
	out := t.TempDir()
	b := &FeatureBuilder{Out: out, View: view}
	info, dead, err := b.Build(ctx, FeatureJob{Index: 0, Parts: 1, Items: items[4:]}, &channelMeans{})
	if err != nil || info != nil || len(dead) != 3 {
		t.Errorf("all-bad group: info %v, %d dead, err %v; want no part and 3 dead letters", info, len(dead), err)
	}
	if _, err := os.Stat(filepath.Join(out, featurefile.FilesDir)); !os.IsNotExist(err) {
		t.Errorf("a part folder was written for a group without samples: %v", err)
	}
	boom := errors.New("boom")
	if _, _, err := b.Build(ctx, FeatureJob{Index: 0, Parts: 1, Items: items}, &channelMeans{fail: boom}); !errors.Is(err, boom) {
		t.Errorf("extractor failure: err %v, want it passed on", err)
	}
	dup := append(items[:1:1], items[0])
	if _, _, err := b.Build(ctx, FeatureJob{Items: dup, Parts: 1}, &channelMeans{}); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("duplicate key: err %v", err)
	}
}

func TestBuildFeatureIndex(t *testing.T) {
	tmpl := featurefile.Index{Dim: 3, Model: featurefile.ModelInfo{Mode: featurefile.ModeRawPixels}, ConfigHash: "h"}
	infos := []featurefile.FileInfo{{Name: "part-00001-of-00002.safetensors", Samples: 2, Bytes: 9}, {Name: "part-00000-of-00002.safetensors", Samples: 3, Bytes: 9}}
	dead := []deadletter.Record{{URI: "/d/x.jpg", Key: "x.jpg", Stage: StageDecode, Error: "truncated"}}
	rej := []source.Rejection{
		{URI: "/d/README", Key: "README", Stage: source.StageList, Error: "outside", IsItem: true},
		{URI: "/d/ann.json", Key: "ann 7", Stage: source.StageAnnotation, Error: "bad bbox"},
	}
	ix, all, err := BuildFeatureIndex(FeatureIndexParams{Index: tmpl, Inputs: 7, Rejected: rej}, infos, dead)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Samples != 5 || ix.DeadLetters != 2 || ix.Inputs != 7 || ix.Files[0].Name != "part-00000-of-00002.safetensors" || ix.SchemaVersion != featurefile.SchemaVersion {
		t.Errorf("index %+v", ix)
	}
	if len(all) != 3 {
		t.Errorf("%d dead letters, want 3 (one from a worker, two from the listing)", len(all))
	}
	if _, _, err := BuildFeatureIndex(FeatureIndexParams{Index: tmpl, Inputs: 8, Rejected: rej}, infos, dead); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Errorf("a lost input: err %v", err)
	}
}
