package embed

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	"github.com/sslight-go/sslight/augment/decode"
	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/infra/gcsemu"
	"github.com/sslight-go/sslight/internal/beamtest"
	"github.com/sslight-go/sslight/sinks/deadletter"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// TestMain initialises Beam, as the sslight binary does before dispatching
// a sub-command.
func TestMain(m *testing.M) { beamtest.Main(m) }

// python is Debian's interpreter with numpy (the python3 first on PATH may
// lack it).
const python = "/usr/bin/python3"

// photos is the folder of real test photographs.
const photos = "../../testdata/photos"

// ckpt is a checkpoint written here: the Fashion-MNIST preset's
// quarter-width ResNet-18 (28 px views) with a student and a teacher of
// their own random weights.
type ckpt struct {
	dir              string
	cfg              *configs.Config
	student, teacher backbone.Backbone
}

// writeCkpt writes a DINO checkpoint as the trainer lays one out
// (backbone.safetensors, teacher_backbone.safetensors, meta.json), or a
// SwAV one (no teacher) when method is "SWAV".
func writeCkpt(t *testing.T, dir, method string) *ckpt {
	t.Helper()
	cfg, err := configs.Preset("dino_fmnist_sslight")
	if err != nil {
		t.Fatal(err)
	}
	c := &ckpt{dir: dir, cfg: cfg}
	build := func(seed uint64) backbone.Backbone {
		bb, err := backbone.New(cfg.Model.BackboneArch, backbone.Options{Seed: seed, Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem})
		if err != nil {
			t.Fatal(err)
		}
		// Running statistics away from 0/1, as training leaves them.
		r := rand.New(rand.NewPCG(seed, 3))
		for _, e := range backbone.BNBuffers(bb) {
			switch {
			case e.Count != nil:
				*e.Count = 10
			case strings.HasSuffix(e.Name, "running_var"):
				for j := range e.F32 {
					e.F32[j] = 0.5 + r.Float32()
				}
			default:
				for j := range e.F32 {
					e.F32[j] = 0.3 * float32(r.NormFloat64())
				}
			}
		}
		return bb
	}
	c.student = build(3)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, checkpoint.BackboneFile), backbone.StateDict(c.student)); err != nil {
		t.Fatal(err)
	}
	if method == "DINO" {
		c.teacher = build(4)
		if err := safetensors.WriteFile(filepath.Join(dir, checkpoint.TeacherBackboneFile), backbone.StateDict(c.teacher)); err != nil {
			t.Fatal(err)
		}
	}
	meta := checkpoint.Meta{Method: method, Arch: cfg.Model.BackboneArch, Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem,
		EmbedDim: c.student.EmbedDim(), Step: 7, ConfigHash: cfg.Hash(), Config: cfg.CanonicalJSON(), Reason: "final"}
	if err := jsonfile.Write(context.Background(), filepath.Join(dir, checkpoint.MetaFile), meta); err != nil {
		t.Fatal(err)
	}
	return c
}

// photoFiles are testdata/photos as they are (eight JPEGs and a README)
// plus a truncated JPEG and an empty file, by name.
func photoFiles(t *testing.T) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(photos)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(photos, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	files["corrupt.jpg"] = files["21_1_Aqua.jpg"][:600]
	files["empty.jpg"] = []byte{}
	return files
}

// unreadable are the files of photoFiles that give no embedding.
var unreadable = []string{"README.md", "corrupt.jpg", "empty.jpg"}

func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// expected computes each readable photo's embedding outside the pipeline:
// the project's decoder, torchvision's evaluation transform written out
// (augment.EvalTransform: resize 32, center crop 28; ToTensorNormalize)
// and bb in evaluation mode.
func expected(t *testing.T, files map[string][]byte, c *ckpt, bb backbone.Backbone) map[string][]float32 {
	t.Helper()
	s := c.cfg.MultiViewsTransforms.GlobalCropSize
	mean, std := c.cfg.Data.MeanStd32()
	out := map[string][]float32{}
	for name, b := range files {
		if strings.HasSuffix(name, ".md") || name == "corrupt.jpg" || name == "empty.jpg" {
			continue
		}
		var src, view augment.Image
		if _, err := decode.DecodeInto(&src, b, decode.Options{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := augment.EvalTransform(&view, &src, s); err != nil {
			t.Fatal(err)
		}
		x := make([]float32, 3*s*s)
		if err := augment.ToTensorNormalize(x, &view, mean, std); err != nil {
			t.Fatal(err)
		}
		out[name] = forward(t, bb, x, s)
		if relDiff(out[name], make([]float32, len(out[name]))) == 0 {
			t.Fatalf("%s: the test network's embedding is all zeros: the comparison would prove nothing", name)
		}
	}
	return out
}

// forward runs bb in evaluation mode on one 3×s×s view in a graph built
// here, apart from the extraction's batching.
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

// readNPYWithNumpy loads an .npy file with numpy and returns its shape,
// dtype and little-endian float32 bytes.
func readNPYWithNumpy(t *testing.T, path string) (shape []int, dtype string, data []byte) {
	t.Helper()
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skipf("no numpy for %s (%v): install python3-numpy to check embeddings.npy with numpy", python, err)
	}
	raw := filepath.Join(t.TempDir(), "raw.bin")
	script := `import json, sys, numpy as np
a = np.load(sys.argv[1])
open(sys.argv[2], "wb").write(a.astype("<f4").tobytes())
print(json.dumps({"shape": list(a.shape), "dtype": str(a.dtype)}))`
	out, err := exec.Command(python, "-c", script, path, raw).Output()
	if err != nil {
		t.Fatalf("numpy could not read %s: %v", path, err)
	}
	var info struct {
		Shape []int  `json:"shape"`
		DType string `json:"dtype"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("numpy's answer %q: %v", out, err)
	}
	data, err = os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	return info.Shape, info.DType, data
}

func float32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func relDiff(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i]-want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
	}
	return d / math.Max(m, 1e-12)
}

// TestEmbedPhotos embeds testdata/photos with a truncated and an empty
// file beside them: one embedding per readable photo, in key order, equal
// to the embedding computed outside the pipeline (read back with numpy),
// and a dead letter per unreadable file; keys.txt and index.jsonl name
// the rows; --nearest matches a float64 brute force; the teacher's
// embeddings are the teacher network's.
func TestEmbedPhotos(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	files := photoFiles(t)
	src := filepath.Join(root, "photos")
	writeTree(t, src, files)
	c := writeCkpt(t, filepath.Join(root, "ckpt"), "DINO")
	readable := len(files) - len(unreadable)

	out := filepath.Join(root, "emb")
	sum, err := Run(ctx, Options{Checkpoint: c.dir, Source: src, Out: out, Nearest: 3})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Samples != int64(readable) || sum.DeadLetters != int64(len(unreadable)) || sum.Inputs != int64(len(files)) ||
		sum.Format != "folder" || sum.Weights != "student" || sum.NearestK != 3 {
		t.Errorf("summary %+v: want %d samples, %d dead letters of %d inputs, folder, student, 3 neighbours", sum, readable, len(unreadable), len(files))
	}
	dead, err := deadletter.Read(ctx, sum.DeadLetterFile)
	if err != nil {
		t.Fatal(err)
	}
	var deadNames []string
	for _, d := range dead {
		deadNames = append(deadNames, filepath.Base(d.URI))
		if d.Stage == "" || d.Error == "" {
			t.Errorf("dead letter %+v without a stage or reason", d)
		}
	}
	sort.Strings(deadNames)
	if fmt.Sprint(deadNames) != fmt.Sprint(unreadable) {
		t.Errorf("dead letters for %v, want %v", deadNames, unreadable)
	}

	keysRaw, err := os.ReadFile(filepath.Join(out, KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	keys := strings.Split(strings.TrimSuffix(string(keysRaw), "\n"), "\n")
	if len(keys) != readable || !sort.StringsAreSorted(keys) {
		t.Fatalf("keys.txt: %q: want the %d readable photos, sorted", keys, readable)
	}
	rows, err := jsonfile.ReadLines[Row](ctx, filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r.Row != i || r.Key != keys[i] || r.URI != filepath.Join(src, keys[i]) || r.Label != nil || r.Record != nil {
			t.Errorf("index.jsonl line %d: %+v (key %s)", i, r, keys[i])
		}
	}

	shape, dtype, data := readNPYWithNumpy(t, filepath.Join(out, EmbeddingsFile))
	dim := c.student.EmbedDim()
	if fmt.Sprint(shape) != fmt.Sprint([]int{readable, dim}) || dtype != "float32" {
		t.Fatalf("numpy reads shape %v %s, want [%d %d] float32", shape, dtype, readable, dim)
	}
	x := float32s(data)
	want := expected(t, files, c, c.student)
	for i, k := range keys {
		if r := relDiff(x[i*dim:(i+1)*dim], want[k]); r > 1e-4 {
			t.Errorf("%s: embedding differs from the photo's computed outside the pipeline by %.2g", k, r)
		}
	}

	lines, err := jsonfile.ReadLines[Neighbours](ctx, filepath.Join(out, NeighboursFile))
	if err != nil {
		t.Fatal(err)
	}
	checkNeighbours(t, lines, keys, x, dim, 3)

	// The teacher: other embeddings, the teacher network's.
	tout := filepath.Join(root, "emb-teacher")
	tsum, err := Run(ctx, Options{Checkpoint: c.dir, Weights: checkpoint.Teacher, Source: src, Out: tout})
	if err != nil {
		t.Fatal(err)
	}
	if tsum.Weights != "teacher" || tsum.Neighbours != "" {
		t.Errorf("teacher summary: weights %q, neighbours %q", tsum.Weights, tsum.Neighbours)
	}
	_, _, tdata := readNPYWithNumpy(t, filepath.Join(tout, EmbeddingsFile))
	tx := float32s(tdata)
	twant := expected(t, files, c, c.teacher)
	for i, k := range keys {
		if r := relDiff(tx[i*dim:(i+1)*dim], twant[k]); r > 1e-4 {
			t.Errorf("%s: teacher embedding differs from the teacher network's by %.2g", k, r)
		}
		if r := relDiff(tx[i*dim:(i+1)*dim], x[i*dim:(i+1)*dim]); r < 1e-2 {
			t.Errorf("%s: teacher and student embeddings agree to %.2g", k, r)
		}
	}
	if _, err := os.Stat(filepath.Join(tout, NeighboursFile)); !os.IsNotExist(err) {
		t.Errorf("without --nearest, %s was written (%v)", NeighboursFile, err)
	}
}

// checkNeighbours holds neighbours.jsonl to a float64 brute force over
// the embeddings: per row, the k others of highest cosine similarity in
// order (a near-tie may swap), their similarities within 1e-5.
func checkNeighbours(t *testing.T, lines []Neighbours, keys []string, x []float32, dim, k int) {
	t.Helper()
	n := len(keys)
	if len(lines) != n {
		t.Fatalf("%d neighbour lines for %d images", len(lines), n)
	}
	norm := func(i int) float64 {
		var s float64
		for _, v := range x[i*dim : (i+1)*dim] {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s)
	}
	row := map[string]int{}
	for i, key := range keys {
		row[key] = i
	}
	for i, l := range lines {
		if l.Key != keys[i] || len(l.Neighbours) != k {
			t.Fatalf("line %d: key %s with %d neighbours, want %s with %d", i, l.Key, len(l.Neighbours), keys[i], k)
		}
		type cand struct {
			j   int
			sim float64
		}
		var all []cand
		for j := range n {
			if j == i {
				continue
			}
			var dot float64
			for c := range dim {
				dot += float64(x[i*dim+c]) * float64(x[j*dim+c])
			}
			all = append(all, cand{j, dot / (norm(i) * norm(j))})
		}
		sort.SliceStable(all, func(a, b int) bool { return all[a].sim > all[b].sim })
		for r, nb := range l.Neighbours {
			j, ok := row[nb.Key]
			if !ok || j == i {
				t.Fatalf("line %d lists %q", i, nb.Key)
			}
			if math.Abs(float64(nb.Similarity)-all[r].sim) > 1e-5 {
				t.Errorf("%s rank %d: similarity %v, brute force %v", keys[i], r, nb.Similarity, all[r].sim)
			}
			nearTie := (r > 0 && all[r-1].sim-all[r].sim < 1e-5) || (r+1 < len(all) && all[r].sim-all[r+1].sim < 1e-5)
			if j != all[r].j && !nearTie {
				t.Errorf("%s rank %d: %s, brute force %s", keys[i], r, nb.Key, keys[all[r].j])
			}
		}
	}
}

// TestEmbedGCS runs the same embedding from gs:// to gs:// on the
// in-process GCS emulator: the same rows, bit for bit, as a local run,
// and the dead letters name the objects.
func TestEmbedGCS(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	files := photoFiles(t)
	c := writeCkpt(t, filepath.Join(root, "ckpt"), "DINO")
	local := filepath.Join(root, "emb")
	writeTree(t, filepath.Join(root, "photos"), files)
	if _, err := Run(ctx, Options{Checkpoint: c.dir, Source: filepath.Join(root, "photos"), Out: local, Nearest: 2}); err != nil {
		t.Fatal(err)
	}

	emu, err := gcsemu.Start("bucket")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Stop)
	for name, b := range files {
		if err := storage.WriteFile(ctx, "gs://bucket/photos/"+name, b); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := Run(ctx, Options{Checkpoint: c.dir, Source: "gs://bucket/photos", Out: "gs://bucket/emb", Nearest: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Embeddings != "gs://bucket/emb/embeddings.npy" || sum.DeadLetters != int64(len(unreadable)) {
		t.Errorf("summary %+v", sum)
	}
	for _, f := range []string{EmbeddingsFile, KeysFile, NeighboursFile} {
		got, err := storage.ReadFile(ctx, "gs://bucket/emb/"+f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(local, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs between the gs:// and the local run", f)
		}
	}
	rows, err := jsonfile.ReadLines[Row](ctx, "gs://bucket/emb/"+IndexFile)
	if err != nil || len(rows) == 0 || !strings.HasPrefix(rows[0].URI, "gs://bucket/photos/") {
		t.Errorf("index.jsonl: %v, %v", rows, err)
	}
	dead, err := deadletter.Read(ctx, sum.DeadLetterFile)
	if err != nil || len(dead) != len(unreadable) || !strings.HasPrefix(dead[0].URI, "gs://bucket/photos/") {
		t.Errorf("dead letters %+v, %v", dead, err)
	}
}

// TestEmbedRefusesBadInput checks the refusals that come before any image
// is read: nothing is written under --out.
func TestEmbedRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dino := writeCkpt(t, filepath.Join(root, "dino"), "DINO")
	swav := writeCkpt(t, filepath.Join(root, "swav"), "SWAV")
	for _, tc := range []struct {
		name string
		o    Options
		is   error
		want string
	}{
		{"no checkpoint", Options{Source: photos}, ErrOptions, "--checkpoint"},
		{"an ONNX model", Options{Checkpoint: filepath.Join(root, "m.onnx"), Source: photos}, ErrOptions, "no ONNX runtime"},
		{"no source", Options{Checkpoint: dino.dir}, ErrOptions, "--source"},
		{"negative nearest", Options{Checkpoint: dino.dir, Source: photos, Nearest: -1}, ErrOptions, "--nearest -1"},
		{"unknown format", Options{Checkpoint: dino.dir, Source: photos, Format: "tar"}, ErrOptions, `--format "tar"`},
		{"unknown weights", Options{Checkpoint: dino.dir, Source: photos, Weights: "ema"}, ErrOptions, `weights "ema"`},
		{"SwAV has no teacher", Options{Checkpoint: swav.dir, Source: photos, Weights: checkpoint.Teacher}, checkpoint.ErrNoTeacher, "SWAV"},
		{"no checkpoint there", Options{Checkpoint: filepath.Join(root, "nothing"), Source: photos}, checkpoint.ErrUnusable, "nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "emb")
			tc.o.Out = out
			_, err := Run(ctx, tc.o)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %v naming %q", err, tc.is, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("--out was written before the refusal (%v)", err)
			}
		})
	}
	// A source none of whose files is an image.
	junk := filepath.Join(root, "junk")
	writeTree(t, junk, map[string][]byte{"a.jpg": {1, 2, 3}, "b.txt": []byte("hello")})
	if _, err := Run(ctx, Options{Checkpoint: dino.dir, Source: junk, Out: filepath.Join(root, "junk-emb")}); err == nil ||
		!strings.Contains(err.Error(), "none of the 2 inputs") || !strings.Contains(err.Error(), deadletter.FileName) {
		t.Errorf("a source without images: %v", err)
	}
}
