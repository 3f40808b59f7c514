package trainer

import (
	"math/rand/v2"
	"testing"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/trainer/optim"
)

// benchDINOStep measures whole DINO training steps (teacher forward,
// student forward and backward, LARS step, EMA) on random views, in
// images (samples, all views counted once) per second.
func benchDINOStep(b *testing.B, preset string, batch int) {
	cfg, err := configs.Preset(preset)
	if err != nil {
		b.Fatal(err)
	}
	geo := geometryOf(cfg)
	temps := make([]float64, 1)
	temps[0] = 0.04
	m, err := newDINOModel(cfg, geo, batch, temps)
	if err != nil {
		b.Fatal(err)
	}
	defer m.close()
	groups := optim.GroupParams(m.optParams, optim.GroupConfig{WDFactorForBias: 1, WDFactorForDW: 1})
	opt, err := optim.New("LARS", groups, 0.9)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	bt := newLoader(geo, batch, NewNormalizer([3]float64{0.5, 0.5, 0.5}, [3]float64{0.25, 0.25, 0.25})).newBatch()
	for i := range bt.Global {
		bt.Global[i] = float32(rng.NormFloat64())
	}
	for i := range bt.Local {
		bt.Local[i] = float32(rng.NormFloat64())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.forwardBackward(bt); err != nil {
			b.Fatal(err)
		}
		if err := opt.Step(0.01, 1e-6); err != nil {
			b.Fatal(err)
		}
		if err := optim.EMAParams(m.emaTeacher, m.emaStudent, 0.996); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "img/s")
}

// BenchmarkDINOStepFMNIST is the Fashion-MNIST preset's step: quarter-width
// ResNet-18 with the small-image stem, 2×28 px + 6×16 px views, batch 128.
func BenchmarkDINOStepFMNIST(b *testing.B) { benchDINOStep(b, "dino_fmnist_sslight", 128) }
