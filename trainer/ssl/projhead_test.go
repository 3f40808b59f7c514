package ssl

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/trainer/nn"
)

// loadHeadWeights copies golden weights into the head's state dict by
// torch name and fails unless every float tensor of each side is matched.
func loadHeadWeights(t *testing.T, ci int, entries []nn.Entry, weights map[string][]float32) {
	t.Helper()
	loaded := 0
	for _, e := range entries {
		if e.F32 == nil {
			continue
		}
		w, ok := weights[e.Name]
		if !ok || len(w) != len(e.F32) {
			t.Fatalf("case %d: tensor %s %v missing or mis-shaped in the golden file", ci, e.Name, e.Shape)
		}
		copy(e.F32, w)
		loaded++
	}
	if loaded != len(weights) {
		t.Fatalf("case %d: loaded %d tensors, golden has %d", ci, loaded, len(weights))
	}
}

// matrixInput is an input node holding v as [r, c].
func matrixInput(g *gorgonia.ExprGraph, name string, r, c int, v []float32) *gorgonia.Node {
	return gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(r, c), gorgonia.WithName(name),
		gorgonia.WithValue(tensor.New(tensor.WithShape(r, c), tensor.WithBacking(append([]float32(nil), v...)))))
}

// headClose compares got with torch's values at float32 tolerance.
func headClose(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 2e-5+1e-4*math.Abs(float64(want[i])) {
			t.Errorf("%s[%d]: %g, torch %g", what, i, got[i], want[i])
			return
		}
	}
}

func gradOf(t *testing.T, n *gorgonia.Node) []float32 {
	t.Helper()
	v, err := n.Grad()
	if err != nil {
		t.Fatal(err)
	}
	return v.Data().([]float32)
}

// TestSwAVHeadMatchesTorch loads torch 1.13 weights (testdata/
// gen_swav_head.py: 2 layers with BN, 3 without, 1 layer), normalises the
// prototypes as the SwAV trainer does before each step, runs the head in
// train mode and compares the normalised prototypes, the embedding, the
// scores, the gradients of Σ emb·r_emb + Σ scores·r_scores with respect to
// the input, the prototypes and the first linear's weight, and the BN's
// running mean.
func TestSwAVHeadMatchesTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/swav_head.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		UseBN          bool                 `json:"use_bn"`
		Layers         int                  `json:"layers"`
		Dims           [4]int               `json:"dims"`
		N              int                  `json:"n"`
		Weights        map[string][]float32 `json:"weights"`
		NormProtos     []float32            `json:"normalized_prototypes"`
		X              []float32            `json:"x"`
		REmb           []float32            `json:"r_emb"`
		RScores        []float32            `json:"r_scores"`
		Embedding      []float32            `json:"embedding"`
		Scores         []float32            `json:"scores"`
		GradX          []float32            `json:"grad_x"`
		GradPrototypes []float32            `json:"grad_prototypes"`
		GradFirst      []float32            `json:"grad_first_weight"`
		RunningMean1   []float32            `json:"running_mean_1"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no cases in the golden file")
	}
	for ci, c := range cases {
		in, hidden, out, k := c.Dims[0], c.Dims[1], c.Dims[2], c.Dims[3]
		h, err := NewSwAVHead("", SwAVHeadConfig{InDim: in, HiddenDim: hidden, OutDim: out, Layers: c.Layers, UseBN: c.UseBN, Prototypes: k}, 4)
		if err != nil {
			t.Fatal(err)
		}
		loadHeadWeights(t, ci, h.Entries(), c.Weights)
		h.NormalizePrototypes()
		headClose(t, "normalized prototypes", h.Prototypes.Data(), c.NormProtos)

		g := gorgonia.NewGraph()
		x := matrixInput(g, "x", c.N, in, c.X)
		emb, scores, err := h.Forward(x, true)
		if err != nil {
			t.Fatal(err)
		}
		rEmb, rScores := matrixInput(g, "r_emb", c.N, out, c.REmb), matrixInput(g, "r_scores", c.N, k, c.RScores)
		cost := gorgonia.Must(gorgonia.Add(
			gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(emb, rEmb)))),
			gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(scores, rScores))))))
		first := h.proj.linears[0].Weight.Node(g)
		protos := h.Prototypes.Node(g)
		if _, err := gorgonia.Grad(cost, x, protos, first); err != nil {
			t.Fatal(err)
		}
		vm := gorgonia.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		headClose(t, "embedding", emb.Value().Data().([]float32), c.Embedding)
		headClose(t, "scores", scores.Value().Data().([]float32), c.Scores)
		headClose(t, "d/dx", gradOf(t, x), c.GradX)
		headClose(t, "d/dprototypes", gradOf(t, protos), c.GradPrototypes)
		headClose(t, "d/dfirst linear weight", gradOf(t, first), c.GradFirst)
		if len(c.RunningMean1) > 0 {
			headClose(t, "projection.mlp.1.running_mean", h.proj.norms[0].Stats.Mean, c.RunningMean1)
		}
		vm.Close()
		if last := h.Params()[len(h.Params())-1]; last != h.Prototypes {
			t.Errorf("case %d: the last parameter is %s, want the prototypes (torch's order)", ci, last.Name)
		}
	}
}

// TestMoCoHeadMatchesTorch loads torch 1.13 weights (testdata/
// gen_moco_head.py: 2 layers without BN, 3 with, 1 layer), runs the head in
// train mode and compares the projection, its L2 normalisation (as
// MOCO.forward and MoCoLoss apply it), the gradients of Σ q·r with respect
// to the input, the first linear's weight and the last bias, and the BN's
// running mean.
func TestMoCoHeadMatchesTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/moco_head.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		UseBN        bool                 `json:"use_bn"`
		Layers       int                  `json:"layers"`
		Dims         [3]int               `json:"dims"`
		N            int                  `json:"n"`
		Weights      map[string][]float32 `json:"weights"`
		X, R, Q      []float32
		QNormalized  []float32 `json:"q_normalized"`
		GradX        []float32 `json:"grad_x"`
		GradFirst    []float32 `json:"grad_first_weight"`
		GradLastBias []float32 `json:"grad_last_bias"`
		RunningMean1 []float32 `json:"running_mean_1"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no cases in the golden file")
	}
	for ci, c := range cases {
		in, hidden, out := c.Dims[0], c.Dims[1], c.Dims[2]
		h, err := NewMoCoHead("", MoCoHeadConfig{InDim: in, HiddenDim: hidden, OutDim: out, Layers: c.Layers, UseBN: c.UseBN}, 4)
		if err != nil {
			t.Fatal(err)
		}
		loadHeadWeights(t, ci, h.Entries(), c.Weights)
		g := gorgonia.NewGraph()
		x := matrixInput(g, "x", c.N, in, c.X)
		q, err := h.Forward(x, true)
		if err != nil {
			t.Fatal(err)
		}
		qn, err := nn.L2NormalizeOp(q)
		if err != nil {
			t.Fatal(err)
		}
		cost := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(q, matrixInput(g, "r", c.N, out, c.R)))))
		lins := h.proj.linears
		first, lastBias := lins[0].Weight.Node(g), lins[len(lins)-1].Bias.Node(g)
		if _, err := gorgonia.Grad(cost, x, first, lastBias); err != nil {
			t.Fatal(err)
		}
		vm := gorgonia.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		headClose(t, "q", q.Value().Data().([]float32), c.Q)
		headClose(t, "normalize(q)", qn.Value().Data().([]float32), c.QNormalized)
		headClose(t, "d/dx", gradOf(t, x), c.GradX)
		headClose(t, "d/dfirst linear weight", gradOf(t, first), c.GradFirst)
		headClose(t, "d/dlast bias", gradOf(t, lastBias), c.GradLastBias)
		if len(c.RunningMean1) > 0 {
			headClose(t, "mlp.1.running_mean", h.proj.norms[0].Stats.Mean, c.RunningMean1)
		}
		vm.Close()
	}
}

// TestProjectionNamesAndInit checks torch's state-dict names for every
// depth (a one-layer MLP is a bare nn.Linear: mlp.weight) and each head's
// initialisation: the SwAV model's N(0, 0.01²) for every linear, MOCOHead's
// truncated normal(0.02), zero biases, BN weight 1.
func TestProjectionNamesAndInit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers int
		bn     bool
		want   []string
	}{
		{"1 layer", 1, true, []string{"mlp.weight", "mlp.bias"}},
		{"2 layers BN", 2, true, []string{"mlp.0.weight", "mlp.0.bias", "mlp.1.weight", "mlp.1.bias", "mlp.1.running_mean",
			"mlp.1.running_var", "mlp.1.num_batches_tracked", "mlp.3.weight", "mlp.3.bias"}},
		{"3 layers", 3, false, []string{"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias", "mlp.4.weight", "mlp.4.bias"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMoCoHead("head.", MoCoHeadConfig{InDim: 64, HiddenDim: 256, OutDim: 128, Layers: tc.layers, UseBN: tc.bn}, 1)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range m.Entries() {
				got = append(got, strings.TrimPrefix(e.Name, "head."))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("MoCo names %v, want %v", got, tc.want)
			}
			s, err := NewSwAVHead("head.", SwAVHeadConfig{InDim: 64, HiddenDim: 256, OutDim: 128, Layers: tc.layers, UseBN: tc.bn, Prototypes: 300}, 1)
			if err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			for _, e := range s.Entries() {
				got = append(got, strings.TrimPrefix(e.Name, "head.projection."))
			}
			if want := append(append([]string{}, tc.want...), "head.prototypes.weight"); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("SwAV names %v, want %v", got, want)
			}
			// Initialisation: the sample std of the weights (tens of
			// thousands of draws) within 5% of the reference's.
			for _, p := range s.Params() {
				checkInit(t, p, 0.01)
			}
			for _, p := range m.Params() {
				checkInit(t, p, 0.02)
			}
		})
	}
}

// checkInit: 2-d weights have zero mean and std ≈ std (a truncated normal
// at ±2 with std 0.02 is indistinguishable from a normal); 1-d biases are
// 0 and BN weights 1.
func checkInit(t *testing.T, p *nn.Param, std float64) {
	t.Helper()
	d := p.Data()
	if p.Value.Dims() == 1 {
		want := float32(0)
		if strings.HasSuffix(p.Name, ".weight") {
			want = 1 // BatchNorm1d weight
		}
		for _, v := range d {
			if v != want {
				t.Errorf("%s holds %g, want %g", p.Name, v, want)
				return
			}
		}
		return
	}
	var s, s2 float64
	for _, v := range d {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	n := float64(len(d))
	mean, sd := s/n, math.Sqrt(s2/n-(s/n)*(s/n))
	if math.Abs(mean) > 4*std/math.Sqrt(n) || math.Abs(sd-std) > 0.05*std {
		t.Errorf("%s: mean %g, std %g, want 0 and %g", p.Name, mean, sd, std)
	}
}

// TestHeadLossGradientsCompose checks that a head's graph and a loss op
// compose as the trainer builds them: the gradients of every head
// parameter and of the input, back-propagated through the loss node, equal
// those of Σ output·G where G = d loss / d output is taken from the loss
// alone on a constant copy of the output. For SwAV this also proves that
// the embedding and prototypes fed to the loss as non-differentiable
// inputs (the reference's detach and no_grad) add no gradient.
func TestHeadLossGradientsCompose(t *testing.T) {
	const n, in, hidden, out, k = 6, 5, 7, 4, 9 // n = 3 views × 2 samples
	rng := rand.New(rand.NewPCG(11, 0))
	x := make([]float32, n*in)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	keys := make([]float32, 2*out)
	for i := range keys {
		keys[i] = float32(rng.NormFloat64())
	}
	swavCfg := SwAVConfig{GlobalCrops: 2, LocalCrops: 1, Lambdas: [2]float64{0.4, 0.6}, CropsForAssign: []int{0, 1},
		Temperature: 0.1, Epsilon: 0.05, SinkhornIterations: 3}
	mocoCfg := MoCoConfig{GlobalCrops: 2, LocalCrops: 2, Lambdas: [2]float64{0.4, 0.6}, Dim: out, QueueLength: 8, Temperature: 0.2, Seed: 3}

	type build func(g *gorgonia.ExprGraph, x *gorgonia.Node) (output, cost *gorgonia.Node, params []*nn.Param)
	for _, tc := range []struct {
		name     string
		withLoss build // head → loss
		lossOnly func(g *gorgonia.ExprGraph, output *gorgonia.Node) *gorgonia.Node
		outCols  int
	}{
		{"SwAV", func(g *gorgonia.ExprGraph, x *gorgonia.Node) (*gorgonia.Node, *gorgonia.Node, []*nn.Param) {
			h, err := NewSwAVHead("", SwAVHeadConfig{InDim: in, HiddenDim: hidden, OutDim: out, Layers: 2, UseBN: true, Prototypes: k}, 2)
			if err != nil {
				t.Fatal(err)
			}
			emb, scores, err := h.Forward(x, true)
			if err != nil {
				t.Fatal(err)
			}
			l, _ := NewSwAVLoss(swavCfg)
			cost, err := l.Apply(scores, emb, h.Prototypes.Node(g))
			if err != nil {
				t.Fatal(err)
			}
			return scores, cost, h.Params()
		}, func(g *gorgonia.ExprGraph, output *gorgonia.Node) *gorgonia.Node {
			// The loss needs the embedding and prototypes only for the queue,
			// which is off here.
			l, _ := NewSwAVLoss(swavCfg)
			return gorgonia.Must(l.Apply(output, matrixInput(g, "emb", n, out, make([]float32, n*out)),
				matrixInput(g, "protos", k, out, make([]float32, k*out))))
		}, k},
		{"MoCo", func(g *gorgonia.ExprGraph, x *gorgonia.Node) (*gorgonia.Node, *gorgonia.Node, []*nn.Param) {
			h, err := NewMoCoHead("", MoCoHeadConfig{InDim: in, HiddenDim: hidden, OutDim: out, Layers: 2, UseBN: true}, 2)
			if err != nil {
				t.Fatal(err)
			}
			q, err := h.Forward(x, true)
			if err != nil {
				t.Fatal(err)
			}
			l, _ := NewMoCoLoss(mocoCfg)
			cost, err := l.Apply(q, matrixInput(g, "k", 2, out, keys))
			if err != nil {
				t.Fatal(err)
			}
			return q, cost, h.Params()
		}, func(g *gorgonia.ExprGraph, output *gorgonia.Node) *gorgonia.Node {
			l, _ := NewMoCoLoss(mocoCfg)
			return gorgonia.Must(l.Apply(output, matrixInput(g, "k", 2, out, keys)))
		}, out},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// 1. Head and loss in one graph.
			g := gorgonia.NewGraph()
			xn := matrixInput(g, "x", n, in, x)
			output, cost, params := tc.withLoss(g, xn)
			wrt := []*gorgonia.Node{xn}
			for _, p := range params {
				wrt = append(wrt, p.Node(g))
			}
			if _, err := gorgonia.Grad(cost, wrt...); err != nil {
				t.Fatal(err)
			}
			vm := gorgonia.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			outVal := append([]float32(nil), output.Value().Data().([]float32)...)

			// 2. d loss / d output from the loss alone.
			g2 := gorgonia.NewGraph()
			o2 := matrixInput(g2, "out", n, tc.outCols, outVal)
			c2 := tc.lossOnly(g2, o2)
			if _, err := gorgonia.Grad(c2, o2); err != nil {
				t.Fatal(err)
			}
			vm2 := gorgonia.NewTapeMachine(g2)
			defer vm2.Close()
			if err := vm2.RunAll(); err != nil {
				t.Fatal(err)
			}
			if a, b := cost.Value().Data().(float32), c2.Value().Data().(float32); a != b {
				t.Fatalf("loss %g in the head's graph, %g on its output alone", a, b)
			}
			dOut := gradOf(t, o2)

			// 3. The head alone with cost Σ output·G: a fresh head built the
			// same way (same seed, so the same weights).
			g3 := gorgonia.NewGraph()
			x3 := matrixInput(g3, "x", n, in, x)
			out3, _, params3 := tc.withLoss(g3, x3)
			lin := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(out3, matrixInput(g3, "G", n, tc.outCols, dOut)))))
			wrt3 := []*gorgonia.Node{x3}
			for _, p := range params3 {
				wrt3 = append(wrt3, p.Node(g3))
			}
			if _, err := gorgonia.Grad(lin, wrt3...); err != nil {
				t.Fatal(err)
			}
			vm3 := gorgonia.NewTapeMachine(g3)
			defer vm3.Close()
			if err := vm3.RunAll(); err != nil {
				t.Fatal(err)
			}
			for i := range wrt {
				name := "x"
				if i > 0 {
					name = params[i-1].Name
				}
				headClose(t, "d loss/d "+name, gradOf(t, wrt[i]), gradOf(t, wrt3[i]))
			}
		})
	}
}
