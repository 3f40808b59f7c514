package backbone

import (
	"fmt"
	"testing"

	"gorgonia.org/gorgonia"
)

// benchStep measures one training step (forward, backward, plain SGD
// update) of a backbone on a batch of random images, reporting images/s.
func benchStep(b *testing.B, arch string, batch, size int, train bool) {
	bb, err := New(arch, Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	g := gorgonia.NewGraph()
	x := inputNode(g, "x", randInput(1, batch, 3, size, size))
	out, err := bb.Forward(x, train)
	if err != nil {
		b.Fatal(err)
	}
	loss := gorgonia.Must(gorgonia.Mean(out.Embedding))
	params := bb.Params()
	var wrt gorgonia.Nodes
	if train {
		for _, p := range params {
			wrt = append(wrt, p.Node(g))
		}
		if _, err := gorgonia.Grad(loss, wrt...); err != nil {
			b.Fatal(err)
		}
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		for j, n := range wrt {
			gv, err := n.Grad()
			if err != nil {
				b.Fatal(err)
			}
			d, gd := params[j].Data(), gv.Data().([]float32)
			for k := range d {
				d[k] -= 1e-4 * gd[k]
			}
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "img/s")
}

func BenchmarkTrainStep(b *testing.B) {
	for _, arch := range []string{"resnet18", "mobilenet_v2"} {
		b.Run(fmt.Sprintf("%s/b64/32px", arch), func(b *testing.B) { benchStep(b, arch, 64, 32, true) })
	}
	b.Run("vit_tiny/b16/32px", func(b *testing.B) { benchStep(b, "vit_tiny", 16, 32, true) })
}

func BenchmarkForwardEval(b *testing.B) {
	for _, arch := range []string{"resnet18", "mobilenet_v2", "vit_tiny"} {
		b.Run(fmt.Sprintf("%s/b8/96px", arch), func(b *testing.B) { benchStep(b, arch, 8, 96, false) })
	}
}
