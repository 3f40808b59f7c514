package configs

import "testing"

func BenchmarkParsePreset(b *testing.B) {
	data, err := PresetYAML("dino_cnn_sslight")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	c := mustPreset(b, "dino_cnn_sslight")
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Hash()
	}
}

func BenchmarkAugmentationHash(b *testing.B) {
	c := mustPreset(b, "dino_cnn_sslight")
	b.ReportAllocs()
	for b.Loop() {
		_ = c.AugmentationHash()
	}
}

func BenchmarkYAML(b *testing.B) {
	c := mustPreset(b, "dino_cnn_sslight")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.YAML(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	c := mustPreset(b, "dino_cnn_sslight")
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
