package optim_test

import (
	"fmt"

	"github.com/sslight-go/sslight/trainer/optim"
)

// The schedules of a short DINO CNN run: BASE_LR 0.48 at a global batch
// of 128, one warm-up epoch, cosine towards MIN_LR (the last value is not
// MIN_LR itself), teacher momentum 0.996 → 1 without warm-up.
func ExampleNewSchedules() {
	s, err := optim.NewSchedules(optim.ScheduleSpec{
		Scheduler: optim.SchedulerCosine, Epochs: 3, ItersPerEpoch: 2, GlobalBatch: 128,
		BaseLR: 0.48, MinLR: 0.0048, WarmupEpochs: 1,
		WeightDecay: 1e-6, WeightDecayEnd: 1e-6,
		MomentumStart: 0.996, MomentumEnd: 1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, lr := range s.LR {
		fmt.Printf("step %d: lr %.4f  teacher momentum %.4f\n", i, lr, s.TeacherMomentum[i])
	}
	// Output:
	// step 0: lr 0.0000  teacher momentum 0.9960
	// step 1: lr 0.2400  teacher momentum 0.9963
	// step 2: lr 0.2400  teacher momentum 0.9970
	// step 3: lr 0.2056  teacher momentum 0.9980
	// step 4: lr 0.1224  teacher momentum 0.9990
	// step 5: lr 0.0392  teacher momentum 0.9997
}

// One training iteration's optimiser side, in the reference's order.
func ExampleLARS() {
	weight := &optim.Param{Name: "student.backbone.conv.weight", Shape: []int{1, 1, 1, 2}, Data: []float32{3, 4}}
	bias := &optim.Param{Name: "student.backbone.bn.bias", Shape: []int{2}, Data: []float32{0.5, -0.5}}
	last := &optim.Param{Name: "student.head.last_layer.weight", Shape: []int{2, 1}, Data: []float32{1, 1}}
	student := []*optim.Param{weight, bias, last}
	groups := optim.GroupParams(student, optim.GroupConfig{WDFactorForBias: 0, LARSExcludeBias: true})
	opt, err := optim.NewLARS(groups, optim.LARSConfig{Momentum: 0.9, Eta: optim.DefaultLARSEta})
	if err != nil {
		fmt.Println(err)
		return
	}

	// After the backward pass:
	weight.Grad, bias.Grad, last.Grad = []float32{0.6, 0.8}, []float32{0.1, 0.1}, []float32{1, 1}
	norms := optim.ClipGradients(student, 3.0, nil)
	optim.CancelGradientsLastLayer(student, 0, 0, optim.FreezeWindow{Epochs: 1})
	if err := opt.Step(1, 0); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("grad norms:", norms)
	fmt.Println("weight:", weight.Data) // trust ratio 0.001·5/1
	fmt.Println("bias:  ", bias.Data)   // excluded from LARS: plain momentum SGD
	fmt.Println("last:  ", last.Data)   // frozen in epoch 0
	// Output:
	// grad norms: [1 0.1414213627576828 1.4142135381698608]
	// weight: [2.997 3.996]
	// bias:   [0.4 -0.6]
	// last:   [1 1]
}
