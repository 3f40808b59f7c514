package ssl_test

import (
	"fmt"

	"github.com/sslight-go/sslight/trainer/optim"
	"github.com/sslight-go/sslight/trainer/ssl"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A DINO loss inside a gorgonia graph: the student output gets its
// gradient, the teacher output none, and the center moves after the step.
func ExampleDINOLoss() {
	const b, d = 2, 4
	temps, _ := optim.TeacherTempSchedule(0.04, 0.07, 2, 5)
	loss, err := ssl.NewDINOLoss(ssl.DINOConfig{
		GlobalCrops: 2, LocalCrops: 2, Lambdas: [2]float64{0.4, 0.6},
		StudentTemp: 0.1, TeacherTemps: temps, CenterMomentum: 0.9, OutDim: d,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = loss.SetEpoch(1)

	g := gorgonia.NewGraph()
	student := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(4*b, d), gorgonia.WithName("student"),
		gorgonia.WithInit(gorgonia.Ones()))
	teacher := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2*b, d), gorgonia.WithName("teacher"),
		gorgonia.WithInit(gorgonia.Ones()))
	cost, err := loss.Apply(student, teacher)
	if err != nil {
		fmt.Println(err)
		return
	}
	grads, _ := gorgonia.Grad(cost, student)
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		fmt.Println(err)
		return
	}
	// Uniform teacher and student: the cross-entropy is log(4), the
	// gradient zero and the center a tenth of the teacher mean.
	fmt.Printf("loss %.4f, temp %.3f\n", cost.Value().Data(), loss.Last().TeacherTemp)
	fmt.Println("grad", grads[0].Value().Data().([]float32)[:d])
	fmt.Println("center", loss.State().Center)
	// Output:
	// loss 1.3863, temp 0.070
	// grad [0 0 0 0]
	// center [0.1 0.1 0.1 0.1]
}
