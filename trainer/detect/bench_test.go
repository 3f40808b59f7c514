package detect

import (
	"math/rand/v2"
	"testing"

	"github.com/sslight-go/sslight/trainer/backbone"
)

// BenchmarkTrainEpoch is one epoch of the protocol's fine-tuning: 32
// generated 96 px images, batch 16, the Fashion-MNIST presets' backbone
// (quarter-width ResNet-18 with the small-image stem). Reports images/s.
func BenchmarkTrainEpoch(b *testing.B) {
	train, _ := synthSet(b, fixtureItems(b), "train", 32, 96, 1)
	bb, err := backbone.New("resnet18", backbone.Options{Seed: 1, Width: 0.25, SmallImageStem: true})
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Epochs = 1
	m, err := NewModel(bb, len(train.CategoryIDs), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Train(m, train, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(32*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkDecode decodes one image's outputs: 10 classes on a 24x24 grid
// (96 px at stride 4), top 100.
func BenchmarkDecode(b *testing.B) {
	const k, h, w = 10, 24, 24
	rng := rand.New(rand.NewPCG(1, 2))
	heat := make([]float32, k*h*w)
	for i := range heat {
		heat[i] = float32(rng.NormFloat64())
	}
	reg := make([]float32, 4*h*w)
	for i := range reg {
		reg[i] = float32(rng.Float64() * 5)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Decode(heat, reg, k, h, w, 4, 100)
	}
}
