package eval

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// clusters returns n samples of classes Gaussian clusters in dim
// dimensions (centres ±3 on one axis per class, noise σ = 1) drawn from
// (seed, stream).
func clusters(n, classes, dim int, seed, stream uint64) Features {
	r := rand.New(rand.NewPCG(seed, stream))
	f := Features{Dim: dim, X: make([]float32, n*dim), Labels: make([]int, n)}
	for i := range n {
		y := i % classes
		f.Labels[i] = y
		for d := range dim {
			v := r.NormFloat64()
			if d == y%dim {
				v += 3
			}
			f.X[i*dim+d] = float32(v)
		}
	}
	return f
}

// TestReferenceLinearLearnsFromAugmentedEpochs trains on a fresh draw of
// the same labelled points every epoch (what augmentation gives) and must
// classify held-out points of the same clusters far above chance; every
// epoch's features are asked for exactly once, in order.
func TestReferenceLinearLearnsFromAugmentedEpochs(t *testing.T) {
	const classes, dim = 4, 8
	test := clusters(400, classes, dim, 9, 99)
	var asked []int
	cfg := DefaultReferenceLinearConfig()
	// LARS (eta 0.001) moves the weight by about lr·0.001 of its norm per
	// step (×10 with momentum): the reference's 0.05·512/256 over 100
	// ImageNet epochs is ~250,000 such steps. A larger rate does it in 1,600.
	cfg.Epochs, cfg.BatchSize, cfg.BaseLR = 100, 32, 5
	res, err := ReferenceLinear(func(epoch int) (Features, error) {
		asked = append(asked, epoch)
		return clusters(512, classes, dim, 9, uint64(epoch)), nil
	}, test, classes, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != cfg.Epochs || asked[0] != 0 || asked[len(asked)-1] != cfg.Epochs-1 {
		t.Errorf("epochs asked for: %v", asked)
	}
	// The Bayes rate of these clusters is about 98 %; chance is 25 %.
	if res.Top1 < 90 {
		t.Errorf("top-1 %.1f%% after %d epochs, want ≥ 90%%", res.Top1, cfg.Epochs)
	}
	if res.Model.Dim != dim || res.Model.Mean != nil {
		t.Errorf("model %+v: want raw features (no standardisation) of dimension %d", res.Model, dim)
	}
}

func TestReferenceLinearErrors(t *testing.T) {
	test := clusters(20, 2, 3, 1, 1)
	good := func(epoch int) (Features, error) { return clusters(40, 2, 3, 1, uint64(epoch)), nil }
	cfg := DefaultReferenceLinearConfig()
	cfg.Epochs = 2
	for _, tc := range []struct {
		name  string
		train func(int) (Features, error)
		cfg   func(*ReferenceLinearConfig)
		want  string
	}{
		{"epoch error", func(e int) (Features, error) {
			if e == 1 {
				return Features{}, errors.New("bucket gone")
			}
			return good(e)
		}, nil, "epoch 1 features: bucket gone"},
		{"labels change", func(e int) (Features, error) {
			f, _ := good(e)
			if e == 1 {
				f.Labels[3] = 1 - f.Labels[3]
			}
			return f, nil
		}, nil, "row 3 is labelled"},
		{"dimension changes", func(e int) (Features, error) {
			if e == 1 {
				return clusters(40, 2, 4, 1, 2), nil
			}
			return good(e)
		}, nil, "dimension 4"},
		{"zero epochs", good, func(c *ReferenceLinearConfig) { c.Epochs = 0 }, "0 epochs"},
		{"negative lr", good, func(c *ReferenceLinearConfig) { c.BaseLR = -1 }, "base learning rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			_, err := ReferenceLinear(tc.train, test, 2, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}
