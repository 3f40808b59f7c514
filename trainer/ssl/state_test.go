package ssl

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestConfigErrors(t *testing.T) {
	temps := []float64{0.04}
	dino := DINOConfig{GlobalCrops: 2, LocalCrops: 6, Lambdas: [2]float64{0.4, 0.6}, StudentTemp: 0.1,
		TeacherTemps: temps, CenterMomentum: 0.9, OutDim: 8}
	swav := SwAVConfig{GlobalCrops: 2, LocalCrops: 6, Lambdas: [2]float64{0.4, 0.6}, CropsForAssign: []int{0, 1},
		Temperature: 0.1, Epsilon: 0.05, SinkhornIterations: 3}
	moco := MoCoConfig{GlobalCrops: 2, LocalCrops: 6, Lambdas: [2]float64{0.4, 0.6}, Dim: 4, QueueLength: 8, Temperature: 0.2}
	for _, tc := range []struct {
		name string
		new  func() error
	}{
		{"dino no local views without GLOBAL_ONLY", func() error { c := dino; c.LocalCrops = 0; _, err := NewDINOLoss(c); return err }},
		{"dino one global view global only", func() error { c := dino; c.GlobalCrops, c.GlobalOnly = 1, true; _, err := NewDINOLoss(c); return err }},
		{"dino zero student temp", func() error { c := dino; c.StudentTemp = 0; _, err := NewDINOLoss(c); return err }},
		{"dino empty schedule", func() error { c := dino; c.TeacherTemps = nil; _, err := NewDINOLoss(c); return err }},
		{"dino negative teacher temp", func() error { c := dino; c.TeacherTemps = []float64{-1}; _, err := NewDINOLoss(c); return err }},
		{"swav crop out of range", func() error { c := swav; c.CropsForAssign = []int{0, 8}; _, err := NewSwAVLoss(c); return err }},
		{"swav no local pairs", func() error { c := swav; c.LocalCrops = 0; _, err := NewSwAVLoss(c); return err }},
		{"swav empty assign", func() error { c := swav; c.CropsForAssign = nil; _, err := NewSwAVLoss(c); return err }},
		{"moco one global view", func() error { c := moco; c.GlobalCrops = 1; _, err := NewMoCoLoss(c); return err }},
		{"moco no local views", func() error { c := moco; c.LocalCrops = 0; _, err := NewMoCoLoss(c); return err }},
		{"moco zero temperature", func() error { c := moco; c.Temperature = 0; _, err := NewMoCoLoss(c); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.new(); !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v, want ErrConfig", err)
			}
		})
	}
}

func TestApplyShapeErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	m := func(r, c int) *gorgonia.Node { return gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(r, c)) }
	dino, _ := NewDINOLoss(DINOConfig{GlobalCrops: 2, LocalCrops: 2, Lambdas: [2]float64{0.4, 0.6}, StudentTemp: 0.1,
		TeacherTemps: []float64{0.04}, CenterMomentum: 0.9, OutDim: 8})
	if _, err := dino.Apply(m(12, 8), m(4, 8)); !errors.Is(err, ErrShape) {
		t.Errorf("dino rows: %v", err)
	}
	if _, err := dino.Apply(m(8, 7), m(4, 7)); !errors.Is(err, ErrShape) {
		t.Errorf("dino width: %v", err)
	}
	moco, _ := NewMoCoLoss(MoCoConfig{GlobalCrops: 2, LocalCrops: 2, Lambdas: [2]float64{0.4, 0.6}, Dim: 4, QueueLength: 6, Temperature: 0.2})
	if _, err := moco.Apply(m(12, 4), m(4, 4)); !errors.Is(err, ErrShape) {
		t.Errorf("moco queue not a multiple of the batch: %v", err)
	}
	swav, _ := NewSwAVLoss(SwAVConfig{GlobalCrops: 2, LocalCrops: 2, Lambdas: [2]float64{0.4, 0.6}, CropsForAssign: []int{0, 1},
		Temperature: 0.1, Epsilon: 0.05, SinkhornIterations: 3})
	if _, err := swav.Apply(m(8, 5), m(8, 3), m(5, 4)); !errors.Is(err, ErrShape) {
		t.Errorf("swav prototypes: %v", err)
	}
}

// TestDINOStepsAndCenter runs one graph for three steps and checks the
// center EMA and the epoch's temperature against the formulas.
func TestDINOStepsAndCenter(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const b, d = 2, 5
	loss, err := NewDINOLoss(DINOConfig{GlobalCrops: 2, LocalCrops: 1, Lambdas: [2]float64{0.4, 0.6}, StudentTemp: 0.1,
		TeacherTemps: []float64{0.04, 0.07}, CenterMomentum: 0.9, OutDim: d})
	if err != nil {
		t.Fatal(err)
	}
	if err := loss.SetEpoch(2); err == nil {
		t.Error("SetEpoch past the schedule: no error")
	}
	if err := loss.SetEpoch(1); err != nil {
		t.Fatal(err)
	}
	g := gorgonia.NewGraph()
	s := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(3*b, d), gorgonia.WithName("s"))
	te := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2*b, d), gorgonia.WithName("t"))
	l, err := loss.Apply(s, te)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gorgonia.Grad(l, s); err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	want := make([]float64, d)
	for step := 0; step < 3; step++ {
		tv := randMatrix(rng, -1, 1, 2*b, d)
		if err := gorgonia.Let(s, randMatrix(rng, -1, 1, 3*b, d)); err != nil {
			t.Fatal(err)
		}
		if err := gorgonia.Let(te, tv); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		for j := range want {
			var m float64
			for r := 0; r < 2*b; r++ {
				m += float64(tv.Float32s()[r*d+j])
			}
			want[j] = want[j]*0.9 + m/float64(2*b)*0.1
		}
		for j, c := range loss.State().Center {
			if math.Abs(float64(c)-want[j]) > 1e-6 {
				t.Fatalf("step %d: center[%d] = %v, want %v", step, j, c, want[j])
			}
		}
		if got := loss.Last().TeacherTemp; got != 0.07 {
			t.Fatalf("teacher temperature %v, want 0.07", got)
		}
	}
	if err := loss.LoadState(DINOState{Center: make([]float32, d+1)}); !errors.Is(err, ErrShape) {
		t.Errorf("LoadState with a wrong size: %v", err)
	}
}

// TestSwAVQueueLifecycle follows a queue of two batches from empty: it is
// not used until its last row is filled, it holds the newest embeddings
// first, and once used the codes are Sinkhorn over the old queue's scores
// followed by the batch's.
func TestSwAVQueueLifecycle(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const b, k, e, nv = 2, 4, 3, 3
	loss, err := NewSwAVLoss(SwAVConfig{GlobalCrops: 2, LocalCrops: 1, Lambdas: [2]float64{0.4, 0.6},
		CropsForAssign: []int{0, 1}, Temperature: 0.1, Epsilon: 0.05, SinkhornIterations: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := loss.StartQueue(2*b, e); err != nil {
		t.Fatal(err)
	}
	w := randMatrix(rng, -0.5, 0.5, k, e)
	for step, wantUse := range []bool{false, false, true} {
		before := loss.State()
		emb := randMatrix(rng, -0.5, 0.5, nv*b, e)
		out := randMatrix(rng, -1, 1, nv*b, k)
		graphRun(t, []*tensor.Dense{out, emb, w}, []bool{true, false, false},
			func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1], in[2]) })
		after := loss.State()
		if after.UseQueue != wantUse {
			t.Fatalf("step %d: use_the_queue %v, want %v", step, after.UseQueue, wantUse)
		}
		for i, crop := range []int{0, 1} {
			q := after.Queue[i*2*b*e : (i+1)*2*b*e]
			old := before.Queue[i*2*b*e : (i+1)*2*b*e]
			for j := 0; j < b*e; j++ {
				if q[j] != emb.Float32s()[crop*b*e+j] || q[b*e+j] != old[j] {
					t.Fatalf("step %d crop %d: queue not shifted by one batch", step, crop)
				}
			}
			// Independent codes from the exported Sinkhorn.
			rows := b
			var scores []float32
			if wantUse {
				rows += 2 * b
				for r := 0; r < 2*b; r++ {
					for j := 0; j < k; j++ {
						scores = append(scores, float32(dot32(old[r*e:(r+1)*e], w.Float32s()[j*e:(j+1)*e])))
					}
				}
			}
			scores = append(scores, out.Float32s()[crop*b*k:(crop+1)*b*k]...)
			codes := make([]float32, len(scores))
			if err := Sinkhorn(codes, scores, rows, k, 0.05, 3); err != nil {
				t.Fatal(err)
			}
			got := loss.Assignments()[i*b*k : (i+1)*b*k]
			for j, v := range codes[(rows-b)*k:] {
				if math.Abs(float64(v-got[j])) > 1e-5 {
					t.Fatalf("step %d crop %d: code %d = %v, want %v", step, crop, j, got[j], v)
				}
			}
		}
	}
	loss.StartEpoch()
	if loss.State().UseQueue {
		t.Error("StartEpoch kept use_the_queue")
	}
}

func TestMoCoQueuePointer(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const b, c, kq = 2, 3, 6
	loss, err := NewMoCoLoss(MoCoConfig{GlobalCrops: 2, LocalCrops: 1, Lambdas: [2]float64{0.4, 0.6}, Dim: c,
		QueueLength: kq, Temperature: 0.2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The initial queue's columns are unit vectors.
	q0 := loss.State().Queue
	for j := 0; j < kq; j++ {
		var s float64
		for r := 0; r < c; r++ {
			s += float64(q0[r*kq+j]) * float64(q0[r*kq+j])
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("initial queue column %d has norm² %v", j, s)
		}
	}
	for step, wantPtr := range []int{2, 4, 0, 2} {
		k := randMatrix(rng, -1, 1, b, c)
		ptr := loss.State().Ptr
		graphRun(t, []*tensor.Dense{randMatrix(rng, -1, 1, 2*b, c), k}, []bool{true, false},
			func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1]) })
		st := loss.State()
		if st.Ptr != wantPtr {
			t.Fatalf("step %d: ptr %d, want %d", step, st.Ptr, wantPtr)
		}
		for r := 0; r < b; r++ {
			kr := k.Float32s()[r*c : (r+1)*c]
			n := math.Sqrt(dot32(kr, kr))
			for j := 0; j < c; j++ {
				if got, want := float64(st.Queue[j*kq+ptr+r]), float64(kr[j])/n; math.Abs(got-want) > 1e-6 {
					t.Fatalf("step %d: queue[%d, %d] = %v, want %v", step, j, ptr+r, got, want)
				}
			}
		}
	}
	if err := loss.LoadState(MoCoState{Queue: make([]float32, c*kq), Ptr: kq}); !errors.Is(err, ErrShape) {
		t.Errorf("LoadState with the pointer out of range: %v", err)
	}
}

// TestLossInsideGraph checks that a loss composes with upstream and
// downstream gorgonia ops: output = embedding·Wᵀ feeds SwAV, the loss is
// scaled by 3, and the gradient reaching W is 3·(d loss/d output)ᵀ·embedding.
func TestLossInsideGraph(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	const b, k, e, nv = 2, 4, 3, 3
	loss, err := NewSwAVLoss(SwAVConfig{GlobalCrops: 2, LocalCrops: 1, Lambdas: [2]float64{0.4, 0.6},
		CropsForAssign: []int{0, 1}, Temperature: 0.1, Epsilon: 0.05, SinkhornIterations: 3})
	if err != nil {
		t.Fatal(err)
	}
	embV, wV := randMatrix(rng, -0.5, 0.5, nv*b, e), randMatrix(rng, -0.5, 0.5, k, e)
	g := gorgonia.NewGraph()
	emb := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(nv*b, e), gorgonia.WithValue(embV), gorgonia.WithName("emb"))
	w := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(k, e), gorgonia.WithValue(wV), gorgonia.WithName("w"))
	out := gorgonia.Must(gorgonia.Mul(emb, gorgonia.Must(gorgonia.Transpose(w))))
	l, err := loss.Apply(out, emb, w)
	if err != nil {
		t.Fatal(err)
	}
	cost := gorgonia.Must(gorgonia.Mul(l, gorgonia.NewConstant(float32(3))))
	grads, err := gorgonia.Grad(cost, w)
	if err != nil {
		t.Fatal(err)
	}
	var outV gorgonia.Value
	gorgonia.Read(out, &outV)
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	// d loss / d output from a separate loss with the same state.
	ref, _ := NewSwAVLoss(loss.cfg)
	_, dOut := graphRun(t, []*tensor.Dense{outV.(*tensor.Dense).Clone().(*tensor.Dense), embV, wV}, []bool{true, false, false},
		func(in []*gorgonia.Node) (*gorgonia.Node, error) { return ref.Apply(in[0], in[1], in[2]) })
	gw := grads[0].Value().Data().([]float32)
	for i := 0; i < k; i++ {
		for j := 0; j < e; j++ {
			var want float64
			for r := 0; r < nv*b; r++ {
				want += 3 * float64(dOut[0][r*k+i]) * float64(embV.Float32s()[r*e+j])
			}
			if math.Abs(float64(gw[i*e+j])-want) > 1e-5 {
				t.Fatalf("dW[%d, %d] = %v, want %v", i, j, gw[i*e+j], want)
			}
		}
	}
}

// TestDINOWorkerCountInvariant checks that splitting rows over goroutines
// does not change a single bit of the loss, gradient or center.
func TestDINOWorkerCountInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	const b, d = 5, 1024 // wide enough to be split
	s := randMatrix(rng, -1, 1, 8*b, d).Float32s()
	te := randMatrix(rng, -1, 1, 2*b, d).Float32s()
	run := func(procs int) (float64, []float32, []float32) {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		loss, err := NewDINOLoss(DINOConfig{GlobalCrops: 2, LocalCrops: 6, Lambdas: [2]float64{0.4, 0.6}, StudentTemp: 0.1,
			TeacherTemps: []float64{0.04}, CenterMomentum: 0.9, OutDim: d})
		if err != nil {
			t.Fatal(err)
		}
		grad := make([]float32, len(s))
		v := loss.compute(s, te, grad, b, d)
		return v, grad, loss.State().Center
	}
	l1, g1, c1 := run(1)
	l4, g4, c4 := run(4)
	if l1 != l4 {
		t.Errorf("loss %v with 1 worker, %v with 4", l1, l4)
	}
	for i := range g1 {
		if g1[i] != g4[i] {
			t.Fatalf("grad[%d] %v with 1 worker, %v with 4", i, g1[i], g4[i])
		}
	}
	for i := range c1 {
		if c1[i] != c4[i] {
			t.Fatalf("center[%d] %v with 1 worker, %v with 4", i, c1[i], c4[i])
		}
	}
}

func TestMoCoLoadedPointerOverrun(t *testing.T) {
	loss, err := NewMoCoLoss(MoCoConfig{GlobalCrops: 2, LocalCrops: 1, Lambdas: [2]float64{0.4, 0.6}, Dim: 2,
		QueueLength: 4, Temperature: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	st := loss.State()
	st.Ptr = 3
	if err := loss.LoadState(st); err != nil {
		t.Fatal(err)
	}
	g := gorgonia.NewGraph()
	q := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(4, 2), gorgonia.WithInit(gorgonia.Ones()))
	k := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2, 2), gorgonia.WithInit(gorgonia.Ones()))
	if _, err := loss.Apply(q, k); err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err == nil {
		t.Fatal("pointer 3 with batch 2 in a queue of 4: no error")
	}
}
