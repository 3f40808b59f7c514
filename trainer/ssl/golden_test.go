package ssl

import (
	"encoding/json"
	"fmt"
	"github.com/sslight-go/sslight/internal/goldencase"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The golden harness replays every case of the loss kinds under the losses
// golden directory through the gorgonia ops (input nodes → loss op →
// gorgonia.Grad → TapeMachine) and compares the loss, the updated state and
// every gradient with the case's tolerance (|got−want| ≤ abs + rel·|want|,
// per_output overrides). The expectations come from the PyTorch reference
// (see /work/shared/golden/README.md, losses/). The directory defaults to
// testdata/golden/losses at the repository root; SSLIGHT_GOLDEN_DIR=<dir>
// reads <dir>/losses instead (held-back cases). Kinds that trainer/optim
// checks are skipped by name; any other kind fails, and so does a case with
// a config or expected field the harness does not know.

var (
	lossKinds = map[string]func(*testing.T, goldenCase){
		"dino_loss":     checkDINOCase,
		"swav_sinkhorn": checkSinkhornCase,
		"swav_loss":     checkSwAVCase,
		"moco_loss":     checkMoCoCase,
	}
	optimKinds = map[string]bool{
		"cosine_schedule": true, "multistep_schedule": true, "teacher_temp_schedule": true,
		"lars_step": true, "adamw_step": true, "ema_update": true,
	}
)

type goldenCase struct {
	file      string
	Kind      string                     `json:"kind"`
	Config    json.RawMessage            `json:"config"`
	Inputs    map[string]json.RawMessage `json:"inputs"`
	Expected  map[string]json.RawMessage `json:"expected"`
	Tolerance tolerance                  `json:"tolerance"`
}

// decodeStrict decodes raw into v and fails on fields v does not have.

// The case format is shared with the other golden harnesses.
type (
	goldenArray = goldencase.Array
	tolerance   = goldencase.Tolerance
)

func (c goldenCase) input(t *testing.T, name string, v any) {
	t.Helper()
	raw, ok := c.Inputs[name]
	if !ok {
		t.Fatalf("inputs.%s missing", name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("inputs.%s: %v", name, err)
	}
}

// expect decodes expected[name] into v; it reports whether it was there.
func (c goldenCase) expect(t *testing.T, name string, v any) bool {
	t.Helper()
	raw, ok := c.Expected[name]
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("expected.%s: %v", name, err)
	}
	return true
}

// onlyExpected fails on expected fields outside known.
func (c goldenCase) onlyExpected(t *testing.T, known ...string) {
	t.Helper()
	for name := range c.Expected {
		found := false
		for _, k := range known {
			found = found || k == name
		}
		if !found {
			t.Errorf("expected.%s is not checked by this harness", name)
		}
	}
}

func closeTo(got, want float64, tl tolerance) bool {
	return math.Abs(got-want) <= tl.Abs+tl.Rel*math.Abs(want)
}

// compare checks got against the expected array name with its tolerance.
func (c goldenCase) compare(t *testing.T, name string, got []float32) {
	t.Helper()
	var want goldenArray
	if !c.expect(t, name, &want) {
		t.Errorf("expected.%s missing", name)
		return
	}
	w := want.Float32s(t, "expected."+name)
	if len(got) != len(w) {
		t.Errorf("%s: %d values, want %d", name, len(got), len(w))
		return
	}
	tl := c.Tolerance.For(name)
	bad, worst, at := 0, 0.0, -1
	var margin float64 // largest |got−want| as a fraction of the allowance
	for i := range w {
		if a := tl.Abs + tl.Rel*math.Abs(float64(w[i])); a > 0 {
			margin = math.Max(margin, math.Abs(float64(got[i])-float64(w[i]))/a)
		}
		if !closeTo(float64(got[i]), float64(w[i]), tl) {
			bad++
			if d := math.Abs(float64(got[i]) - float64(w[i])); d > worst {
				worst, at = d, i
			}
		}
	}
	t.Logf("%s: worst difference %.3f of the tolerance", name, margin)
	if bad > 0 {
		t.Errorf("%s: %d of %d values off; worst at %d: got %v, want %v (abs %g rel %g)",
			name, bad, len(w), at, got[at], w[at], tl.Abs, tl.Rel)
	}
}

func (c goldenCase) compareScalar(t *testing.T, name string, got float32) {
	t.Helper()
	c.compare(t, name, []float32{got})
}

func loadGoldenCases(t *testing.T) []goldenCase {
	t.Helper()
	dir := goldencase.Dir("losses")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden cases in %s", dir)
	}
	sort.Strings(files)
	cases := make([]goldenCase, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c goldenCase
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c.file = filepath.Base(f)
		cases = append(cases, c)
	}
	return cases
}

func TestGoldenLosses(t *testing.T) {
	checked := 0
	for _, c := range loadGoldenCases(t) {
		check, ok := lossKinds[c.Kind]
		switch {
		case ok:
			checked++
			t.Run(strings.TrimSuffix(c.file, ".json"), func(t *testing.T) { check(t, c) })
		case optimKinds[c.Kind]:
			// trainer/optim replays these.
		default:
			t.Errorf("%s: unknown kind %q", c.file, c.Kind)
		}
	}
	if checked == 0 {
		t.Fatal("no loss cases found")
	}
	t.Logf("golden losses: %d cases checked", checked)
}

// graphRun builds input nodes for vals, applies build, differentiates the
// loss w.r.t. the inputs flagged in wrt, runs one TapeMachine pass and
// returns the loss and the gradients (nil where not asked for).
func graphRun(t *testing.T, vals []*tensor.Dense, wrt []bool,
	build func(in []*gorgonia.Node) (*gorgonia.Node, error)) (float32, [][]float32) {
	t.Helper()
	g := gorgonia.NewGraph()
	nodes := make([]*gorgonia.Node, len(vals))
	var diff gorgonia.Nodes
	for i, v := range vals {
		nodes[i] = gorgonia.NewTensor(g, tensor.Float32, v.Dims(), gorgonia.WithShape(v.Shape()...),
			gorgonia.WithName(fmt.Sprintf("in%d", i)), gorgonia.WithValue(v))
		if wrt[i] {
			diff = append(diff, nodes[i])
		}
	}
	loss, err := build(nodes)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	grads, err := gorgonia.Grad(loss, diff...)
	if err != nil {
		t.Fatalf("Grad: %v", err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("run: %v", err)
	}
	lv, err := scalar32(loss.Value())
	if err != nil {
		t.Fatalf("loss value: %v", err)
	}
	out := make([][]float32, len(vals))
	gi := 0
	for i := range vals {
		if !wrt[i] {
			continue
		}
		out[i] = append([]float32(nil), grads[gi].Value().Data().([]float32)...)
		gi++
	}
	return lv, out
}

func dense(t *testing.T, a *goldenArray, what string) *tensor.Dense {
	t.Helper()
	return tensor.New(tensor.WithShape(a.Shape...), tensor.WithBacking(a.Float32s(t, what)))
}

type dinoGoldenConfig struct {
	NMBCrops              [2]int       `json:"NMB_CROPS"`
	Lambdas               [2]float64   `json:"LAMBDAS"`
	GlobalOnly            bool         `json:"GLOBAL_ONLY"`
	BatchSize             int          `json:"batch_size"`
	OutDim                int          `json:"out_dim"`
	StudentTemp           float64      `json:"student_temp"`
	WarmupTeacherTemp     float64      `json:"warmup_teacher_temp"`
	TeacherTemp           float64      `json:"teacher_temp"`
	WarmupTeacherTempEps  int          `json:"warmup_teacher_temp_epochs"`
	NEpochs               int          `json:"nepochs"`
	Epoch                 int          `json:"epoch"`
	CenterMomentum        float64      `json:"center_momentum"`
	WorldSize             int          `json:"world_size"`
	TeacherTempScheduleIn *goldenArray `json:"teacher_temp_schedule"`
}

func checkDINOCase(t *testing.T, c goldenCase) {
	var cfg dinoGoldenConfig
	goldencase.DecodeStrict(t, "config", c.Config, &cfg)
	if cfg.WorldSize != 1 {
		t.Fatalf("world_size %d: only single-process cases are supported", cfg.WorldSize)
	}
	c.onlyExpected(t, "loss", "center_after", "grad_student_output", "global_term", "local_term", "teacher_temp_used")
	// The schedule comes from trainer/optim, as in the trainer; the case's
	// own copy is an independent check of it.
	temps, err := optim.TeacherTempSchedule(cfg.WarmupTeacherTemp, cfg.TeacherTemp, cfg.WarmupTeacherTempEps, cfg.NEpochs)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.TeacherTempScheduleIn; s != nil {
		if len(s.Data) != len(temps) {
			t.Fatalf("teacher_temp_schedule has %d epochs, optim gives %d", len(s.Data), len(temps))
		}
		for i, v := range s.Data {
			if math.Abs(v-temps[i]) > 1e-12 {
				t.Errorf("teacher_temp_schedule[%d] = %v, optim gives %v", i, v, temps[i])
			}
		}
	}
	loss, err := NewDINOLoss(DINOConfig{
		GlobalCrops: cfg.NMBCrops[0], LocalCrops: cfg.NMBCrops[1], Lambdas: cfg.Lambdas,
		GlobalOnly: cfg.GlobalOnly, StudentTemp: cfg.StudentTemp, TeacherTemps: temps,
		CenterMomentum: cfg.CenterMomentum, OutDim: cfg.OutDim,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := loss.SetEpoch(cfg.Epoch); err != nil {
		t.Fatal(err)
	}
	var student, teacher, center goldenArray
	c.input(t, "student_output", &student)
	c.input(t, "teacher_output", &teacher)
	c.input(t, "center", &center)
	if err := loss.LoadState(DINOState{Center: center.Float32s(t, "center")}); err != nil {
		t.Fatal(err)
	}
	got, grads := graphRun(t, []*tensor.Dense{dense(t, &student, "student"), dense(t, &teacher, "teacher")},
		[]bool{true, false}, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1]) })
	c.compareScalar(t, "loss", got)
	c.compare(t, "grad_student_output", grads[0])
	c.compare(t, "center_after", loss.State().Center)
	terms := loss.Last()
	c.compareScalar(t, "global_term", terms.Global)
	if _, ok := c.Expected["local_term"]; ok {
		c.compareScalar(t, "local_term", terms.Local)
	}
	var temp float64
	if c.expect(t, "teacher_temp_used", &temp) && math.Abs(temp-terms.TeacherTemp) > 1e-12 {
		t.Errorf("teacher_temp_used %v, want %v", terms.TeacherTemp, temp)
	}
}

type sinkhornGoldenConfig struct {
	Epsilon    float64 `json:"epsilon"`
	Iterations int     `json:"sinkhorn_iterations"`
	WorldSize  int     `json:"world_size"`
}

func checkSinkhornCase(t *testing.T, c goldenCase) {
	var cfg sinkhornGoldenConfig
	goldencase.DecodeStrict(t, "config", c.Config, &cfg)
	if cfg.WorldSize != 1 {
		t.Fatalf("world_size %d: only single-process cases are supported", cfg.WorldSize)
	}
	c.onlyExpected(t, "Q")
	var scores goldenArray
	c.input(t, "scores", &scores)
	if len(scores.Shape) != 2 {
		t.Fatalf("scores shape %v", scores.Shape)
	}
	got := make([]float32, len(scores.Data))
	if err := Sinkhorn(got, scores.Float32s(t, "scores"), scores.Shape[0], scores.Shape[1], cfg.Epsilon, cfg.Iterations); err != nil {
		t.Fatal(err)
	}
	c.compare(t, "Q", got)
}

type swavGoldenConfig struct {
	NMBCrops       [2]int     `json:"NMB_CROPS"`
	Lambdas        [2]float64 `json:"LAMBDAS"`
	CropsForAssign []int      `json:"CROPS_FOR_ASSIGN"`
	BatchSize      int        `json:"batch_size"`
	NmbPrototypes  int        `json:"nmb_prototypes"`
	OutputDim      int        `json:"output_dim"`
	Temperature    float64    `json:"temperature"`
	Epsilon        float64    `json:"epsilon"`
	Iterations     int        `json:"sinkhorn_iterations"`
	WorldSize      int        `json:"world_size"`
	QueueLength    int        `json:"queue_length"`
}

func checkSwAVCase(t *testing.T, c goldenCase) {
	var cfg swavGoldenConfig
	goldencase.DecodeStrict(t, "config", c.Config, &cfg)
	if cfg.WorldSize != 1 {
		t.Fatalf("world_size %d: only single-process cases are supported", cfg.WorldSize)
	}
	c.onlyExpected(t, "loss", "grad_output", "assignments", "queue_after", "use_the_queue")
	loss, err := NewSwAVLoss(SwAVConfig{
		GlobalCrops: cfg.NMBCrops[0], LocalCrops: cfg.NMBCrops[1], Lambdas: cfg.Lambdas,
		CropsForAssign: cfg.CropsForAssign, Temperature: cfg.Temperature,
		Epsilon: cfg.Epsilon, SinkhornIterations: cfg.Iterations,
	})
	if err != nil {
		t.Fatal(err)
	}
	var output, embedding, protos goldenArray
	var queue *goldenArray
	var useQueue bool
	c.input(t, "output", &output)
	c.input(t, "embedding", &embedding)
	c.input(t, "prototypes_weight", &protos)
	c.input(t, "queue", &queue)
	c.input(t, "use_the_queue", &useQueue)
	st := SwAVState{UseQueue: useQueue}
	if queue != nil {
		if len(queue.Shape) != 3 || queue.Shape[0] != len(cfg.CropsForAssign) {
			t.Fatalf("queue shape %v", queue.Shape)
		}
		st.Queue, st.QueueLength, st.EmbeddingDim = queue.Float32s(t, "queue"), queue.Shape[1], queue.Shape[2]
	}
	if err := loss.LoadState(st); err != nil {
		t.Fatal(err)
	}
	got, grads := graphRun(t,
		[]*tensor.Dense{dense(t, &output, "output"), dense(t, &embedding, "embedding"), dense(t, &protos, "prototypes")},
		[]bool{true, false, false},
		func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1], in[2]) })
	c.compareScalar(t, "loss", got)
	c.compare(t, "grad_output", grads[0])
	c.compare(t, "assignments", loss.Assignments())
	after := loss.State()
	var wantQueue *goldenArray
	c.expect(t, "queue_after", &wantQueue)
	switch {
	case wantQueue == nil && after.Queue != nil:
		t.Errorf("queue_after: got a queue, want none")
	case wantQueue != nil:
		c.compare(t, "queue_after", after.Queue)
	}
	var wantUse bool
	if !c.expect(t, "use_the_queue", &wantUse) {
		t.Errorf("expected.use_the_queue missing")
	} else if after.UseQueue != wantUse {
		t.Errorf("use_the_queue %v, want %v", after.UseQueue, wantUse)
	}
}

type mocoGoldenConfig struct {
	NMBCrops      [2]int     `json:"NMB_CROPS"`
	Lambdas       [2]float64 `json:"LAMBDAS"`
	GlobalOnly    bool       `json:"GLOBAL_ONLY"`
	BatchSize     int        `json:"batch_size"`
	Dim           int        `json:"dim"`
	QueueLength   int        `json:"queue_length"`
	Temperature   float64    `json:"temperature"`
	NumQueryViews int        `json:"num_query_views"`
	WorldSize     int        `json:"world_size"`
}

func checkMoCoCase(t *testing.T, c goldenCase) {
	var cfg mocoGoldenConfig
	goldencase.DecodeStrict(t, "config", c.Config, &cfg)
	if cfg.WorldSize != 1 {
		t.Fatalf("world_size %d: only single-process cases are supported", cfg.WorldSize)
	}
	c.onlyExpected(t, "q", "k", "logits", "labels", "loss", "grad_q", "grad_q_raw", "queue_after", "queue_ptr_after")
	loss, err := NewMoCoLoss(MoCoConfig{
		GlobalCrops: cfg.NMBCrops[0], LocalCrops: cfg.NMBCrops[1], Lambdas: cfg.Lambdas,
		GlobalOnly: cfg.GlobalOnly, Dim: cfg.Dim, QueueLength: cfg.QueueLength, Temperature: cfg.Temperature,
	})
	if err != nil {
		t.Fatal(err)
	}
	if loss.QueryViews() != cfg.NumQueryViews {
		t.Fatalf("loss expects %d query views, case has %d", loss.QueryViews(), cfg.NumQueryViews)
	}
	loss.Record = true
	var qRaw, kRaw, queue goldenArray
	var ptr int
	c.input(t, "q_raw", &qRaw)
	c.input(t, "k_raw", &kRaw)
	c.input(t, "queue", &queue)
	c.input(t, "queue_ptr", &ptr)
	if err := loss.LoadState(MoCoState{Queue: queue.Float32s(t, "queue"), Ptr: ptr}); err != nil {
		t.Fatal(err)
	}
	got, grads := graphRun(t, []*tensor.Dense{dense(t, &qRaw, "q_raw"), dense(t, &kRaw, "k_raw")}, []bool{true, false},
		func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1]) })
	rec := loss.Recorded()
	c.compareScalar(t, "loss", got)
	c.compare(t, "grad_q_raw", grads[0])
	c.compare(t, "grad_q", rec.GradQ)
	c.compare(t, "q", rec.Q)
	c.compare(t, "k", rec.K)
	c.compare(t, "logits", rec.Logits)
	var labels goldenArray
	if c.expect(t, "labels", &labels) {
		if len(labels.Data) != len(rec.Q)/cfg.Dim {
			t.Errorf("labels: %d, want one per query row (%d)", len(labels.Data), len(rec.Q)/cfg.Dim)
		}
		for i, v := range labels.Data {
			if v != 0 {
				t.Errorf("labels[%d] = %v: the positive is always column 0", i, v)
			}
		}
	}
	after := loss.State()
	c.compare(t, "queue_after", after.Queue)
	var wantPtr int
	if !c.expect(t, "queue_ptr_after", &wantPtr) {
		t.Errorf("expected.queue_ptr_after missing")
	} else if after.Ptr != wantPtr {
		t.Errorf("queue_ptr_after %d, want %d", after.Ptr, wantPtr)
	}
}
