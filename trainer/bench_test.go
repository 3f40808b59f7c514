package trainer

import (
	"testing"

	"github.com/sslight-go/sslight/configs"
)

// fmnistModel is the Fashion-MNIST preset's network and views (quarter-
// width ResNet-18 with the small-image stem, 2×28 px + 6×16 px), applied
// to another method's preset.
var fmnistModel = map[string]string{
	"MODEL.BACKBONE_ARCH":                     "resnet18",
	"MODEL.WIDTH":                             "0.25",
	"MODEL.SMALL_IMAGE_STEM":                  "true",
	"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE": "28",
	"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE":  "16",
}

// benchStep measures whole training steps of preset (with sets applied)
// on random views — the method's step: forward and backward, the gradient
// rules, the preset's optimiser step and the EMA update — in images
// (samples, all views counted once) per second. SwAV runs with a full
// queue, its steady state from SWAV.EPOCH_QUEUE_STARTS on.
func benchStep(b *testing.B, preset string, sets map[string]string, batch int) {
	cfg, err := configs.Preset(preset)
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range sets {
		if err := cfg.Set(k, v); err != nil {
			b.Fatal(err)
		}
	}
	m, bt, err := newBenchmarkStep(cfg, batch)
	if err != nil {
		b.Fatal(err)
	}
	defer m.close()
	// Step 0 of epoch 0 for the schedules, not the epoch's first
	// iteration (which would restart SwAV's queue).
	it := iteration{inEpoch: 1}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.step(it, bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "img/s")
}

// BenchmarkDINOStepFMNIST is the Fashion-MNIST preset's step: quarter-width
// ResNet-18 with the small-image stem, 2×28 px + 6×16 px views, batch 128.
func BenchmarkDINOStepFMNIST(b *testing.B) { benchStep(b, "dino_fmnist_sslight", nil, 128) }

// BenchmarkMoCoStepFMNIST is MoCo-v2 with the SSLight preset's head and
// queue (2048 → 128, 65536 keys) on the Fashion-MNIST network and views,
// batch 128: key encoder EMA and forward on global view 1, query forward
// and backward on global view 2 and the 6 local views.
func BenchmarkMoCoStepFMNIST(b *testing.B) { benchStep(b, "moco_cnn_sslight", fmnistModel, 128) }

// BenchmarkSwAVStepFMNIST is SwAV with the SSLight preset's head (4096 →
// 128 with BN, 3000 prototypes) and a full queue of 3840, on the
// Fashion-MNIST network and views, batch 128.
func BenchmarkSwAVStepFMNIST(b *testing.B) { benchStep(b, "swav_cnn_sslight", fmnistModel, 128) }

// The SSLight settings at full resolution (2×224 px + 6×128 px views, the
// presets' heads) for the paper's two small CNNs, batch 16: the figures
// the SSL-training issue asks for. MoCo's queue of 65,536 is a multiple of
// 16. Run each in its own process to read its peak RSS, e.g.
//
//	/usr/bin/time -f %M go test -run '^$' -bench 'DINOStepSSLight224/resnet18' -benchtime 3x ./trainer/

// BenchmarkDINOStepSSLight224 is dino_cnn_sslight's step per backbone.
func BenchmarkDINOStepSSLight224(b *testing.B) {
	for _, arch := range []string{"resnet18", "mobilenet_v2"} {
		b.Run(arch, func(b *testing.B) {
			benchStep(b, "dino_cnn_sslight", map[string]string{"MODEL.BACKBONE_ARCH": arch}, 16)
		})
	}
}

// BenchmarkMoCoStepSSLight224 is moco_cnn_sslight's step per backbone.
func BenchmarkMoCoStepSSLight224(b *testing.B) {
	for _, arch := range []string{"resnet18", "mobilenet_v2"} {
		b.Run(arch, func(b *testing.B) {
			benchStep(b, "moco_cnn_sslight", map[string]string{"MODEL.BACKBONE_ARCH": arch}, 16)
		})
	}
}
