package ssl

import (
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// benchGraph builds input nodes → loss → Grad once and returns a function
// running one forward+backward step.
func benchGraph(b *testing.B, vals []*tensor.Dense, wrt []bool, build func(in []*gorgonia.Node) (*gorgonia.Node, error)) func() {
	b.Helper()
	g := gorgonia.NewGraph()
	nodes := make([]*gorgonia.Node, len(vals))
	var diff gorgonia.Nodes
	for i, v := range vals {
		nodes[i] = gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(v.Shape()...), gorgonia.WithValue(v))
		if wrt[i] {
			diff = append(diff, nodes[i])
		}
	}
	l, err := build(nodes)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := gorgonia.Grad(l, diff...); err != nil {
		b.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	b.Cleanup(func() { vm.Close() })
	return func() {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDINOLoss: batch 128, 2 global + 6 local views, 4096 dims.
func BenchmarkDINOLoss(b *testing.B) {
	const batch, d = 128, 4096
	rng := rand.New(rand.NewPCG(1, 1))
	loss, err := NewDINOLoss(DINOConfig{GlobalCrops: 2, LocalCrops: 6, Lambdas: [2]float64{0.4, 0.6}, StudentTemp: 0.1,
		TeacherTemps: []float64{0.04}, CenterMomentum: 0.9, OutDim: d})
	if err != nil {
		b.Fatal(err)
	}
	step := benchGraph(b, []*tensor.Dense{randMatrix(rng, -1, 1, 8*batch, d), randMatrix(rng, -1, 1, 2*batch, d)},
		[]bool{true, false}, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1]) })
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
}

// BenchmarkMoCoLoss: batch 128, query views 1 global + 6 local, queue
// 65536 × 128.
func BenchmarkMoCoLoss(b *testing.B) {
	const batch, c, kq = 128, 128, 65536
	rng := rand.New(rand.NewPCG(2, 2))
	loss, err := NewMoCoLoss(MoCoConfig{GlobalCrops: 2, LocalCrops: 6, Lambdas: [2]float64{0.4, 0.6}, Dim: c,
		QueueLength: kq, Temperature: 0.2})
	if err != nil {
		b.Fatal(err)
	}
	step := benchGraph(b, []*tensor.Dense{randMatrix(rng, -1, 1, 7*batch, c), randMatrix(rng, -1, 1, batch, c)},
		[]bool{true, false}, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1]) })
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
}

// BenchmarkSwAVLoss: batch 128, 2 + 6 views, 3000 prototypes, queue 3840.
func BenchmarkSwAVLoss(b *testing.B) {
	const batch, k, e, qlen = 128, 3000, 128, 3840
	rng := rand.New(rand.NewPCG(3, 3))
	loss, err := NewSwAVLoss(SwAVConfig{GlobalCrops: 2, LocalCrops: 6, Lambdas: [2]float64{0.4, 0.6},
		CropsForAssign: []int{0, 1}, Temperature: 0.1, Epsilon: 0.05, SinkhornIterations: 3})
	if err != nil {
		b.Fatal(err)
	}
	if err := loss.StartQueue(qlen, e); err != nil {
		b.Fatal(err)
	}
	step := benchGraph(b, []*tensor.Dense{randMatrix(rng, -1, 1, 8*batch, k), randMatrix(rng, -0.1, 0.1, 8*batch, e),
		randMatrix(rng, -0.1, 0.1, k, e)}, []bool{true, false, false},
		func(in []*gorgonia.Node) (*gorgonia.Node, error) { return loss.Apply(in[0], in[1], in[2]) })
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
}
