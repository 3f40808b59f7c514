package backbone

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/nn"
)

func randInput(seed uint64, shape ...int) *tensor.Dense {
	rng := rand.New(rand.NewPCG(seed, 1))
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	for i, d := 0, t.Float32s(); i < len(d); i++ {
		d[i] = float32(rng.NormFloat64())
	}
	return t
}

func inputNode(g *gorgonia.ExprGraph, name string, v *tensor.Dense) *gorgonia.Node {
	return gorgonia.NewTensor(g, tensor.Float32, v.Dims(), gorgonia.WithShape(v.Shape()...), gorgonia.WithName(name), gorgonia.WithValue(v))
}

// embed runs one eval-mode forward pass and returns a copy of the embedding.
func embed(t *testing.T, b Backbone, x *tensor.Dense) []float32 {
	t.Helper()
	g := gorgonia.NewGraph()
	out, err := b.Forward(inputNode(g, "x", x), false)
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

// TestStateDictRoundTrip saves a backbone through the safetensors encoder,
// loads it strictly into a differently initialised one and expects the
// same embedding bit for bit.
func TestStateDictRoundTrip(t *testing.T) {
	tests := []struct {
		arch  string
		patch int
		size  int
		dim   int
	}{
		{"resnet18", 0, 32, 512},
		{"resnet50", 0, 32, 2048},
		{"mobilenet_v2", 0, 32, 1280},
		{"vit_tiny", 16, 48, 192},
		{"vit_tiny", 32, 64, 192},
		{"vit_small", 16, 32, 384},
	}
	for _, tc := range tests {
		arch := fmt.Sprintf("%s/%d", tc.arch, tc.patch)
		a, err := New(tc.arch, Options{Seed: 1, Classifier: true, PatchSize: tc.patch})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := New(tc.arch, Options{Seed: 2, Classifier: true, PatchSize: tc.patch})
		if a.EmbedDim() != tc.dim {
			t.Errorf("%s: EmbedDim %d, want %d", arch, a.EmbedDim(), tc.dim)
		}
		x := randInput(3, 2, 3, tc.size, tc.size)
		want := embed(t, a, x)
		if len(want) != 2*tc.dim {
			t.Fatalf("%s: embedding has %d values, want %d", arch, len(want), 2*tc.dim)
		}
		if got := embed(t, b, x); fmt.Sprint(got) == fmt.Sprint(want) {
			t.Fatalf("%s: differently seeded backbones agree; the test would prove nothing", arch)
		}
		var buf bytes.Buffer
		if err := safetensors.Encode(&buf, StateDict(a)); err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.Decode(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if err := LoadStateDict(b, f); err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		got := embed(t, b, x)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: embedding[%d] = %g after the round trip, want %g", arch, i, got[i], want[i])
			}
		}
	}
}

func TestLoadStateDictIsStrict(t *testing.T) {
	b, _ := New("resnet18", Options{Classifier: true})
	good := StateDict(b)
	f := safetensors.NewFile()
	for _, name := range good.Names {
		tn := good.Tensors[name]
		switch name {
		case "layer1.0.bn1.running_var": // missing
			continue
		case "layer2.0.conv1.weight": // mis-shaped
			tn = safetensors.Tensor{DType: safetensors.F32, Shape: []int{1}, F32: []float32{0}}
		}
		if err := f.Add(name, tn); err != nil {
			t.Fatal(err)
		}
	}
	_ = f.Add("head.weight", safetensors.Tensor{DType: safetensors.F32, Shape: []int{1}, F32: []float32{0}})
	before := b.Entries()[0].F32[0]
	err := LoadStateDict(b, f)
	var me *safetensors.MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v, want a MismatchError", err)
	}
	if fmt.Sprint(me.Missing) != "[layer1.0.bn1.running_var]" || fmt.Sprint(me.Unexpected) != "[head.weight]" ||
		len(me.Misshaped) != 1 {
		t.Errorf("mismatch %+v", me)
	}
	if b.Entries()[0].F32[0] != before {
		t.Error("a failed strict load changed the weights")
	}
	// Without the classifier the torchvision file has two unexpected tensors.
	nc, _ := New("resnet18", Options{})
	if err := LoadStateDict(nc, good); !errors.As(err, &me) || fmt.Sprint(me.Unexpected) != "[fc.weight fc.bias]" {
		t.Errorf("loading fc into a backbone without classifier: %v", err)
	}
}

func TestStateDictNamesFollowTorchvision(t *testing.T) {
	tests := []struct {
		arch  string
		first []string
		count int // torchvision / DINO state-dict length
	}{
		{"resnet18", []string{"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "layer1.0.conv1.weight"}, 122},
		{"resnet50", []string{"conv1.weight"}, 320},
		{"mobilenet_v2", []string{"features.0.0.weight", "features.0.1.weight", "features.0.1.bias", "features.0.1.running_mean", "features.0.1.running_var", "features.0.1.num_batches_tracked", "features.1.conv.0.0.weight", "features.1.conv.0.1.weight"}, 314},
		{"vit_tiny", []string{"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.norm1.weight"}, 150},
	}
	for _, tc := range tests {
		b, _ := New(tc.arch, Options{Classifier: true})
		e := b.Entries()
		if len(e) != tc.count {
			t.Errorf("%s: %d entries, want %d", tc.arch, len(e), tc.count)
		}
		for i, n := range tc.first {
			if e[i].Name != n {
				t.Errorf("%s: entry %d is %s, want %s", tc.arch, i, e[i].Name, n)
			}
		}
	}
	m, _ := New("mobilenet_v2", Options{})
	names := map[string]bool{}
	for _, e := range m.Entries() {
		names[e.Name] = true
	}
	for _, n := range []string{"features.1.conv.1.weight", "features.1.conv.2.running_var", "features.2.conv.1.0.weight",
		"features.2.conv.2.weight", "features.2.conv.3.bias", "features.17.conv.3.num_batches_tracked", "features.18.0.weight", "features.18.1.bias"} {
		if !names[n] {
			t.Errorf("mobilenet_v2 lacks %s", n)
		}
	}
}

// lossGraph builds sum_v sum(embedding_v * r_v) over views of the given
// sizes through one backbone in one graph, with gradients for every
// parameter.
func lossGraph(t *testing.T, b Backbone, train bool, sizes ...int) (*gorgonia.ExprGraph, *gorgonia.Node, gorgonia.Nodes) {
	t.Helper()
	g := gorgonia.NewGraph()
	var loss *gorgonia.Node
	for i, size := range sizes {
		x := inputNode(g, fmt.Sprintf("view%d", i), randInput(uint64(10+i), 2, 3, size, size))
		out, err := b.Forward(x, train)
		if err != nil {
			t.Fatal(err)
		}
		r := inputNode(g, fmt.Sprintf("r%d", i), randInput(uint64(20+i), out.Embedding.Shape()...))
		term := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(out.Embedding, r))))
		if loss == nil {
			loss = term
		} else {
			loss = gorgonia.Must(gorgonia.Add(loss, term))
		}
	}
	params := b.Params()
	wrt := make(gorgonia.Nodes, len(params))
	for i, p := range params {
		wrt[i] = p.Node(g)
	}
	if _, err := gorgonia.Grad(loss, wrt...); err != nil {
		t.Fatal(err)
	}
	return g, loss, wrt
}

// TestTrainStepMultiView runs two views of different sizes through one
// backbone in training mode in a single graph, as multi-crop does: both
// passes must update the one set of BatchNorm statistics and every
// parameter must get a finite gradient.
func TestTrainStepMultiView(t *testing.T) {
	for _, arch := range []string{"resnet18", "mobilenet_v2", "vit_tiny"} {
		if testing.Short() && arch != "resnet18" {
			continue
		}
		b, _ := New(arch, Options{Seed: 4, DropPath: 0.1})
		g, _, wrt := lossGraph(t, b, true, 32, 16)
		vm := gorgonia.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		vm.Close()
		for _, e := range BNBuffers(b) {
			if e.Count != nil && *e.Count != 2 {
				t.Fatalf("%s: %s = %d after one step over two views, want 2", arch, e.Name, *e.Count)
			}
		}
		for i, p := range b.Params() {
			gv, err := wrt[i].Grad()
			if err != nil {
				t.Fatalf("%s: %s has no gradient: %v", arch, p.Name, err)
			}
			// Some gradients are exactly zero here, rightly: a BatchNorm bias
			// whose every path ends in a 1x1 convolution and a train-mode
			// BatchNorm only shifts what that BatchNorm subtracts again.
			for _, v := range gv.Data().([]float32) {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s: %s gradient is not finite", arch, p.Name)
				}
			}
		}
	}
}

// TestBackboneGradients compares gradients of whole backbones with central
// finite differences. It uses eval mode: with a batch of 2 and 1x1 maps at
// the last stage, train-mode BatchNorm makes the loss too ill-conditioned for
// finite differences (each op's train-mode gradient is checked in trainer/nn).
func TestBackboneGradients(t *testing.T) {
	tests := []struct {
		arch  string
		eps   float32  // CNNs are piecewise linear here (ReLU, max-pool): a small step crosses fewer kinks
		probe []string // parameters whose first elements are checked numerically
	}{
		{"resnet18", 5e-4, []string{"conv1.weight", "layer3.0.downsample.0.weight", "layer4.1.bn2.bias"}},
		{"mobilenet_v2", 5e-4, []string{"features.0.0.weight", "features.5.conv.1.0.weight", "features.18.1.weight"}},
		{"vit_tiny", 1e-2, []string{"pos_embed", "blocks.3.attn.qkv.weight", "blocks.11.mlp.fc1.bias", "norm.weight"}},
	}
	for _, tc := range tests {
		if testing.Short() && tc.arch != "resnet18" {
			continue
		}
		b, _ := New(tc.arch, Options{Seed: 4})
		g, loss, wrt := lossGraph(t, b, false, 32, 16)
		vm := gorgonia.NewTapeMachine(g)
		runLoss := func() float64 {
			vm.Reset()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			return float64(loss.Value().Data().(float32))
		}
		runLoss()
		grads := map[string][]float32{}
		byName := map[string]*nn.Param{}
		for i, p := range b.Params() {
			gv, err := wrt[i].Grad()
			if err != nil {
				t.Fatalf("%s: %v", p.Name, err)
			}
			grads[p.Name] = append([]float32(nil), gv.Data().([]float32)...)
			byName[p.Name] = p
		}
		for _, name := range tc.probe {
			p := byName[name]
			if p == nil {
				t.Fatalf("%s: no parameter %s", tc.arch, name)
			}
			d := p.Data()
			for j := 0; j < 2 && j < len(d); j++ {
				eps := tc.eps
				orig := d[j]
				d[j] = orig + eps
				up := runLoss()
				d[j] = orig - eps
				down := runLoss()
				d[j] = orig
				num := (up - down) / (2 * float64(eps))
				ana := float64(grads[name][j])
				if math.Abs(num-ana) > 2e-2+5e-2*math.Abs(num) {
					t.Errorf("%s %s[%d]: analytic gradient %.5g, finite difference %.5g", tc.arch, name, j, ana, num)
				}
			}
		}
		vm.Close()
	}
}

// TestEmbeddingSurvivesDownstreamOps guards the ops' reused output buffers
// against gorgonia's in-place execution of later element-wise ops: after a
// loss and its gradient are computed, the embedding node must still hold
// the embedding.
func TestEmbeddingSurvivesDownstreamOps(t *testing.T) {
	b, _ := New("resnet18", Options{Seed: 1})
	x := randInput(3, 2, 3, 32, 32)
	want := embed(t, b, x)
	g := gorgonia.NewGraph()
	out, err := b.Forward(inputNode(g, "x", x), false)
	if err != nil {
		t.Fatal(err)
	}
	r := inputNode(g, "r", randInput(5, 2, 512))
	sq := gorgonia.Must(gorgonia.Square(gorgonia.Must(gorgonia.HadamardProd(out.Embedding, r))))
	loss := gorgonia.Must(gorgonia.Sum(sq))
	if _, err := gorgonia.Grad(loss, b.Params()[0].Node(g)); err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := out.Embedding.Value().Data().([]float32)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("embedding[%d] = %g after the loss ops, want %g", i, got[i], want[i])
		}
	}
}

// TestSharedBuffersGiveTheSameOutputs: an eval-mode forward pass whose ops
// share output buffers (nn.ShareBuffers, as feature extraction runs it)
// gives bit-identical outputs to one where every op keeps its own, for each
// family, over two batches, and holds far fewer bytes.
func TestSharedBuffersGiveTheSameOutputs(t *testing.T) {
	for _, tc := range []struct {
		arch string
		opts Options
		size int
	}{
		{"resnet18", Options{Seed: 3}, 64},
		{"mobilenet_v2", Options{Seed: 3}, 64},
		{"vit_tiny", Options{Seed: 3, PatchSize: 16}, 48},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			b, err := New(tc.arch, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var want [2][]float32
			for i := range want {
				want[i] = embed(t, b, randInput(uint64(10+i), 2, 3, tc.size, tc.size))
			}
			g := gorgonia.NewGraph()
			x := randInput(10, 2, 3, tc.size, tc.size)
			out, err := b.Forward(inputNode(g, "x", x), false)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := nn.ShareBuffers(g, out.Embedding)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Bytes*2 > plan.Unplan {
				t.Errorf("plan %+v: sharing should at least halve the activation bytes", plan)
			}
			vm := gorgonia.NewTapeMachine(g)
			defer nn.CloseMachine(vm)
			for i := range want {
				copy(x.Float32s(), randInput(uint64(10+i), 2, 3, tc.size, tc.size).Float32s())
				vm.Reset()
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				got := out.Embedding.Value().Data().([]float32)
				if !slices.Equal(got, want[i]) {
					t.Fatalf("batch %d: shared-buffer embedding differs (first %v vs %v; plan %+v)", i, got[:4], want[i][:4], plan)
				}
			}
			t.Logf("%s: %d ops in %d buffers, %.1f of %.1f MB", tc.arch, plan.Ops, plan.Buffers, float64(plan.Bytes)/1e6, float64(plan.Unplan)/1e6)
		})
	}
}
