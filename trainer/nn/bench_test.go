package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// benchOp times forward (and, with backward, the gradients of every input)
// of one op on random inputs and reports GFLOP/s for the given forward
// FLOP count (backward counted as twice the forward).
func benchOp(b *testing.B, flops float64, backward bool, inputs []*tensor.Dense, build func([]*gorgonia.Node) (*gorgonia.Node, error)) {
	g := gorgonia.NewGraph()
	nodes := make([]*gorgonia.Node, len(inputs))
	for i, v := range inputs {
		nodes[i] = gorgonia.NewTensor(g, tensor.Float32, v.Dims(), gorgonia.WithShape(v.Shape()...), gorgonia.WithName(fmt.Sprint("in", i)), gorgonia.WithValue(v))
	}
	out, err := build(nodes)
	if err != nil {
		b.Fatal(err)
	}
	if backward {
		loss := gorgonia.Must(gorgonia.Sum(out))
		if _, err := gorgonia.Grad(loss, nodes...); err != nil {
			b.Fatal(err)
		}
		flops *= 3
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkConv2d(b *testing.B) {
	tests := []struct {
		name string
		x, w []int
		p    ConvParams
	}{
		{"resnet_layer1_3x3_b16_56px", []int{16, 64, 56, 56}, []int{64, 64, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"resnet_layer1_3x3_b64_24px", []int{64, 64, 24, 24}, []int{64, 64, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"resnet_layer2_3x3_b64_12px", []int{64, 128, 12, 12}, []int{128, 128, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"resnet_layer3_3x3_b64_6px", []int{64, 256, 6, 6}, []int{256, 256, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"resnet_layer4_3x3_b64_3px", []int{64, 512, 3, 3}, []int{512, 512, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"resnet_layer4_3x3_b64_1px", []int{64, 512, 1, 1}, []int{512, 512, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		// The Fashion-MNIST preset's ResNet-18 (quarter width, small stem):
		// 16 channels on the global views' 28 px maps, the locals' 16 px,
		// and 128 channels on 4 px maps.
		{"fmnist_layer1_3x3_b256_28px", []int{256, 16, 28, 28}, []int{16, 16, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"fmnist_layer1_3x3_b768_16px", []int{768, 16, 16, 16}, []int{16, 16, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"fmnist_layer4_3x3_b256_4px", []int{256, 128, 4, 4}, []int{128, 128, 3, 3}, ConvParams{Padding: [2]int{1, 1}}},
		{"mnv2_pointwise_b16_28px", []int{16, 32, 28, 28}, []int{192, 32, 1, 1}, ConvParams{}},
		{"mnv2_depthwise_b16_28px", []int{16, 192, 28, 28}, []int{192, 1, 3, 3}, ConvParams{Padding: [2]int{1, 1}, Groups: 192}},
	}
	for _, tc := range tests {
		for _, backward := range []bool{false, true} {
			rng := rand.New(rand.NewPCG(1, 1))
			x, w := randTensor(rng, -1, 1, tc.x...), randTensor(rng, -1, 1, tc.w...)
			k := &convKernel{p: tc.p.withDefaults()}
			geo, err := k.geom([]tensor.Shape{x.Shape(), w.Shape()})
			if err != nil {
				b.Fatal(err)
			}
			flops := 2 * float64(geo.n*geo.o*geo.p*geo.k)
			b.Run(fmt.Sprintf("%s/backward=%v", tc.name, backward), func(b *testing.B) {
				benchOp(b, flops, backward, []*tensor.Dense{x, w}, func(n []*gorgonia.Node) (*gorgonia.Node, error) {
					return Conv2dOp(n[0], n[1], tc.p)
				})
			})
		}
	}
}

func BenchmarkBatchNormTrain(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := randTensor(rng, -1, 1, 16, 64, 56, 56)
	gamma, beta := randTensor(rng, 0.5, 1.5, 64), randTensor(rng, -1, 1, 64)
	stats := NewBNStats(64)
	benchOp(b, float64(x.Size()), true, []*tensor.Dense{x, gamma, beta}, func(n []*gorgonia.Node) (*gorgonia.Node, error) {
		return BatchNormOp(n[0], n[1], n[2], stats, true)
	})
}
