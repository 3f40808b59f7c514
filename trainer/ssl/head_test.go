package ssl

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestDINOHeadMatchesTorch runs the head on weights and inputs taken from
// torch 1.13 (testdata/gen_dino_head.py) in train mode and compares the
// logits, the gradients with respect to the input, the last layer's
// direction and gain and the first linear's weight, and the BatchNorm's
// updated running mean.
func TestDINOHeadMatchesTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/dino_head.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		UseBN         bool                 `json:"use_bn"`
		NormLastLayer bool                 `json:"norm_last_layer"`
		Dims          [4]int               `json:"dims"`
		N             int                  `json:"n"`
		Weights       map[string][]float32 `json:"weights"`
		X, R, Y       []float32
		GradX         []float32 `json:"grad_x"`
		GradV         []float32 `json:"grad_v"`
		GradG         []float32 `json:"grad_g"`
		GradW0        []float32 `json:"grad_mlp0_weight"`
		RunningMean1  []float32 `json:"running_mean_1"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for ci, c := range cases {
		h, err := NewDINOHead("", DINOHeadConfig{InDim: c.Dims[0], HiddenDim: c.Dims[1], BottleneckDim: c.Dims[2], OutDim: c.Dims[3],
			Layers: 3, UseBN: c.UseBN, NormLastLayer: c.NormLastLayer}, 9)
		if err != nil {
			t.Fatal(err)
		}
		loaded := 0
		for _, e := range h.Entries() {
			w, ok := c.Weights[e.Name]
			if e.F32 == nil {
				continue
			}
			if !ok || len(w) != len(e.F32) {
				t.Fatalf("case %d: weight %s %v missing or mis-shaped in the golden file", ci, e.Name, e.Shape)
			}
			copy(e.F32, w)
			loaded++
		}
		if loaded != len(c.Weights) {
			t.Fatalf("case %d: loaded %d tensors, golden has %d", ci, loaded, len(c.Weights))
		}
		g := gorgonia.NewGraph()
		x := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(c.N, c.Dims[0]), gorgonia.WithName("x"),
			gorgonia.WithValue(tensor.New(tensor.WithShape(c.N, c.Dims[0]), tensor.WithBacking(c.X))))
		r := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(c.N, c.Dims[3]), gorgonia.WithName("r"),
			gorgonia.WithValue(tensor.New(tensor.WithShape(c.N, c.Dims[3]), tensor.WithBacking(c.R))))
		y, _, err := h.Forward(x, true)
		if err != nil {
			t.Fatal(err)
		}
		loss := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(y, r))))
		wrt := gorgonia.Nodes{x, h.V.Node(g), h.G.Node(g), h.linears[0].Weight.Node(g)}
		if _, err := gorgonia.Grad(loss, wrt...); err != nil {
			t.Fatal(err)
		}
		vm := gorgonia.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		check := func(what string, got, want []float32) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("case %d %s: %d values, want %d", ci, what, len(got), len(want))
			}
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 2e-5+1e-4*math.Abs(float64(want[i])) {
					t.Errorf("case %d %s[%d]: %g, torch %g", ci, what, i, got[i], want[i])
					return
				}
			}
		}
		grad := func(n *gorgonia.Node) []float32 {
			v, err := n.Grad()
			if err != nil {
				t.Fatal(err)
			}
			return v.Data().([]float32)
		}
		check("logits", y.Value().Data().([]float32), c.Y)
		check("d/dx", grad(x), c.GradX)
		check("d/dweight_v", grad(wrt[1]), c.GradV)
		check("d/dweight_g", grad(wrt[2]), c.GradG)
		check("d/dmlp.0.weight", grad(wrt[3]), c.GradW0)
		if c.UseBN {
			check("mlp.1.running_mean", h.norms[0].Stats.Mean, c.RunningMean1)
		}
		vm.Close()
		if got, want := len(h.Params()), len(h.AllParams())-btoi(c.NormLastLayer); got != want {
			t.Errorf("case %d: %d trainable params, want %d", ci, got, want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
