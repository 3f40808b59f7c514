package nn

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// run evaluates build on constant inputs and returns the output value.
func run(t *testing.T, inputs []*tensor.Dense, build func(in []*gorgonia.Node) (*gorgonia.Node, error)) *tensor.Dense {
	t.Helper()
	g := gorgonia.NewGraph()
	nodes := make([]*gorgonia.Node, len(inputs))
	for i, v := range inputs {
		// Unnamed inputs of equal shape would be merged by gorgonia's
		// hash-consing, so every input gets its own name.
		nodes[i] = gorgonia.NewTensor(g, tensor.Float32, v.Dims(), gorgonia.WithShape(v.Shape()...),
			gorgonia.WithName(fmt.Sprintf("in%d", i)), gorgonia.WithValue(v))
	}
	out, err := build(nodes)
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return out.Value().(*tensor.Dense)
}

func assertClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %g, want %g", what, i, got[i], want[i])
		}
	}
}

// naiveConv is the textbook definition of torch's conv2d, in float64.
func naiveConv(x, w []float32, xs, ws []int, p ConvParams) ([]float64, []int) {
	p = p.withDefaults()
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	o, kh, kw := ws[0], ws[2], ws[3]
	cg, og := c/p.Groups, o/p.Groups
	oh := (h+2*p.Padding[0]-p.Dilation[0]*(kh-1)-1)/p.Stride[0] + 1
	ow := (wd+2*p.Padding[1]-p.Dilation[1]*(kw-1)-1)/p.Stride[1] + 1
	out := make([]float64, n*o*oh*ow)
	for b := 0; b < n; b++ {
		for oc := 0; oc < o; oc++ {
			grp := oc / og
			for y := 0; y < oh; y++ {
				for xx := 0; xx < ow; xx++ {
					var s float64
					for ic := 0; ic < cg; ic++ {
						for i := 0; i < kh; i++ {
							for j := 0; j < kw; j++ {
								iy := y*p.Stride[0] - p.Padding[0] + i*p.Dilation[0]
								ix := xx*p.Stride[1] - p.Padding[1] + j*p.Dilation[1]
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								s += float64(x[((b*c+grp*cg+ic)*h+iy)*wd+ix]) * float64(w[((oc*cg+ic)*kh+i)*kw+j])
							}
						}
					}
					out[((b*o+oc)*oh+y)*ow+xx] = s
				}
			}
		}
	}
	return out, []int{n, o, oh, ow}
}

func TestConv2dMatchesDefinition(t *testing.T) {
	tests := []struct {
		name string
		x, w []int
		p    ConvParams
	}{
		{"resnet stem 7x7/2", []int{2, 3, 19, 17}, []int{8, 3, 7, 7}, ConvParams{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}}},
		{"3x3 pad1", []int{3, 5, 8, 8}, []int{7, 5, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"pointwise", []int{2, 16, 5, 6}, []int{9, 16, 1, 1}, ConvParams{}},
		{"downsample 1x1/2", []int{2, 4, 7, 7}, []int{6, 4, 1, 1}, ConvParams{Stride: [2]int{2, 2}}},
		{"depthwise 3x3/2", []int{2, 6, 9, 8}, []int{6, 1, 3, 3}, ConvParams{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, Groups: 6}},
		{"grouped dilated", []int{1, 6, 9, 9}, []int{4, 3, 3, 3}, ConvParams{Padding: [2]int{2, 1}, Dilation: [2]int{2, 1}, Groups: 2}},
		{"asymmetric", []int{1, 2, 6, 9}, []int{3, 2, 2, 3}, ConvParams{Stride: [2]int{1, 2}, Padding: [2]int{0, 1}}},
		// Few positions per image: images are batched into one GEMM.
		{"batched 3x3", []int{5, 4, 3, 3}, []int{6, 4, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"batched pointwise grouped", []int{7, 4, 2, 2}, []int{6, 2, 1, 1}, ConvParams{Groups: 2}},
	}
	// Two workers make the batched cases split into uneven chunks whatever
	// the machine.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, tc := range tests {
		rng := rand.New(rand.NewPCG(21, 22))
		x := randTensor(rng, -1, 1, tc.x...)
		w := randTensor(rng, -1, 1, tc.w...)
		got := run(t, []*tensor.Dense{x, w}, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
			return Conv2dOp(in[0], in[1], tc.p)
		})
		want, shape := naiveConv(x.Float32s(), w.Float32s(), tc.x, tc.w, tc.p)
		if !got.Shape().Eq(tensor.Shape(shape)) {
			t.Fatalf("%s: shape %v, want %v", tc.name, got.Shape(), shape)
		}
		assertClose(t, tc.name, got.Float32s(), want, 1e-5)
	}
}

func TestConv2dRejectsBadShapes(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 4, 5, 5), gorgonia.WithName("x"))
	tests := []struct {
		name string
		w    []int
		p    ConvParams
	}{
		{"channel mismatch", []int{2, 3, 3, 3}, ConvParams{}},
		{"groups do not divide", []int{3, 4, 1, 1}, ConvParams{Groups: 3}},
		{"kernel larger than input", []int{2, 4, 7, 7}, ConvParams{}},
	}
	for _, tc := range tests {
		w := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(tc.w...), gorgonia.WithName(tc.name))
		if _, err := Conv2dOp(x, w, tc.p); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	// An empty batch is refused when the graph is built: the chunking would
	// otherwise divide by zero images at run time.
	empty := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(0, 4, 5, 5), gorgonia.WithName("empty"))
	w := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(2, 4, 3, 3), gorgonia.WithName("w"))
	if _, err := Conv2dOp(empty, w, ConvParams{Padding: [2]int{1, 1}}); err == nil || !strings.Contains(err.Error(), "empty batch") {
		t.Errorf("empty batch: err = %v, want one saying so", err)
	}
}

// TestBatchNormStatistics checks train-mode normalisation and the running
// statistics update on numbers worked out by hand: channel values
// {1, 2, 3, 6} have mean 3, biased variance 3.5, unbiased 14/3.
func TestBatchNormStatistics(t *testing.T) {
	x := tensor.New(tensor.WithShape(2, 1, 1, 2), tensor.WithBacking([]float32{1, 2, 3, 6}))
	gamma := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{2}))
	beta := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{0.5}))
	stats := NewBNStats(1)
	stats.Mean[0], stats.Var[0], stats.NumBatchesTracked = 1, 2, 100
	got := run(t, []*tensor.Dense{x, gamma, beta}, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
		return BatchNormOp(in[0], in[1], in[2], stats, true)
	})
	inv := 1 / math.Sqrt(3.5+1e-5)
	var want []float64
	for _, v := range []float64{1, 2, 3, 6} {
		want = append(want, 2*(v-3)*inv+0.5)
	}
	assertClose(t, "train output", got.Float32s(), want, 1e-6)
	assertClose(t, "running mean", stats.Mean, []float64{0.9*1 + 0.1*3}, 1e-7)
	assertClose(t, "running var", stats.Var, []float64{0.9*2 + 0.1*14.0/3}, 1e-7)
	if stats.NumBatchesTracked != 101 {
		t.Errorf("num_batches_tracked = %d, want 101", stats.NumBatchesTracked)
	}
	// Eval mode uses the (updated) running statistics and leaves them alone.
	m, v := float64(stats.Mean[0]), float64(stats.Var[0])
	got = run(t, []*tensor.Dense{x, gamma, beta}, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
		return BatchNormOp(in[0], in[1], in[2], stats, false)
	})
	want = want[:0]
	for _, xv := range []float64{1, 2, 3, 6} {
		want = append(want, 2*(xv-m)/math.Sqrt(v+1e-5)+0.5)
	}
	assertClose(t, "eval output", got.Float32s(), want, 1e-6)
	if stats.NumBatchesTracked != 101 || float64(stats.Mean[0]) != m {
		t.Error("eval mode changed the running statistics")
	}
}

// TestBatchNormSharedAcrossSizes applies one BatchNorm's statistics to two
// inputs of different spatial sizes in one graph: both passes update the
// same running statistics, as one torch module would.
func TestBatchNormSharedAcrossSizes(t *testing.T) {
	stats := NewBNStats(1)
	g := gorgonia.NewGraph()
	gamma := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithShape(1), gorgonia.WithName("g"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{1}))))
	beta := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithShape(1), gorgonia.WithName("b"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{0}))))
	a := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 1, 1, 2), gorgonia.WithName("a"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(1, 1, 1, 2), tensor.WithBacking([]float32{0, 2}))))
	b := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 1, 2, 2), gorgonia.WithName("bb"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking([]float32{10, 10, 10, 10}))))
	for _, x := range []*gorgonia.Node{a, b} {
		if _, err := BatchNormOp(x, gamma, beta, stats, true); err != nil {
			t.Fatal(err)
		}
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	// Order of the two updates is the graph's; both orders give the same
	// count, and the mean is one of the two compositions.
	if stats.NumBatchesTracked != 2 {
		t.Fatalf("num_batches_tracked = %d, want 2", stats.NumBatchesTracked)
	}
	m := float64(stats.Mean[0])
	aFirst := 0.9*(0.9*0+0.1*1) + 0.1*10
	bFirst := 0.9*(0.9*0+0.1*10) + 0.1*1
	if math.Abs(m-aFirst) > 1e-6 && math.Abs(m-bFirst) > 1e-6 {
		t.Errorf("running mean %g is neither %g nor %g", m, aFirst, bFirst)
	}
}

func TestLayerNormAndActivations(t *testing.T) {
	x := tensor.New(tensor.WithShape(1, 4), tensor.WithBacking([]float32{1, 2, 3, 6}))
	w := tensor.New(tensor.WithShape(4), tensor.WithBacking([]float32{1, 2, 1, 1}))
	b := tensor.New(tensor.WithShape(4), tensor.WithBacking([]float32{0, 0, 1, 0}))
	got := run(t, []*tensor.Dense{x, w, b}, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
		return LayerNormOp(in[0], in[1], in[2], 1e-6)
	})
	inv := 1 / math.Sqrt(3.5+1e-6)
	assertClose(t, "LayerNorm", got.Float32s(), []float64{-2 * inv, 2 * -1 * inv, 0*inv + 1, 3 * inv}, 1e-6)

	in := []float32{-7, -1, -0.5, 0, 0.5, 1, 3, 5.99, 6, 7}
	xv := tensor.New(tensor.WithShape(len(in)), tensor.WithBacking(in))
	for _, tc := range []struct {
		a Activation
		f func(float64) float64
	}{
		{ReLU, func(v float64) float64 { return math.Max(v, 0) }},
		{ReLU6, func(v float64) float64 { return math.Min(math.Max(v, 0), 6) }},
		// GELU(x) = x·Φ(x); Φ via the complementary error function.
		{GELU, func(v float64) float64 { return v * 0.5 * math.Erfc(-v/math.Sqrt2) }},
	} {
		got := run(t, []*tensor.Dense{xv}, func(n []*gorgonia.Node) (*gorgonia.Node, error) { return ActivationOp(n[0], tc.a) })
		var want []float64
		for _, v := range in {
			want = append(want, tc.f(float64(v)))
		}
		assertClose(t, tc.a.String(), got.Float32s(), want, 1e-6)
	}
}

func TestMaxPoolAndAverage(t *testing.T) {
	// 1x1x4x4 ramp: 3x3/2 pad 1 windows pick their bottom-right element.
	data := make([]float32, 16)
	for i := range data {
		data[i] = float32(i)
	}
	x := tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.WithBacking(data))
	got := run(t, []*tensor.Dense{x}, func(n []*gorgonia.Node) (*gorgonia.Node, error) { return MaxPool2dOp(n[0], 3, 2, 1) })
	assertClose(t, "MaxPool2d", got.Float32s(), []float64{5, 7, 13, 15}, 0)
	got = run(t, []*tensor.Dense{x}, func(n []*gorgonia.Node) (*gorgonia.Node, error) { return GlobalAvgPoolOp(n[0]) })
	assertClose(t, "GlobalAvgPool", got.Float32s(), []float64{7.5}, 0)
}

// naiveAttention is softmax(scale·q·kᵀ)·v per head, in float64.
func naiveAttention(qkv []float32, b, tt, d, heads int, scale float64) []float64 {
	hd := d / heads
	out := make([]float64, b*tt*d)
	at := func(bi, t, part, h, j int) float64 { return float64(qkv[(bi*tt+t)*3*d+part*d+h*hd+j]) }
	for bi := 0; bi < b; bi++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < tt; i++ {
				s := make([]float64, tt)
				m := math.Inf(-1)
				for j := range s {
					for e := 0; e < hd; e++ {
						s[j] += at(bi, i, 0, h, e) * at(bi, j, 1, h, e)
					}
					s[j] *= scale
					m = math.Max(m, s[j])
				}
				var z float64
				for j := range s {
					s[j] = math.Exp(s[j] - m)
					z += s[j]
				}
				for e := 0; e < hd; e++ {
					var v float64
					for j := range s {
						v += s[j] / z * at(bi, j, 2, h, e)
					}
					out[(bi*tt+i)*d+h*hd+e] = v
				}
			}
		}
	}
	return out
}

func TestAttentionMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	qkv := randTensor(rng, -2, 2, 2, 7, 18) // D = 6, 3 heads
	got := run(t, []*tensor.Dense{qkv}, func(n []*gorgonia.Node) (*gorgonia.Node, error) {
		return AttentionOp(n[0], 3, 1/math.Sqrt(2))
	})
	assertClose(t, "attention", got.Float32s(), naiveAttention(qkv.Float32s(), 2, 7, 6, 3, 1/math.Sqrt(2)), 1e-5)
}

// TestInterpolatePosEmbedPyTorchSlice checks the bicubic resize against
// PyTorch's DINO interpolate_pos_encoding on 4 channels of the golden
// ViT-Tiny/16 position embeddings (14x14 grid to 6x6 for 96x96 inputs).
func TestInterpolatePosEmbedPyTorchSlice(t *testing.T) {
	data, err := os.ReadFile("../../testdata/nn/pos_embed_96_slice.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Input, Expected struct {
			Shape []int
			Data  []float64
		}
		Tolerance struct{ Abs, Rel float64 }
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	in := make([]float32, len(c.Input.Data))
	for i, v := range c.Input.Data {
		in[i] = float32(v)
	}
	pos := tensor.New(tensor.WithShape(c.Input.Shape...), tensor.WithBacking(in))
	got := run(t, []*tensor.Dense{pos}, func(n []*gorgonia.Node) (*gorgonia.Node, error) {
		return InterpolatePosEmbedOp(n[0], 96, 96, 16)
	})
	if !got.Shape().Eq(tensor.Shape(c.Expected.Shape)) {
		t.Fatalf("shape %v, want %v", got.Shape(), c.Expected.Shape)
	}
	for i, w := range c.Expected.Data {
		if d := math.Abs(float64(got.Float32s()[i]) - w); d > c.Tolerance.Abs+c.Tolerance.Rel*math.Abs(w) {
			t.Fatalf("[%d] = %g, want %g", i, got.Float32s()[i], w)
		}
	}
}

func TestLinearMatchesDefinition(t *testing.T) {
	x := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))
	w := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 0, -1, 0.5, 0.5, 0.5}))
	b := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{10, 20}))
	got := run(t, []*tensor.Dense{x, w, b}, func(n []*gorgonia.Node) (*gorgonia.Node, error) { return LinearOp(n[0], n[1], n[2]) })
	assertClose(t, "Linear", got.Float32s(), []float64{1 - 3 + 10, 3 + 20, 4 - 6 + 10, 7.5 + 20}, 0)
}

// TestParamsWithEqualNamesStayDistinct guards against gorgonia's merging of
// equally named inputs: two parameters named alike (student and teacher
// backbones) must give two nodes with their own values.
func TestParamsWithEqualNamesStayDistinct(t *testing.T) {
	g := gorgonia.NewGraph()
	a, b := NewParam("conv1.weight", 2), NewParam("conv1.weight", 2)
	Fill(a, 1)
	Fill(b, 2)
	na, nb := a.Node(g), b.Node(g)
	if na == nb {
		t.Fatal("two parameters share one node")
	}
	if a.Node(g) != na {
		t.Error("a parameter's node is not reused within a graph")
	}
	if na.Value().Data().([]float32)[0] != 1 || nb.Value().Data().([]float32)[0] != 2 {
		t.Error("nodes do not hold their parameters' values")
	}
}

// TestRowOpsForward checks the row ops against hand-computed values.
func TestRowOpsForward(t *testing.T) {
	run := func(build func(g *gorgonia.ExprGraph) (*gorgonia.Node, error)) []float32 {
		t.Helper()
		g := gorgonia.NewGraph()
		y, err := build(g)
		if err != nil {
			t.Fatal(err)
		}
		vm := gorgonia.NewTapeMachine(g)
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		return y.Value().Data().([]float32)
	}
	in := func(g *gorgonia.ExprGraph, name string, v []float32, shape ...int) *gorgonia.Node {
		return gorgonia.NewTensor(g, tensor.Float32, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name),
			gorgonia.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))))
	}
	tests := []struct {
		name  string
		build func(g *gorgonia.ExprGraph) (*gorgonia.Node, error)
		want  []float32
	}{
		{"normalize 3-4-5 and a zero row", func(g *gorgonia.ExprGraph) (*gorgonia.Node, error) {
			return L2NormalizeOp(in(g, "x", []float32{3, 4, 0, 0}, 2, 2))
		}, []float32{0.6, 0.8, 0, 0}},
		{"scale rows", func(g *gorgonia.ExprGraph) (*gorgonia.Node, error) {
			return ScaleRowsOp(in(g, "x", []float32{1, 2, 3, 4}, 2, 2), in(g, "s", []float32{10, -1}, 2, 1))
		}, []float32{10, 20, -3, -4}},
		{"concat", func(g *gorgonia.ExprGraph) (*gorgonia.Node, error) {
			return ConcatOp(in(g, "a", []float32{1, 2}, 1, 2), in(g, "b", []float32{3, 4, 5, 6}, 2, 2))
		}, []float32{1, 2, 3, 4, 5, 6}},
	}
	for _, tc := range tests {
		got := run(tc.build)
		for i := range tc.want {
			if math.Abs(float64(got[i]-tc.want[i])) > 1e-6 {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}

// TestConvChunksBalanceWorkers checks that the batch splits into chunks
// that cover every image once, differ by at most one image, and give every
// worker the same number of images give or take one: 64 images of a 6x6 map
// used to split 42/22 over two workers.
func TestConvChunksBalanceWorkers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, workers := range []int{1, 2, 3, 4, 16} {
		runtime.GOMAXPROCS(workers)
		for _, n := range []int{1, 2, 3, 7, 16, 32, 63, 64, 65, 256} {
			for _, side := range []int{1, 3, 6, 7, 12, 14, 24, 56} {
				g := convGeom{n: n, p: side * side}
				chunks := g.chunks()
				perWorker := make([]int, numWorkers(chunks))
				next, lo, hi := 0, n, 0
				parallelFor(chunks, func(wk, a, b int) {
					for ch := a; ch < b; ch++ {
						_, cnt := g.chunkRange(ch, chunks)
						perWorker[wk] += cnt
					}
				})
				for ch := 0; ch < chunks; ch++ {
					n0, cnt := g.chunkRange(ch, chunks)
					if n0 != next || cnt < 1 || cnt > g.chunkImages() {
						t.Fatalf("workers %d, n %d, %dx%d: chunk %d = [%d, +%d), want start %d, size 1..%d", workers, n, side, side, ch, n0, cnt, next, g.chunkImages())
					}
					next += cnt
					lo, hi = min(lo, cnt), max(hi, cnt)
				}
				if next != n || hi-lo > 1 {
					t.Fatalf("workers %d, n %d, %dx%d: chunks cover %d images, sizes %d..%d", workers, n, side, side, next, lo, hi)
				}
				if slices.Max(perWorker)-slices.Min(perWorker) > 1 {
					t.Errorf("workers %d, n %d, %dx%d: images per worker %v", workers, n, side, side, perWorker)
				}
			}
		}
	}
}
