package evaluate

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/featurefile"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/nn"
)

// fmnistConfig is the Fashion-MNIST preset: a quarter-width ResNet-18 with
// the small-image stem, 28 px evaluation views (Resize 32, CenterCrop 28).
func fmnistConfig(t *testing.T) *configs.Config {
	t.Helper()
	c, err := configs.Preset("dino_fmnist_sslight")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// trainedBackbone builds the preset's backbone with BatchNorm running
// statistics moved away from their initial values, as training leaves
// them, so that evaluation mode shows in the features.
func trainedBackbone(t *testing.T, arch string, seed uint64) backbone.Backbone {
	t.Helper()
	bb, err := backbone.New(arch, backbone.Options{Seed: seed, Width: 0.25, SmallImageStem: true})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 3))
	for _, e := range backbone.BNBuffers(bb) {
		switch {
		case e.Count != nil:
			*e.Count = 50
		case strings.HasSuffix(e.Name, "running_var"):
			for i := range e.F32 {
				e.F32[i] = 0.5 + r.Float32()
			}
		default:
			for i := range e.F32 {
				e.F32[i] = 0.3 * float32(r.NormFloat64())
			}
		}
	}
	return bb
}

// writeCheckpoint writes a checkpoint folder as the trainer does
// (backbone.safetensors + meta.json), with meta.Arch as given.
func writeCheckpoint(t *testing.T, dir string, bb backbone.Backbone, metaArch string, cfg *configs.Config) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := backbone.StateDict(bb)
	f.Metadata = map[string]string{"format": "pt"} // no arch stamp: the strict load must catch a mismatch alone
	if err := safetensors.WriteFile(filepath.Join(dir, checkpoint.BackboneFile), f); err != nil {
		t.Fatal(err)
	}
	meta := checkpoint.Meta{Method: "DINO", Arch: metaArch, Width: 0.25, SmallImageStem: true, PatchSize: 16,
		Step: 12, ConfigHash: cfg.Hash(), Config: cfg.CanonicalJSON()}
	b, _ := json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(dir, checkpoint.MetaFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// idxFile builds an IDX file: magic 0x0000080<ndim>, big-endian dims, body.
func idxFile(ndim byte, dims []uint32, body []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, ndim})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(body)
	return b.Bytes()
}

// writeIDX writes a gzip MNIST-style images file declaring declared
// records but holding only n, and a labels file (label = record mod 3). It
// returns the records' pixels.
func writeIDX(t *testing.T, dir string, n, declared int) [][]uint8 {
	t.Helper()
	recs := make([][]uint8, n)
	var body []byte
	for i := range recs {
		recs[i] = make([]uint8, 28*28)
		for p := range recs[i] {
			recs[i][p] = uint8((p*(i+3) + p/28*11 + i*17) % 256)
		}
		body = append(body, recs[i]...)
	}
	labels := make([]byte, declared)
	for i := range labels {
		labels[i] = byte(i % 3)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(idxFile(3, []uint32{uint32(declared), 28, 28}, body))
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "train-labels-idx1-ubyte"), idxFile(1, []uint32{uint32(declared)}, labels), 0o644); err != nil {
		t.Fatal(err)
	}
	return recs
}

// evalTensor is the evaluation view computed with plain augment calls, the
// test's own path from an RGB image to the model input.
func evalTensor(t *testing.T, img *augment.Image, cfg *configs.Config) []float32 {
	t.Helper()
	s := cfg.MultiViewsTransforms.GlobalCropSize
	var view augment.Image
	if err := augment.EvalTransform(&view, img, s); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 3*s*s)
	mean, std := cfg.Data.MeanStd32()
	if err := augment.ToTensorNormalize(x, &view, mean, std); err != nil {
		t.Fatal(err)
	}
	return x
}

// forward runs bb in evaluation mode on one view in a graph built here,
// outside trainer/features and the pipeline.
func forward(t *testing.T, bb backbone.Backbone, x []float32, s int) []float32 {
	t.Helper()
	g := gorgonia.NewGraph()
	in := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 3, s, s), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(1, 3, s, s), tensor.WithBacking(append([]float32(nil), x...)))))
	out, err := bb.Forward(in, false)
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), out.Embedding.Value().Data().([]float32)...)
}

// closeRows fails unless got and want agree to 1e-5 relative to want's
// largest magnitude.
func closeRows(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i]-want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
	}
	if d > 1e-5*math.Max(m, 1e-6) {
		t.Errorf("%s: differs from the direct computation by %.3g (largest value %.3g)", what, d, m)
	}
}

func readDead(t *testing.T, out string) []deadletter.Record {
	t.Helper()
	recs, err := deadletter.Read(context.Background(), storage.Join(out, deadletter.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestExtractIDX extracts a trained checkpoint's features of a small
// MNIST-style data set whose images file is truncated, and checks them
// against the backbone run directly on views computed here; the result
// must not depend on the part count, the worker count or GOMAXPROCS.
func TestExtractIDX(t *testing.T) {
	ctx := context.Background()
	const n, declared = 19, 21
	src := t.TempDir()
	recs := writeIDX(t, src, n, declared)
	cfg := fmnistConfig(t)
	bb := trainedBackbone(t, "resnet18", 5)
	ckpt := filepath.Join(t.TempDir(), "run", "checkpoints", "step-00000012")
	writeCheckpoint(t, ckpt, bb, "resnet18", cfg)

	var first []float32
	for _, tc := range []struct{ group, workers, procs, batch int }{{6, 1, 2, 0}, {50, 3, 1, 4}} {
		out := t.TempDir()
		prev := runtime.GOMAXPROCS(tc.procs)
		// No Config: the checkpoint's own training config gives the view.
		sum, err := Extract(ctx, Options{Checkpoint: ckpt, Source: src, Format: "idx", Out: out,
			GroupSize: tc.group, Workers: tc.workers, BatchSize: tc.batch})
		runtime.GOMAXPROCS(prev)
		if err != nil {
			t.Fatal(err)
		}
		wantParts := (n + tc.group - 1) / tc.group
		if sum.Inputs != n+1 || sum.Samples != n || sum.DeadLetters != 1 || sum.Dim != 128 || sum.Parts > wantParts || sum.Parts < 1 ||
			sum.Mode != featurefile.ModeCheckpoint || sum.Checkpoint != ckpt || sum.ViewSize != 28 || sum.ConfigHash != cfg.Hash() {
			t.Errorf("summary %+v", sum)
		}
		dim, X, labels, keys, err := LoadFeatures(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		if dim != 128 || len(keys) != n || !sort.StringsAreSorted(keys) {
			t.Fatalf("dim %d, %d keys (sorted %v)", dim, len(keys), sort.StringsAreSorted(keys))
		}
		for i, k := range keys {
			var rec int
			if _, err := fmt.Sscanf(k[strings.LastIndexByte(k, '#')+1:], "%d", &rec); err != nil || rec != i {
				t.Fatalf("key %d is %q, want record %d", i, k, i)
			}
			if labels[i] != rec%3 {
				t.Errorf("%s: label %d, want %d", k, labels[i], rec%3)
			}
			// The record as RGB (gray replicated), its view, the backbone.
			img := augment.NewImage(28, 28)
			for p, v := range recs[rec] {
				img.Pix[3*p], img.Pix[3*p+1], img.Pix[3*p+2] = v, v, v
			}
			want := forward(t, bb, evalTensor(t, img, cfg), 28)
			closeRows(t, k, X[i*dim:(i+1)*dim], want)
		}
		if first == nil {
			first = X
		} else {
			// Bit-identical with gonum's SGEMM; OpenBLAS picks kernels by
			// matrix size, so another batching may change the last bits.
			exact := nn.BLAS() == "gonum"
			for i := range X {
				d := math.Abs(float64(X[i] - first[i]))
				if (exact && d != 0) || d > 1e-5*(1+math.Abs(float64(first[i]))) {
					t.Fatalf("group %d, %d workers, GOMAXPROCS %d (%s): value %d is %v, the first run gave %v", tc.group, tc.workers, tc.procs, nn.BLAS(), i, X[i], first[i])
				}
			}
		}
		dead := readDead(t, out)
		if len(dead) != 1 || dead[0].Stage != "list" || !strings.Contains(dead[0].Error, "records 19..20 of 21 are missing") {
			t.Errorf("dead letters %+v, want the truncated tail", dead)
		}
		ix, err := featurefile.ReadIndex(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		if ix.Model.Checkpoint != ckpt || ix.Model.Step != 12 || ix.Transform.Resize != 32 || ix.Transform.Crop != 28 ||
			ix.Transform.Mean != [3]float32{0.286, 0.286, 0.286} || len(ix.Classes) != 3 {
			t.Errorf("index %+v", ix)
		}
	}
}

// photoTree lays out the eight real photos as an ImageNet-style folder of
// two classes plus a truncated JPEG and a non-image, and returns the keys
// that must be dead-lettered.
func photoTree(t *testing.T) (root string, dead []string) {
	t.Helper()
	root = t.TempDir()
	photos, _ := filepath.Glob("../../testdata/photos/*.jpg")
	sort.Strings(photos)
	if len(photos) != 8 {
		t.Fatalf("want the 8 photos of testdata/photos, found %d", len(photos))
	}
	put := func(rel, src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range photos {
		put(fmt.Sprintf("%s/%s", []string{"n01", "n02"}[i%2], filepath.Base(p)), p)
	}
	put("n02/truncated.JPEG", "../../testdata/prepare/bad/truncated.JPEG")
	put("n01/random.JPEG", "../../testdata/prepare/bad/random_bytes.JPEG")
	return root, []string{"n01/random.JPEG", "n02/truncated.JPEG"}
}

// TestExtractPhotos extracts random-init and raw-pixel features of real
// photos: rows equal the backbone (or the view itself) computed directly,
// labels are the class folders' indices and the bad files are
// dead-lettered and counted.
func TestExtractPhotos(t *testing.T) {
	ctx := context.Background()
	root, wantDead := photoTree(t)
	cfg := fmnistConfig(t)
	cfg.Data.Mean, cfg.Data.Std = []float64{0.485, 0.456, 0.406}, []float64{0.229, 0.224, 0.225}
	cfg.Seed = 7
	bb, err := backbone.New("resnet18", backbone.Options{Seed: 7, Width: 0.25, SmallImageStem: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{featurefile.ModeRandomInit, featurefile.ModeRawPixels} {
		out := t.TempDir()
		sum, err := Extract(ctx, Options{Config: cfg, RandomInit: mode == featurefile.ModeRandomInit, RawPixels: mode == featurefile.ModeRawPixels,
			Source: root, Format: "imagenet", Out: out, GroupSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		wantDim := 128
		if mode == featurefile.ModeRawPixels {
			wantDim = 3 * 28 * 28
		}
		if sum.Inputs != 10 || sum.Samples != 8 || sum.DeadLetters != 2 || sum.Dim != wantDim || sum.Counters["dead_letters_decode"] != 2 || sum.Counters["features_written"] != 8 {
			t.Errorf("%s: summary %+v", mode, sum)
		}
		dim, X, labels, keys, err := LoadFeatures(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 8 {
			t.Fatalf("%s: %d keys", mode, len(keys))
		}
		for i, k := range keys {
			if want := map[string]int{"n01": 0, "n02": 1}[k[:3]]; labels[i] != want {
				t.Errorf("%s: label %d, want %d", k, labels[i], want)
			}
			data, err := os.ReadFile(filepath.Join(root, k))
			if err != nil {
				t.Fatal(err)
			}
			img, _, err := decode.Decode(data, decode.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := evalTensor(t, img, cfg)
			if mode == featurefile.ModeRandomInit {
				want = forward(t, bb, want, 28)
			}
			closeRows(t, mode+" "+k, X[i*dim:(i+1)*dim], want)
		}
		var got []string
		for _, d := range readDead(t, out) {
			if d.Stage != "decode" {
				t.Errorf("dead letter %+v: want stage decode", d)
			}
			got = append(got, d.Key)
		}
		sort.Strings(got)
		if fmt.Sprint(got) != fmt.Sprint(wantDead) {
			t.Errorf("%s: dead letters %v, want %v", mode, got, wantDead)
		}
	}
}

// TestExtractRejectsBadCheckpoints: a checkpoint that cannot serve is
// refused with an error naming the problem before anything is listed or
// written.
func TestExtractRejectsBadCheckpoints(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeIDX(t, src, 3, 3)
	cfg := fmnistConfig(t)
	resnet := trainedBackbone(t, "resnet18", 1)
	mobile := trainedBackbone(t, "mobilenet_v2", 1)
	for _, tc := range []struct {
		name  string
		setup func(dir string)
		want  []string
	}{
		{"other architecture", func(dir string) { writeCheckpoint(t, dir, mobile, "resnet18", cfg) },
			[]string{"does not fit resnet18", "missing", "layer1.0.conv1.weight"}},
		{"unknown architecture", func(dir string) { writeCheckpoint(t, dir, resnet, "resnet7", cfg) },
			[]string{`unknown architecture "resnet7"`}},
		{"missing tensor", func(dir string) {
			writeCheckpoint(t, dir, resnet, "resnet18", cfg)
			p := filepath.Join(dir, checkpoint.BackboneFile)
			f, err := safetensors.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			g := safetensors.NewFile()
			for _, n := range f.Names {
				if n != "fc.weight" && n != "layer2.0.downsample.1.running_var" {
					g.Add(n, f.Tensors[n])
				}
			}
			safetensors.WriteFile(p, g)
		}, []string{"layer2.0.downsample.1.running_var"}},
		{"no checkpoint", func(dir string) { os.MkdirAll(dir, 0o755) }, []string{"no meta.json"}},
	} {
		dir := filepath.Join(t.TempDir(), "ckpt")
		tc.setup(dir)
		out := t.TempDir()
		for _, c := range []*configs.Config{nil, cfg} {
			_, err := Extract(ctx, Options{Config: c, Checkpoint: dir, Source: src, Format: "idx", Out: out})
			if err == nil {
				t.Errorf("%s: accepted", tc.name)
				continue
			}
			for _, w := range append(tc.want, dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not say %q", tc.name, err, w)
				}
			}
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("%s: %d files written before the checkpoint was refused", tc.name, len(entries))
		}
	}
}

func TestExtractOptions(t *testing.T) {
	ctx := context.Background()
	cfg := fmnistConfig(t)
	src := t.TempDir()
	vit := fmnistConfig(t)
	vit.Model.BackboneArch, vit.Model.Width, vit.Model.SmallImageStem = "vit_tiny", 1, false
	vit.MultiViewsTransforms.GlobalCropSize = 8 // smaller than one 16 px patch
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no mode", Options{Config: cfg, Source: src, Out: src}, "exactly one"},
		{"two modes", Options{Config: cfg, RandomInit: true, RawPixels: true, Source: src, Out: src}, "exactly one"},
		{"no source", Options{Config: cfg, RawPixels: true, Out: src}, "no source"},
		{"no out", Options{Config: cfg, RawPixels: true, Source: src}, "no output"},
		{"random init without config", Options{RandomInit: true, Source: src, Out: src}, "needs a config"},
		{"view the model cannot take", Options{Config: vit, RandomInit: true, Source: src, Out: src}, "cannot take 8×8 views"},
		{"empty source", Options{Config: cfg, RawPixels: true, Source: src, Format: "imagenet", Out: t.TempDir()}, ""},
	} {
		if _, err := Extract(ctx, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
