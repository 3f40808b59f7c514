package trainer

import (
	"github.com/sslight-go/sslight/trainer/checkpoint"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/safetensors"
)

// probeOn builds a probe over a bound embedding value of rows×dim.
func probeOn(t *testing.T, classes, dim, batch, rows int, emb []float32) *linearProbe {
	t.Helper()
	g := gorgonia.NewGraph()
	v := tensor.New(tensor.WithShape(rows, dim), tensor.WithBacking(emb))
	n := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(rows, dim), gorgonia.WithName("emb"), gorgonia.WithValue(v))
	p, err := newLinearProbe(classes, dim, batch, n, 3)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// crossEntropy is the mean softmax cross-entropy of the first batch rows
// of emb under (w, b), in float64: the test's own implementation.
func crossEntropy(w, b []float64, emb []float32, labels []int, classes, dim, batch int) float64 {
	var total float64
	for i := 0; i < batch; i++ {
		z := make([]float64, classes)
		for c := range z {
			z[c] = b[c]
			for d := 0; d < dim; d++ {
				z[c] += w[c*dim+d] * float64(emb[i*dim+d])
			}
		}
		var sum float64
		for _, v := range z {
			sum += math.Exp(v)
		}
		total += math.Log(sum) - z[labels[i]]
	}
	return total / float64(batch)
}

// TestLinearProbeGradients checks the probe's loss against a direct
// cross-entropy and its weight and bias gradients against central finite
// differences of it; the rows after the batch (other views) are ignored.
func TestLinearProbeGradients(t *testing.T) {
	const classes, dim, batch, rows = 4, 6, 5, 15
	rng := rand.New(rand.NewPCG(5, 6))
	emb := make([]float32, rows*dim)
	for i := range emb {
		emb[i] = float32(rng.NormFloat64())
	}
	labels := []int{0, 3, 1, 1, 2}
	p := probeOn(t, classes, dim, batch, rows, emb)
	if err := p.step(labels, nil); err != nil {
		t.Fatal(err)
	}
	w := make([]float64, classes*dim)
	for i, v := range p.weight.Data() {
		w[i] = float64(v)
	}
	b := make([]float64, classes)
	for i, v := range p.bias.Data() {
		b[i] = float64(v)
	}
	want := crossEntropy(w, b, emb, labels, classes, dim, batch)
	if math.Abs(p.loss-want) > 1e-6 {
		t.Errorf("loss %v, want %v", p.loss, want)
	}
	const h = 1e-4
	check := func(name string, x []float64, grad []float32) {
		for i := range x {
			x0 := x[i]
			x[i] = x0 + h
			up := crossEntropy(w, b, emb, labels, classes, dim, batch)
			x[i] = x0 - h
			down := crossEntropy(w, b, emb, labels, classes, dim, batch)
			x[i] = x0
			if fd := (up - down) / (2 * h); math.Abs(fd-float64(grad[i])) > 1e-5 {
				t.Errorf("d loss / d %s[%d] = %v, finite differences %v", name, i, grad[i], fd)
			}
		}
	}
	check("weight", w, p.opt[0].Grad)
	check("bias", b, p.opt[1].Grad)
	// torch's nn.Linear init: uniform in ±1/√dim.
	for _, v := range append(append([]float32{}, p.weight.Data()...), p.bias.Data()...) {
		if math.Abs(float64(v)) > 1/math.Sqrt(dim) {
			t.Fatalf("initial value %v outside ±1/√%d", v, dim)
		}
	}
}

// TestLinearProbeLearnsSeparableClasses runs plain gradient descent with
// the probe's gradients on embeddings whose class is the largest
// coordinate: the accuracy must reach 100 %.
func TestLinearProbeLearnsSeparableClasses(t *testing.T) {
	const classes, dim, batch = 3, 3, 30
	rng := rand.New(rand.NewPCG(1, 1))
	emb := make([]float32, batch*dim)
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = i % classes
		for d := 0; d < dim; d++ {
			emb[i*dim+d] = float32(rng.Float64())
		}
		emb[i*dim+labels[i]] += 1
	}
	p := probeOn(t, classes, dim, batch, batch, emb)
	first := 0.0
	for it := 0; it < 300; it++ {
		if err := p.step(labels, nil); err != nil {
			t.Fatal(err)
		}
		if it == 0 {
			first = p.loss
		}
		for _, o := range p.opt {
			for i := range o.Data {
				o.Data[i] -= 1.0 * o.Grad[i]
			}
		}
	}
	if p.accuracy != 1 || p.loss >= first/2 {
		t.Errorf("after 300 steps: accuracy %.2f, loss %.3f (first %.3f); want 1.00 and a halved loss", p.accuracy, p.loss, first)
	}
}

// TestJointLinearProbeRun trains DINO with TRAIN.JOINT_LINEAR_PROBE:
// metrics.jsonl carries the probe's loss and accuracy, the checkpoint
// the classifier and its optimiser state, a stopped run resumes to the
// same bytes, and labels outside NUM_CLASSES stop the run naming the
// sample.
func TestJointLinearProbeRun(t *testing.T) {
	cfg := tinyConfig(t)
	for k, v := range map[string]string{"TRAIN.JOINT_LINEAR_PROBE": "true", "TRAIN.NUM_CLASSES": "3"} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	straight, _ := checkResume(t, cfg)
	f := readCheckpoint(t, straight, 6)
	w, ok := f.Tensors["classifier.weight"]
	if !ok || len(w.Shape) != 2 || w.Shape[0] != 3 {
		t.Fatalf("checkpoint classifier.weight %+v (present %v), want [3, embed_dim]", w.Shape, ok)
	}
	if _, ok := f.Tensors["classifier.bias"]; !ok {
		t.Error("checkpoint has no classifier.bias")
	}
	var momentum bool
	for _, n := range f.Names {
		momentum = momentum || (strings.HasPrefix(n, prefixOptimizer) && strings.Contains(n, "classifier.weight"))
	}
	if !momentum {
		t.Error("the checkpoint holds no optimiser state for the classifier")
	}
	raw, err := os.ReadFile(filepath.Join(straight, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	steps, epochs := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r MetricsRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind != "step" && r.Kind != "epoch" {
			continue
		}
		if r.SupLoss == nil || r.SupAccuracy == nil || *r.SupLoss <= 0 || *r.SupAccuracy < 0 || *r.SupAccuracy > 1 {
			t.Fatalf("%s record at step %d: sup_loss %v, sup_accu %v", r.Kind, r.Step, r.SupLoss, r.SupAccuracy)
		}
		if r.Kind == "step" {
			steps++
		} else {
			epochs++
		}
	}
	if steps != 6 || epochs != 2 {
		t.Errorf("%d step and %d epoch records with the probe, want 6 and 2", steps, epochs)
	}

	// Three classes with NUM_CLASSES 2: refused from the manifest's class
	// list, before any training.
	if err := cfg.Set("TRAIN.NUM_CLASSES", "2"); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeShards(t, filepath.Join(root, "shards"), cfg, 24, 1)
	_, err = Run(context.Background(), Options{Config: cfg, Shards: []string{filepath.Join(root, "shards")}, Out: filepath.Join(root, "out")})
	if err == nil || !strings.Contains(err.Error(), "has 3 classes (a, b, c …) but TRAIN.NUM_CLASSES is 2") {
		t.Errorf("labels beyond NUM_CLASSES: err %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "out")); !os.IsNotExist(err) {
		t.Errorf("the refused run wrote its output folder: %v", err)
	}
}

// TestProbeAccuracy scores a hand-made classifier: class c wins where
// feature c is largest (bias breaks the tie of the last row).
func TestProbeAccuracy(t *testing.T) {
	dir := t.TempDir()
	f := safetensors.NewFile()
	f.Add("classifier.weight", safetensors.Tensor{DType: safetensors.F32, Shape: []int{2, 3}, F32: []float32{1, 0, 0, 0, 1, 0}})
	f.Add("classifier.bias", safetensors.Tensor{DType: safetensors.F32, Shape: []int{2}, F32: []float32{0, 0.5}})
	if err := safetensors.WriteFile(filepath.Join(dir, checkpoint.StateFile), f); err != nil {
		t.Fatal(err)
	}
	x := []float32{
		2, 0, 9, // class 0
		0, 2, 0, // class 1
		1, 1, 0, // class 1 by the bias
		1, 3, 0, // class 1, labelled 0: wrong
	}
	got, err := ProbeAccuracy(context.Background(), dir, 3, x, []int{0, 1, 1, 0})
	if err != nil || got != 75 {
		t.Errorf("ProbeAccuracy = %v, %v; want 75", got, err)
	}
	if _, err := ProbeAccuracy(context.Background(), dir, 4, make([]float32, 8), []int{0, 1}); err == nil || !strings.Contains(err.Error(), "4-dimensional") {
		t.Errorf("features of another dimension: err %v", err)
	}
	empty := t.TempDir()
	safetensors.WriteFile(filepath.Join(empty, checkpoint.StateFile), safetensors.NewFile())
	if _, err := ProbeAccuracy(context.Background(), empty, 3, x, []int{0, 1, 1, 0}); err == nil || !strings.Contains(err.Error(), "JOINT_LINEAR_PROBE") {
		t.Errorf("checkpoint without a probe: err %v", err)
	}
}

// TestNonFiniteLossCheckpointsTheStateBefore drives each method to a
// non-finite loss with an absurd learning rate: the run stops with an
// error naming the step and the learning rate, and the checkpoint it
// leaves is byte for byte the one a run stopped just before that step
// writes — including what the step changed before its loss was known
// (BatchNorm statistics and the loss state, and MoCo's key-encoder
// momentum update, which comes before the keys). (A diverging SwAV stops
// earlier, in Sinkhorn, whose scores are no longer finite.)
func TestNonFiniteLossCheckpointsTheStateBefore(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(testing.TB) *configs.Config
	}{
		{"DINO", tinyConfig},
		{"MOCO", tinyMoCoConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(t)
			if err := cfg.Set("SOLVER.BASE_LR", "1e30"); err != nil {
				t.Fatal(err)
			}
			checkNonFiniteLoss(t, cfg)
		})
	}
}

func checkNonFiniteLoss(t *testing.T, cfg *configs.Config) {
	ctx := context.Background()
	root := t.TempDir()
	shards := filepath.Join(root, "shards")
	writeShards(t, shards, cfg, 24, 1)
	diverged := filepath.Join(root, "diverged")
	_, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: diverged})
	if !errors.Is(err, ErrNonFiniteLoss) {
		t.Fatalf("err %v, want ErrNonFiniteLoss", err)
	}
	dir, meta, lerr := checkpoint.Latest(ctx, diverged)
	if lerr != nil || meta == nil {
		t.Fatalf("no checkpoint after the divergence: %v", lerr)
	}
	step := meta.Step
	if meta.Reason != "non-finite-loss" || !strings.Contains(err.Error(), fmt.Sprintf("step %d: the loss is", step)) ||
		!strings.Contains(err.Error(), "at lr ") || !strings.Contains(err.Error(), filepath.Base(dir)) {
		t.Fatalf("checkpoint %s (reason %q, step %d), error %q", dir, meta.Reason, step, err)
	}
	if step == 0 {
		t.Fatal("the first step diverged: the test needs a step that updates BatchNorm and the loss state before it")
	}
	before := filepath.Join(root, "before")
	if _, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: before, MaxSteps: step}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{checkpoint.StateFile, checkpoint.BackboneFile} {
		if !bytes.Equal(readBytes(t, filepath.Join(dir, f)), readBytes(t, filepath.Join(checkpoint.Dir(before, step), f))) {
			t.Errorf("%s after the divergence differs from the state before step %d", f, step)
		}
	}
}

// TestBadShards corrupts one of an epoch's two shards (a flipped byte:
// the CRC32C no longer matches the manifest's): a plain run stops with an
// error naming the shard; with SkipBadShards it trains on the good shard
// alone, every epoch, and lists what it skipped.
func TestBadShards(t *testing.T) {
	cfg := tinyConfig(t)
	ctx := context.Background()
	root := t.TempDir()
	shards := filepath.Join(root, "shards")
	writeShards(t, shards, cfg, 24, 1)
	files, err := filepath.Glob(filepath.Join(shards, "epoch-0000", "*.tar"))
	if err != nil || len(files) != 2 {
		t.Fatalf("shards %v (%v), want two", files, err)
	}
	victim := files[1]
	b := readBytes(t, victim)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(victim, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: filepath.Join(root, "strict")})
	if err == nil || !strings.Contains(err.Error(), filepath.Base(victim)) {
		t.Fatalf("corrupt shard without --skip-bad-shards: err %v, want one naming %s", err, victim)
	}
	sum, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: filepath.Join(root, "skip"), SkipBadShards: true})
	if err != nil {
		t.Fatal(err)
	}
	// 12 good samples of 24, batch 8: 1 of 3 iterations per epoch, 2 epochs.
	if !sum.Done || sum.Steps != 2 || len(sum.SkippedShards) != 2 {
		t.Fatalf("summary %+v: want done after 2 steps with the shard skipped in both epochs", sum)
	}
	for e, s := range sum.SkippedShards {
		if s.Epoch != e || !strings.HasSuffix(s.Shard, filepath.Base(victim)) || s.Error == "" {
			t.Errorf("skipped %+v", s)
		}
	}
	// summary.json says what ran: 1 step in each epoch, of 3 planned.
	var written map[string]any
	if err := jsonfile.Read(ctx, filepath.Join(root, "skip", "summary.json"), &written); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(written["steps_per_epoch"]) != "[1 1]" || written["iters_per_epoch"] != 3.0 {
		t.Errorf("summary.json: steps_per_epoch %v, iters_per_epoch %v; want [1 1] of 3 planned", written["steps_per_epoch"], written["iters_per_epoch"])
	}
}

// TestEveryShardBad corrupts both shards of the only prepared epoch: with
// SkipBadShards the first epoch has nothing to train on, and the run stops
// with an error saying so.
func TestEveryShardBad(t *testing.T) {
	cfg := tinyConfig(t)
	root := t.TempDir()
	shards := filepath.Join(root, "shards")
	writeShards(t, shards, cfg, 24, 1)
	files, err := filepath.Glob(filepath.Join(shards, "epoch-0000", "*.tar"))
	if err != nil || len(files) != 2 {
		t.Fatalf("shards %v (%v), want two", files, err)
	}
	for _, f := range files {
		b := readBytes(t, f)
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Run(context.Background(), Options{Config: cfg, Shards: []string{shards}, Out: filepath.Join(root, "out"), SkipBadShards: true})
	if err == nil || !strings.Contains(err.Error(), "epoch 0: --skip-bad-shards skipped 2 bad shards and left no batch to train on") {
		t.Errorf("every shard bad: err %v", err)
	}
}

// TestBadShardReportsReachTheStepLoop corrupts the shard epoch 0 reads
// second and trains with a shuffle buffer of one sample, so the loader
// hands out the good shard's batch and meets the bad shard while the step
// loop trains on it. The report reaches the summary and the progress
// through the goroutine that called Run: the loader's goroutine writes
// neither (Options.Progress need not be safe for concurrent use).
func TestBadShardReportsReachTheStepLoop(t *testing.T) {
	cfg := tinyConfig(t)
	ctx := context.Background()
	root := t.TempDir()
	shards := filepath.Join(root, "shards")
	writeShards(t, shards, cfg, 24, 1)
	roots, err := readRoots(ctx, cfg, Options{Shards: []string{shards}})
	if err != nil {
		t.Fatal(err)
	}
	victim := epochShards(roots, uint64(cfg.Seed), 0)[1].URI
	b := readBytes(t, victim)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(victim, b, 0o644); err != nil {
		t.Fatal(err)
	}
	progress := &oneGoroutineWriter{goroutine: goroutineID()}
	sum, err := Run(ctx, Options{Config: cfg, Shards: []string{shards}, Out: filepath.Join(root, "out"), SkipBadShards: true,
		ShuffleBuffer: 1, Progress: progress, Epochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Done || sum.Steps != 1 || len(sum.SkippedShards) != 1 || sum.SkippedShards[0].Shard != victim {
		t.Fatalf("summary %+v: want 1 step with %s skipped", sum, victim)
	}
	out, others := progress.written()
	if others > 0 {
		t.Errorf("%d progress writes came from another goroutine than Run's", others)
	}
	if !strings.Contains(out, "skipping bad shard "+victim) || !strings.Contains(out, "epoch 1 ran 1 of 3 iterations") {
		t.Errorf("progress %q does not report the skipped shard and the short epoch", out)
	}
}

// oneGoroutineWriter records what is written and how many writes came from
// another goroutine than the one named.
type oneGoroutineWriter struct {
	goroutine string
	mu        sync.Mutex
	buf       bytes.Buffer
	others    int
}

func (w *oneGoroutineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if goroutineID() != w.goroutine {
		w.others++
	}
	return w.buf.Write(p)
}

func (w *oneGoroutineWriter) written() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.others
}

// goroutineID is the calling goroutine's number, from the first line of
// its stack trace ("goroutine 7 [running]:").
func goroutineID() string {
	b := make([]byte, 64)
	return strings.Fields(string(b[:runtime.Stack(b, false)]))[1]
}
