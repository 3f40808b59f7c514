package export

import (
	"context"
	"encoding/json"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/idx"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/npy"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/nn"
	"github.com/sslight-go/sslight/trainer/ssl"
)

// python is the interpreter with Debian's numpy, onnx, cv2 and torch (the
// python3 first on PATH may have none of them).
const python = "/usr/bin/python3"

// needPython skips the test unless python imports every module.
func needPython(t *testing.T, modules ...string) {
	t.Helper()
	if err := exec.Command(python, "-c", "import "+strings.Join(modules, ", ")).Run(); err != nil {
		t.Skipf("no %s with %s (%v): this check needs them (Debian: python3-onnx, python3-opencv, python3-torch)",
			python, strings.Join(modules, ", "), err)
	}
}

// testConfig is a preset with sets applied, validated.
func testConfig(t *testing.T, preset string, sets map[string]string) *configs.Config {
	t.Helper()
	cfg, err := configs.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(sets))
	for k := range sets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := cfg.Set(k, sets[k]); err != nil {
			t.Fatalf("set %s=%s: %v", k, sets[k], err)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// randomizeBN gives BatchNorm running statistics and affines values far
// from their initial ones, so eval mode and folding are exercised.
func randomizeBN(entries []nn.Entry, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, e := range entries {
		switch {
		case strings.HasSuffix(e.Name, ".running_var"):
			for i := range e.F32 {
				e.F32[i] = float32(0.3 + rng.Float64())
			}
		case strings.HasSuffix(e.Name, ".running_mean"):
			for i := range e.F32 {
				e.F32[i] = float32(rng.NormFloat64() * 0.2)
			}
		case strings.HasSuffix(e.Name, ".num_batches_tracked"):
			*e.Count = 100
		}
	}
	// The BN affine parameters: gamma from 0.5 to 2.5 and beta around 0, so
	// that ReLU6 clips (a unit variance map rarely reaches 6).
	for _, e := range entries {
		if e.Param == nil || len(e.Shape) != 1 {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(e.Name, ".weight"), ".bias")
		if !hasEntry(entries, base+".running_mean") {
			continue
		}
		for i := range e.F32 {
			if strings.HasSuffix(e.Name, ".weight") {
				e.F32[i] = float32(0.5 + 2*rng.Float64())
			} else {
				e.F32[i] = float32(rng.NormFloat64() * 0.5)
			}
		}
	}
}

func hasEntry(entries []nn.Entry, name string) bool {
	for _, e := range entries {
		if e.Name == name {
			return true
		}
	}
	return false
}

// perturb adds noise to every float tensor of entries (a teacher that is
// not a copy of the student, a ViT whose LayerNorm affines are not 1/0).
func perturb(entries []nn.Entry, seed uint64, scale float64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	for _, e := range entries {
		if e.Count != nil || strings.HasSuffix(e.Name, "running_var") {
			continue
		}
		for i := range e.F32 {
			e.F32[i] += float32(rng.NormFloat64() * scale)
		}
	}
}

// ckpt is a synthetic checkpoint: the files the trainer writes, made from
// networks built here (backbone.StateDict, the heads' entries, a
// checkpoint.Meta).
type ckpt struct {
	dir     string
	cfg     *configs.Config
	student backbone.Backbone
	teacher backbone.Backbone  // nil for SwAV
	heads   map[string]headNet // by prefix: "student.head.", "teacher.head.", "key.head."
}

// writeCkpt builds cfg's backbone with non-trivial weights and writes a
// checkpoint folder under root; with full, checkpoint.safetensors too,
// with the heads and the teacher (DINO, MoCo).
func writeCkpt(t *testing.T, root string, cfg *configs.Config, seed uint64, full bool) *ckpt {
	t.Helper()
	ctx := context.Background()
	o := backbone.Options{Seed: seed, Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem, PatchSize: cfg.ViT.PatchSize}
	c := &ckpt{dir: checkpoint.Dir(root, 12), cfg: cfg, heads: map[string]headNet{}}
	var err error
	if c.student, err = backbone.New(cfg.Model.BackboneArch, o); err != nil {
		t.Fatal(err)
	}
	randomizeBN(c.student.Entries(), seed)
	if strings.HasPrefix(cfg.Model.BackboneArch, "vit") {
		perturb(c.student.Entries(), seed, 0.05)
	}
	state := safetensors.NewFile()
	add := func(prefix string, entries []nn.Entry) {
		for _, e := range entries {
			tt := safetensors.Tensor{DType: safetensors.F32, Shape: append([]int{}, e.Shape...)}
			if e.Count != nil {
				tt.DType, tt.I64 = safetensors.I64, []int64{*e.Count}
			} else {
				tt.F32 = append([]float32(nil), e.F32...)
			}
			if err := state.Add(prefix+e.Name, tt); err != nil {
				t.Fatal(err)
			}
		}
	}
	second := checkpoint.TeacherPrefix(cfg.SSLMethod)
	prefixes := []string{"student."}
	if second != "" && full {
		prefixes = append(prefixes, second)
		o.Seed = seed + 100
		if c.teacher, err = backbone.New(cfg.Model.BackboneArch, o); err != nil {
			t.Fatal(err)
		}
		randomizeBN(c.teacher.Entries(), seed+100)
		perturb(c.teacher.Entries(), seed+100, 0.01)
	}
	for i, p := range prefixes {
		bb := c.student
		if i == 1 {
			bb = c.teacher
		}
		h, err := newHead(cfg, p+"head.", bb.EmbedDim())
		if err != nil {
			t.Fatal(err)
		}
		randomizeBN(h.Entries(), seed+uint64(i))
		perturb(h.Entries(), seed+uint64(i)+50, 0.02)
		c.heads[p+"head."] = h
		add(p+"backbone.", bb.Entries())
		add("", h.Entries())
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeST := func(name string, f *safetensors.File) {
		if err := safetensors.WriteFile(filepath.Join(c.dir, name), f); err != nil {
			t.Fatal(err)
		}
	}
	state.Metadata = map[string]string{"format": "pt", "arch": cfg.Model.BackboneArch, "method": cfg.SSLMethod}
	if full {
		writeST(checkpoint.StateFile, state)
	}
	bf := backbone.StateDict(c.student)
	writeST(checkpoint.BackboneFile, bf)
	meta := checkpoint.Meta{Method: cfg.SSLMethod, Arch: cfg.Model.BackboneArch, Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem,
		PatchSize: cfg.ViT.PatchSize, EmbedDim: c.student.EmbedDim(), Epoch: 3, Step: 12, Epochs: 5, ItersPerEpoch: 4,
		BatchSize: cfg.Train.BatchSize, Seed: cfg.Seed, ConfigHash: cfg.Hash(), Config: cfg.CanonicalJSON(), Reason: "period"}
	if err := jsonfile.Write(ctx, filepath.Join(c.dir, checkpoint.MetaFile), meta); err != nil {
		t.Fatal(err)
	}
	return c
}

// forward runs bb in evaluation mode on x [n, 3, s, s] and returns the
// embedding and (CNNs) the last feature map.
func forward(t *testing.T, bb backbone.Backbone, x []float32, n, s int) (emb, fmap []float32) {
	t.Helper()
	g := gorgonia.NewGraph()
	xt := tensor.New(tensor.WithShape(n, 3, s, s), tensor.WithBacking(append([]float32(nil), x...)))
	in := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(n, 3, s, s), gorgonia.WithName("x"), gorgonia.WithValue(xt))
	out, err := bb.Forward(in, false)
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	emb = append([]float32(nil), out.Embedding.Value().Data().([]float32)...)
	if out.FeatureMap != nil {
		fmap = append([]float32(nil), out.FeatureMap.Value().Data().([]float32)...)
	}
	return emb, fmap
}

// headForward runs a head in evaluation mode on embeddings [n, d] and
// returns its outputs by ONNX output name.
func headForward(t *testing.T, h headNet, emb []float32, n, d int) map[string][]float32 {
	t.Helper()
	g := gorgonia.NewGraph()
	xt := tensor.New(tensor.WithShape(n, d), tensor.WithBacking(append([]float32(nil), emb...)))
	in := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(n, d), gorgonia.WithName("e"), gorgonia.WithValue(xt))
	out := map[string]*gorgonia.Node{}
	var err error
	switch h := h.(type) {
	case *ssl.DINOHead:
		out[HeadName], _, err = h.Forward(in, false)
	case *ssl.MoCoHead:
		out[HeadName], err = h.Forward(in, false)
	case *ssl.SwAVHead:
		out[ProjectionName], out[HeadName], err = h.Forward(in, false)
	}
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	res := map[string][]float32{}
	for k, v := range out {
		res[k] = append([]float32(nil), v.Value().Data().([]float32)...)
	}
	return res
}

// photos returns n of testdata/photos as evaluation views of side s,
// normalised with mean and std: [n, 3, s, s].
func photos(t *testing.T, n, s int, mean, std [3]float32) []float32 {
	t.Helper()
	paths, err := filepath.Glob("../../testdata/photos/*.jpg")
	if err != nil || len(paths) < n {
		t.Fatalf("testdata/photos: %d photos (%v), want %d", len(paths), err, n)
	}
	var out []float32
	for _, p := range paths[:n] {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		im, err := jpeg.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var src augment.Image
		if err := augment.FromStdImage(&src, im); err != nil {
			t.Fatal(err)
		}
		out = append(out, evalView(t, &src, s, mean, std)...)
	}
	return out
}

// fmnist returns the first n test images of testdata/fmnist-mini, grey
// replicated to RGB as sslight's IDX source does, as evaluation views of
// side s: [n, 3, s, s].
func fmnist(t *testing.T, n, s int, mean, std [3]float32) []float32 {
	t.Helper()
	f, err := os.Open("../../testdata/fmnist-mini/t10k-images-idx3-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ims, err := idx.ReadImages(f, "fmnist-mini")
	if err != nil {
		t.Fatal(err)
	}
	var out []float32
	for i := 0; i < n; i++ {
		src := augment.NewImage(ims.W, ims.H)
		for y := 0; y < ims.H; y++ {
			row := src.Row(y)
			for x := 0; x < ims.W; x++ {
				v := ims.Record(i)[y*ims.W+x]
				row[3*x], row[3*x+1], row[3*x+2] = v, v, v
			}
		}
		out = append(out, evalView(t, src, s, mean, std)...)
	}
	return out
}

func evalView(t *testing.T, src *augment.Image, s int, mean, std [3]float32) []float32 {
	t.Helper()
	var view augment.Image
	if err := augment.EvalTransform(&view, src, s); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 3*s*s)
	if err := augment.ToTensorNormalize(x, &view, mean, std); err != nil {
		t.Fatal(err)
	}
	return x
}

func meanStd(cfg *configs.Config) (mean, std [3]float32) {
	for i := 0; i < 3; i++ {
		mean[i], std[i] = float32(cfg.Data.Mean[i]), float32(cfg.Data.Std[i])
	}
	return mean, std
}

func writeNPY(t *testing.T, path string, shape []int, data []float32) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFloat32(f, shape, data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// pyCase is one model for python/check_onnx.py.
type pyCase struct {
	Name     string            `json:"name"`
	Model    string            `json:"model"`
	Input    string            `json:"input"`
	Expected map[string]string `json:"expected"`
	Dynamic  bool              `json:"dynamic"`
}

// pyResult is check_onnx.py's verdict on one case.
type pyResult struct {
	Name           string             `json:"name"`
	Checker        string             `json:"checker"`
	ShapeInference string             `json:"shape_inference"`
	Relative       map[string]float64 `json:"relative"`
	RelativeBatch1 map[string]float64 `json:"relative_batch1"`
	Error          string             `json:"error"`
}

// runCheck runs python/check_onnx.py over cases (one process for all).
func runCheck(t *testing.T, dir string, cases []pyCase) (map[string]pyResult, map[string]string) {
	t.Helper()
	manifest := filepath.Join(dir, "manifest.json")
	b, err := json.Marshal(map[string]any{"cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "../../python/check_onnx.py", manifest)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("check_onnx.py: %v", err)
	}
	var res struct {
		Versions map[string]string `json:"versions"`
		Cases    []pyResult        `json:"cases"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("check_onnx.py output: %v: %s", err, out)
	}
	m := map[string]pyResult{}
	for _, r := range res.Cases {
		m[r.Name] = r
	}
	return m, res.Versions
}
