package nn

import (
	"errors"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestShareBuffersKeepsViewsAlive builds a graph where a stock Reshape
// returns a view of a coarse op's output that is read only after two other
// coarse ops of the same size have run: treating the Reshape as the last
// reader would hand that buffer on and corrupt the view. The result is
// checked against plain Go arithmetic, over two runs.
func TestShareBuffersKeepsViewsAlive(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	shape := []int{2, 3, 4, 4}
	xv, yv := randTensor(rng, -3, 3, shape...), randTensor(rng, -8, 8, shape...)
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(shape...), gorgonia.WithName("x"), gorgonia.WithValue(xv))
	y := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(shape...), gorgonia.WithName("y"), gorgonia.WithValue(yv))
	a := gorgonia.Must(ActivationOp(x, ReLU))
	view := gorgonia.Must(gorgonia.Reshape(a, tensor.Shape{2, 48}))
	b := gorgonia.Must(ActivationOp(y, ReLU6))
	c := gorgonia.Must(AddOp(b, b))
	out := gorgonia.Must(AddOp(view, gorgonia.Must(gorgonia.Reshape(c, tensor.Shape{2, 48}))))

	plan, err := ShareBuffers(g, out)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Ops != 4 || plan.Buffers >= plan.Ops || plan.Bytes >= plan.Unplan {
		t.Fatalf("plan %+v: want 4 ops sharing fewer buffers", plan)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer CloseMachine(vm)
	for run := range 2 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		got := out.Value().Data().([]float32)
		for i, xi := range xv.Float32s() {
			want := max(xi, 0) + 2*min(max(yv.Float32s()[i], 0), 6)
			if got[i] != want {
				t.Fatalf("run %d: out[%d] = %v, want %v (plan %+v)", run, i, got[i], want, plan)
			}
		}
	}
}

// TestShareBuffersRefusesTrainingGraphs: a graph with gradient nodes needs
// its activations for the backward pass.
func TestShareBuffersRefusesTrainingGraphs(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(2, 3), gorgonia.WithName("x"), gorgonia.WithInit(gorgonia.Ones()))
	loss := gorgonia.Must(gorgonia.Sum(gorgonia.Must(ActivationOp(x, ReLU))))
	if _, err := gorgonia.Grad(loss, x); err != nil {
		t.Fatal(err)
	}
	if _, err := ShareBuffers(g, loss); !errors.Is(err, ErrNotInference) {
		t.Fatalf("err = %v, want ErrNotInference", err)
	}
}
