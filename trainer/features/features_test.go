package features

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/sinks/featurefile"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/nn"
)

// small is a quarter-width ResNet-18 with the small-image stem, the
// Fashion-MNIST presets' backbone: fast enough for tests.
var small = Arch{Name: "resnet18", Width: 0.25, SmallImageStem: true}

// views returns n deterministic pseudo-random normalised 3×h×w views.
func views(n, h, w int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, 3*h*w)
		for j := range out[i] {
			out[i][j] = float32(r.NormFloat64())
		}
	}
	return out
}

// direct runs bb in evaluation mode on one view in a graph built here,
// independently of Model's batching: the expectation Extract is held to.
func direct(t *testing.T, bb backbone.Backbone, img []float32, h, w int) []float32 {
	t.Helper()
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 3, h, w), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(1, 3, h, w), tensor.WithBacking(append([]float32(nil), img...)))))
	out, err := bb.Forward(x, false)
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

// closeTo reports the largest difference between got and want relative to
// want's largest magnitude.
func relDiff(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i]-want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
	}
	return d / math.Max(m, 1e-12)
}

// trainBN moves a backbone's BatchNorm running statistics away from their
// initial values, as training does, so that evaluation mode is visible in
// the features.
func trainBN(bb backbone.Backbone, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 2))
	for _, e := range backbone.BNBuffers(bb) {
		switch {
		case e.Count != nil:
			*e.Count = 100
		case strings.HasSuffix(e.Name, "running_var"):
			for i := range e.F32 {
				e.F32[i] = 0.5 + r.Float32()
			}
		default:
			for i := range e.F32 {
				e.F32[i] = 0.2 * float32(r.NormFloat64())
			}
		}
	}
}

func TestExtractEqualsDirectForward(t *testing.T) {
	for _, tc := range []struct {
		arch  Arch
		h, w  int
		n, bs int
	}{
		{small, 16, 16, 7, 4}, // batches of 4, 2, 1
		{small, 12, 20, 3, 0}, // default batch, non-square views
		{Arch{Name: "mobilenet_v2", Width: 0.25, SmallImageStem: true}, 16, 16, 3, 2},
		{Arch{Name: "vit_tiny", PatchSize: 16}, 32, 32, 3, 2}, // class token after the final norm
	} {
		m, err := NewRandomInit(tc.arch, 3)
		if err != nil {
			t.Fatal(err)
		}
		trainBN(m.bb, 4)
		m.BatchSize = tc.bs
		imgs := views(tc.n, tc.h, tc.w, 5)
		got, err := m.Extract(imgs, tc.h, tc.w)
		if err != nil {
			t.Fatal(err)
		}
		d := m.Dim(tc.h, tc.w)
		if d != m.bb.EmbedDim() || len(got) != tc.n*d {
			t.Fatalf("%s: %d values, dim %d; want %d×%d", tc.arch.Name, len(got), d, tc.n, m.bb.EmbedDim())
		}
		for i, im := range imgs {
			want := direct(t, m.bb, im, tc.h, tc.w)
			if r := relDiff(got[i*d:(i+1)*d], want); r > 1e-5 {
				t.Errorf("%s %d×%d batch %d: image %d differs from a direct forward pass by %.2g (relative)", tc.arch.Name, tc.h, tc.w, tc.bs, i, r)
			}
		}
		m.Close()
	}
}

// TestExtractIndependentOfBatchAndCPUs: the rows do not depend on the batch
// they ran in nor on GOMAXPROCS (the pipeline's output must not depend on
// worker counts).
func TestExtractIndependentOfBatchAndCPUs(t *testing.T) {
	imgs := views(9, 16, 16, 7)
	var ref []float32
	for _, tc := range []struct{ bs, procs int }{{9, 2}, {4, 2}, {1, 1}, {16, 1}} {
		prev := runtime.GOMAXPROCS(tc.procs)
		m, err := NewRandomInit(small, 1)
		if err != nil {
			t.Fatal(err)
		}
		m.BatchSize = tc.bs
		got, err := m.Extract(imgs, 16, 16)
		runtime.GOMAXPROCS(prev)
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = got
			continue
		}
		// gonum's SGEMM gives the same bits whatever the batching;
		// OpenBLAS chooses its kernels by matrix size, so only closeness holds.
		exact := nn.BLAS() == "gonum"
		for i := range got {
			d := math.Abs(float64(got[i] - ref[i]))
			if (exact && d != 0) || d > 1e-5*(1+math.Abs(float64(ref[i]))) {
				t.Fatalf("batch %d, GOMAXPROCS %d (%s): value %d is %v, with batch 9 it was %v", tc.bs, tc.procs, nn.BLAS(), i, got[i], ref[i])
			}
		}
	}
}

func TestRandomInitFollowsSeed(t *testing.T) {
	imgs := views(2, 16, 16, 1)
	bb, err := backbone.New("resnet18", backbone.Options{Seed: 11, Width: 0.25, SmallImageStem: true})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewRandomInit(small, 11)
	other, _ := NewRandomInit(small, 12)
	a, _ := m.Extract(imgs, 16, 16)
	b, _ := other.Extract(imgs, 16, 16)
	if r := relDiff(a[:m.Dim(16, 16)], direct(t, bb, imgs[0], 16, 16)); r > 1e-5 {
		t.Errorf("seed 11 differs from backbone.New with seed 11 by %.2g", r)
	}
	if relDiff(a, b) < 1e-3 {
		t.Error("seeds 11 and 12 give the same features")
	}
	if info := m.Info(); info.Mode != featurefile.ModeRandomInit || info.Seed != 11 || info.Arch != "resnet18" || !info.SmallImageStem {
		t.Errorf("Info = %+v", info)
	}
}

func TestRawPixels(t *testing.T) {
	m := NewRawPixels()
	imgs := views(3, 2, 3, 9)
	got, err := m.Extract(imgs, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if m.Dim(2, 3) != 18 || len(got) != 54 {
		t.Fatalf("dim %d, %d values; want 18, 54", m.Dim(2, 3), len(got))
	}
	for i, im := range imgs {
		for j, v := range im {
			if got[i*18+j] != v {
				t.Fatalf("row %d value %d = %v, want the pixel %v", i, j, got[i*18+j], v)
			}
		}
	}
	if m.Info().Mode != featurefile.ModeRawPixels {
		t.Errorf("mode %q", m.Info().Mode)
	}
}

func TestExtractRejectsBadViews(t *testing.T) {
	m, _ := NewRandomInit(small, 1)
	for _, tc := range []struct {
		imgs [][]float32
		h, w int
		want string
	}{
		{[][]float32{make([]float32, 3*16*16), make([]float32, 5)}, 16, 16, "image 1 has 5 values"},
		{nil, 0, 16, "view size 0×16"},
	} {
		if _, err := m.Extract(tc.imgs, tc.h, tc.w); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err %v, want %q", err, tc.want)
		}
	}
}

// writeCheckpoint writes a checkpoint folder as the trainer does:
// backbone.safetensors with the backbone's state dict and meta.json.
func writeCheckpoint(t *testing.T, dir string, bb backbone.Backbone, meta checkpoint.Meta) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := backbone.StateDict(bb)
	f.Metadata["config_hash"] = meta.ConfigHash
	if err := safetensors.WriteFile(filepath.Join(dir, checkpoint.BackboneFile), f); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.MetaFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func smallMeta() checkpoint.Meta {
	return checkpoint.Meta{Method: "DINO", Arch: "resnet18", Width: 0.25, SmallImageStem: true, EmbedDim: 128,
		Step: 40, ConfigHash: "c0ffee", Config: []byte(`{}`)}
}

func TestLoadCheckpoint(t *testing.T) {
	ctx := context.Background()
	bb, err := backbone.New("resnet18", backbone.Options{Seed: 9, Width: 0.25, SmallImageStem: true})
	if err != nil {
		t.Fatal(err)
	}
	trainBN(bb, 9)
	out := t.TempDir()
	dir := filepath.Join(out, "checkpoints", "step-00000040")
	writeCheckpoint(t, dir, bb, smallMeta())
	// An older checkpoint, and an incomplete newer one without meta.json:
	// a training folder resolves to step 40.
	writeCheckpoint(t, filepath.Join(out, "checkpoints", "step-00000020"), bb, smallMeta())
	os.MkdirAll(filepath.Join(out, "checkpoints", "step-00000060"), 0o755)

	for _, path := range []string{dir, out} {
		m, err := LoadCheckpoint(ctx, path, checkpoint.Student)
		if err != nil {
			t.Fatal(err)
		}
		if m.Dir() != dir || m.Meta().Step != 40 || m.Mode() != featurefile.ModeCheckpoint {
			t.Errorf("LoadCheckpoint(%s): dir %s, meta %+v", path, m.Dir(), m.Meta())
		}
		if info := m.Info(); info.Checkpoint != dir || info.ConfigHash != "c0ffee" || info.Step != 40 || info.Arch != "resnet18" {
			t.Errorf("Info = %+v", info)
		}
		imgs := views(3, 16, 16, 2)
		got, err := m.Extract(imgs, 16, 16)
		if err != nil {
			t.Fatal(err)
		}
		for i, im := range imgs {
			if r := relDiff(got[i*128:(i+1)*128], direct(t, bb, im, 16, 16)); r > 1e-5 {
				t.Errorf("image %d: loaded model differs from the saved backbone by %.2g", i, r)
			}
		}
		c, err := m.Clone()
		if err != nil {
			t.Fatal(err)
		}
		again, _ := c.Extract(imgs, 16, 16)
		if relDiff(again, got) != 0 {
			t.Error("a clone extracts other features")
		}
	}
}

func TestLoadCheckpointRejects(t *testing.T) {
	ctx := context.Background()
	bb, err := backbone.New("resnet18", backbone.Options{Seed: 1, Width: 0.25, SmallImageStem: true})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := backbone.New("mobilenet_v2", backbone.Options{Seed: 1, Width: 0.25, SmallImageStem: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		setup func(dir string)
		want  []string
	}{
		{"no checkpoint", func(dir string) { os.MkdirAll(dir, 0o755) }, []string{"no meta.json"}},
		{"unknown arch", func(dir string) {
			m := smallMeta()
			m.Arch = "resnet9000"
			writeCheckpoint(t, dir, bb, m)
		}, []string{`unknown architecture "resnet9000"`}},
		{"other architecture's tensors", func(dir string) {
			writeCheckpoint(t, dir, mb, smallMeta()) // a MobileNetV2 file, meta says resnet18
		}, []string{"holds a mobilenet_v2 backbone", "meta.json says resnet18"}},
		{"other architecture, no arch metadata", func(dir string) {
			writeCheckpoint(t, dir, mb, smallMeta())
			f, _ := safetensors.ReadFile(filepath.Join(dir, checkpoint.BackboneFile))
			delete(f.Metadata, "arch")
			safetensors.WriteFile(filepath.Join(dir, checkpoint.BackboneFile), f)
		}, []string{"does not fit resnet18", "missing"}},
		{"missing tensor", func(dir string) {
			writeCheckpoint(t, dir, bb, smallMeta())
			f, _ := safetensors.ReadFile(filepath.Join(dir, checkpoint.BackboneFile))
			g := safetensors.NewFile()
			for _, n := range f.Names {
				if n != "layer4.1.bn2.weight" {
					g.Add(n, f.Tensors[n])
				}
			}
			g.Metadata = f.Metadata
			safetensors.WriteFile(filepath.Join(dir, checkpoint.BackboneFile), g)
		}, []string{"layer4.1.bn2.weight"}},
		{"other width", func(dir string) {
			m := smallMeta()
			m.Width, m.EmbedDim = 0.5, 0
			writeCheckpoint(t, dir, bb, m)
		}, []string{"does not fit resnet18 width 0.5", "conv1.weight"}},
		{"embed dim", func(dir string) {
			m := smallMeta()
			m.EmbedDim = 512
			writeCheckpoint(t, dir, bb, m)
		}, []string{"embed_dim 512", "has 128"}},
		{"no backbone file", func(dir string) {
			writeCheckpoint(t, dir, bb, smallMeta())
			os.Remove(filepath.Join(dir, checkpoint.BackboneFile))
		}, []string{"backbone.safetensors"}},
		{"corrupt meta", func(dir string) {
			writeCheckpoint(t, dir, bb, smallMeta())
			os.WriteFile(filepath.Join(dir, checkpoint.MetaFile), []byte(`{"arch": 5}`), 0o644)
		}, []string{"meta.json"}},
	} {
		dir := filepath.Join(t.TempDir(), "ckpt")
		tc.setup(dir)
		_, err := LoadCheckpoint(ctx, dir, "")
		if err == nil || !errors.Is(err, ErrCheckpoint) {
			t.Errorf("%s: err %v, want ErrCheckpoint", tc.name, err)
			continue
		}
		for _, w := range append(tc.want, dir) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
}

// TestCloseReleasesGraphs checks that a closed Model's graphs (all of a
// batch's activations) are freed by the next garbage collection, however
// many times they were rebuilt: gorgonia's tape machine carries a
// finalizer, which used to keep each dead graph alive for an extra cycle
// (a 60,000-image extraction that rebuilt graphs per part peaked at
// 14.7 GB for 2 GB of live graphs).
func TestCloseReleasesGraphs(t *testing.T) {
	m, err := NewRandomInit(Arch{Name: "resnet18", Width: 0.25, SmallImageStem: true}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 64 views of 56 px: tens of MB even with the activations sharing
	// buffers (nn.ShareBuffers).
	m.BatchSize = 64
	imgs := views(64, 56, 56, 1)
	live := func(cycles int) int64 {
		for range cycles {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	base := live(2)
	if _, err := m.Extract(imgs, 56, 56); err != nil {
		t.Fatal(err)
	}
	open := live(2) - base // one compiled graph with its activations
	if open < 8<<20 {
		t.Fatalf("an open 64-image graph holds %d bytes; the test expects tens of MB of activations", open)
	}
	for round := 0; round < 4; round++ {
		m.Close()
		if _, err := m.Extract(imgs, 56, 56); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()
	// One cycle: what survives it is pinned, not merely finalizable.
	if left := live(1) - base; left > open/4 {
		t.Errorf("5 graphs of %d MB compiled and closed: %d MB still live after a garbage collection", open>>20, left>>20)
	}
}
