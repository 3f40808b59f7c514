package optim

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// resnet18Shapes lists torchvision ResNet-18's trainable tensors without the
// classifier (conv, BatchNorm weight and bias): 11,176,512 floats.
func resnet18Shapes() [][]int {
	shapes := [][]int{{64, 3, 7, 7}, {64}, {64}}
	in := 64
	for _, out := range []int{64, 128, 256, 512} {
		for block := range 2 {
			cin := out
			if block == 0 {
				cin = in
			}
			shapes = append(shapes, []int{out, cin, 3, 3}, []int{out}, []int{out}, []int{out, out, 3, 3}, []int{out}, []int{out})
			if block == 0 && cin != out {
				shapes = append(shapes, []int{out, cin, 1, 1}, []int{out}, []int{out}) // downsample
			}
		}
		in = out
	}
	return shapes
}

// randomParams builds parameters with the given shapes, values and
// gradients drawn from a fixed seed.
func randomParams(shapes [][]int) ([]*Param, int) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ps []*Param
	total := 0
	for i, s := range shapes {
		p := &Param{Name: fmt.Sprintf("p%d", i), Shape: s}
		n := p.Size()
		p.Data = make([]float32, n)
		p.Grad = make([]float32, n)
		for j := range n {
			p.Data[j] = float32(rng.NormFloat64() * 0.05)
			p.Grad[j] = float32(rng.NormFloat64() * 1e-3)
		}
		ps = append(ps, p)
		total += n
	}
	return ps, total
}

func TestResNet18ShapesSize(t *testing.T) {
	// torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in fc.
	total := 0
	for _, s := range resnet18Shapes() {
		total += (&Param{Shape: s}).Size()
	}
	if total != 11_689_512-513_000 {
		t.Fatalf("resnet18 shapes hold %d floats", total)
	}
}

// TestNoAllocationsAfterFirstStep: state is created on a parameter's first
// update; every later step, EMA update and clip allocates nothing.
func TestNoAllocationsAfterFirstStep(t *testing.T) {
	for _, method := range []string{MethodLARS, MethodSGD, MethodAdamW} {
		t.Run(method, func(t *testing.T) {
			ps, _ := randomParams([][]int{{8, 4, 3, 3}, {8, 1, 3, 3}, {8}, {10, 8}, {10}})
			opt, err := New(method, GroupParams(ps, GroupConfig{WDFactorForDW: 0.5, LARSExcludeBias: true}), 0.9)
			if err != nil {
				t.Fatal(err)
			}
			if err := opt.Step(0.1, 1e-4); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(20, func() {
				if err := opt.Step(0.1, 1e-4); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per step after the first", allocs)
			}
		})
	}
	teacher, _ := randomParams([][]int{{8, 4}, {8}})
	student, _ := randomParams([][]int{{8, 4}, {8}})
	if a := testing.AllocsPerRun(20, func() { _ = EMAParams(teacher, student, 0.996) }); a != 0 {
		t.Errorf("EMAParams: %v allocations", a)
	}
}

func benchmarkStep(b *testing.B, method string) {
	ps, total := randomParams(resnet18Shapes())
	opt, err := New(method, GroupParams(ps, GroupConfig{LARSExcludeBias: true}), 0.9)
	if err != nil {
		b.Fatal(err)
	}
	if err := opt.Step(1e-6, 1e-6); err != nil { // allocates the state
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(total) * 4)
	b.ResetTimer()
	for b.Loop() {
		if err := opt.Step(1e-6, 1e-6); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(total), "ns/param")
}

// BenchmarkLARSStep is one LARS step over a ResNet-18-sized parameter set
// (11.2M floats); SetBytes counts the parameter bytes.
func BenchmarkLARSStep(b *testing.B)  { benchmarkStep(b, MethodLARS) }
func BenchmarkSGDStep(b *testing.B)   { benchmarkStep(b, MethodSGD) }
func BenchmarkAdamWStep(b *testing.B) { benchmarkStep(b, MethodAdamW) }

func BenchmarkEMAUpdate(b *testing.B) {
	teacher, total := randomParams(resnet18Shapes())
	student, _ := randomParams(resnet18Shapes())
	b.ReportAllocs()
	b.SetBytes(int64(total) * 4)
	for b.Loop() {
		if err := EMAParams(teacher, student, 0.996); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(total), "ns/param")
}
