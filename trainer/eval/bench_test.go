package eval

import "testing"

// BenchmarkKNN measures the kNN protocol on 20,000 train and 1,000 test
// samples of dimension 384 (a ViT-S feature) over 100 classes, DINO's ks.
// Flops: 2·20000·1000·384 ≈ 15.4 G per run for the similarities.
func BenchmarkKNN(b *testing.B) {
	train := randomFeatures(20000, 384, 100, 1)
	test := randomFeatures(1000, 384, 100, 2)
	ks := DefaultKs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := KNN(train, test, 100, ks, DefaultKNNTemperature); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(test.Len())*float64(b.N)/b.Elapsed().Seconds(), "test-samples/s")
}

// BenchmarkLinear measures one epoch of the linear probe (plus its
// evaluation) on 20,000 train and 2,000 test samples of dimension 384 over
// 100 classes, batch 256.
func BenchmarkLinear(b *testing.B) {
	train := randomFeatures(20000, 384, 100, 1)
	test := randomFeatures(2000, 384, 100, 2)
	cfg := DefaultLinearConfig()
	cfg.Epochs = 1
	b.ResetTimer()
	for b.Loop() {
		if _, err := Linear(train, test, 100, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(train.Len())*float64(b.N)/b.Elapsed().Seconds(), "train-samples/s")
}
