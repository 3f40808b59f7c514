package backbone_test

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/trainer/backbone"
)

// A backbone adds its forward pass to the graph of its input. Weights
// saved by PyTorch load with LoadStateDict(b, f) from safetensors.ReadFile.
func Example() {
	b, err := backbone.New("resnet18", backbone.Options{Seed: 1})
	if err != nil {
		panic(err)
	}
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(2, 3, 64, 64), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(2, 3, 64, 64), tensor.Of(tensor.Float32))))
	out, err := b.Forward(x, false)
	if err != nil {
		panic(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		panic(err)
	}
	fmt.Println(backbone.NumParams(b), out.Embedding.Shape(), out.FeatureMap.Shape())
	// Output: 11176512 (2, 512) (2, 512, 2, 2)
}
