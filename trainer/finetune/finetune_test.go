package finetune

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/sslight-go/sslight/trainer/backbone"
)

// stripes makes 16x16 images of horizontal (class 0) or vertical (class 1)
// stripes with random phase and noise: a task a tiny CNN must learn to
// near-perfect accuracy, and a random-init network with a fresh linear head
// does not solve before training.
func stripes(n int, seed uint64) Images {
	rng := rand.New(rand.NewPCG(seed, 7))
	const s = 16
	im := Images{N: n, H: s, W: s, X: make([]float32, n*3*s*s), Labels: make([]int, n)}
	for i := 0; i < n; i++ {
		y := i % 2
		phase := rng.IntN(4)
		im.Labels[i] = y
		for c := 0; c < 3; c++ {
			for r := 0; r < s; r++ {
				for q := 0; q < s; q++ {
					k := r
					if y == 1 {
						k = q
					}
					v := float32(-1)
					if (k+phase)%4 < 2 {
						v = 1
					}
					im.X[((i*3+c)*s+r)*s+q] = v + float32(rng.NormFloat64()*0.3)
				}
			}
		}
	}
	return im
}

func TestFinetuneLearnsStripes(t *testing.T) {
	bb, err := backbone.New("resnet18", backbone.Options{Seed: 1, Width: 0.125, SmallImageStem: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Epochs, cfg.BatchSize = 4, 16
	res, err := Run(bb, stripes(64, 1), stripes(64, 2), 2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Top1 < 95 {
		t.Errorf("top-1 %.1f%% on stripes after fine-tuning, want ≥ 95%% (train loss %.3f)", res.Top1, res.TrainLoss)
	}
	if res.Steps != 4*4 || res.HasTop5 {
		t.Errorf("result %+v: want 16 steps and no top-5 for 2 classes", res)
	}
}

func TestFinetuneRejectsBadInput(t *testing.T) {
	bb, _ := backbone.New("resnet18", backbone.Options{Seed: 1, Width: 0.125, SmallImageStem: true})
	good := stripes(8, 1)
	bad := stripes(8, 1)
	bad.Labels[3] = 5
	tests := []struct {
		name       string
		train, val Images
		classes    int
	}{
		{"label out of range", bad, good, 2},
		{"empty validation", good, Images{}, 2},
		{"one class", good, good, 1},
		{"size mismatch", good, Images{N: 1, H: 8, W: 8, X: make([]float32, 3*64), Labels: []int{0}}, 2},
	}
	for _, tc := range tests {
		if _, err := Run(bb, tc.train, tc.val, tc.classes, DefaultConfig()); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err %v, want ErrInput", tc.name, err)
		}
	}
}
