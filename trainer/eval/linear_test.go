package eval

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// linearGolden is testdata/linear_golden.json, written by
// testdata/gen_linear.py: the probe's training loop run in torch 1.13.
type linearGolden struct {
	Cases []struct {
		Name        string    `json:"name"`
		Classes     int       `json:"classes"`
		Dim         int       `json:"dim"`
		Epochs      int       `json:"epochs"`
		BatchSize   int       `json:"batch_size"`
		LR          float64   `json:"lr"`
		FinalLR     float64   `json:"final_lr"`
		Momentum    float64   `json:"momentum"`
		WeightDecay float64   `json:"weight_decay"`
		Standardize bool      `json:"standardize"`
		TrainX      []float32 `json:"train_x"`
		TrainY      []int     `json:"train_y"`
		TestX       []float32 `json:"test_x"`
		TestY       []int     `json:"test_y"`
		Weight      []float32 `json:"weight"`
		Bias        []float32 `json:"bias"`
		TrainLoss   float64   `json:"train_loss"`
		Top1        float64   `json:"top1"`
		Top5        *float64  `json:"top5"`
		TestLogits  []float32 `json:"test_logits"`
	} `json:"cases"`
}

// TestLinearGolden trains with the samples in stored order (the torch loop
// does not shuffle) and compares weights, bias, the last epoch's loss, the
// test scores and accuracies with torch's.
func TestLinearGolden(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "linear_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g linearGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("linear_golden.json: %v", err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("linear_golden.json has no cases")
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			train := Features{Dim: c.Dim, X: c.TrainX, Labels: c.TrainY}
			test := Features{Dim: c.Dim, X: c.TestX, Labels: c.TestY}
			cfg := LinearConfig{Epochs: c.Epochs, BatchSize: c.BatchSize, LR: c.LR, FinalLR: c.FinalLR,
				Momentum: c.Momentum, WeightDecay: c.WeightDecay, Standardize: c.Standardize}
			if err := cfg.check(); err != nil {
				t.Fatal(err)
			}
			m, loss, err := trainLinear(train, c.Classes, cfg, func(int, []int) {})
			if err != nil {
				t.Fatal(err)
			}
			near := func(what string, got, want []float32) {
				t.Helper()
				for i := range want {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-5+1e-4*math.Abs(float64(want[i])) {
						t.Errorf("%s[%d] = %v, want %v", what, i, got[i], want[i])
					}
				}
			}
			near("weight", m.W, c.Weight)
			near("bias", m.B, c.Bias)
			if math.Abs(loss-c.TrainLoss) > 1e-5 {
				t.Errorf("train loss %v, want %v", loss, c.TrainLoss)
			}
			for i := range test.Len() {
				s, err := m.Scores(test.Row(i))
				if err != nil {
					t.Fatal(err)
				}
				near("test scores", s, c.TestLogits[i*c.Classes:(i+1)*c.Classes])
			}
			top1, top5, err := m.Evaluate(test)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(top1-c.Top1) > 1e-4 {
				t.Errorf("top-1 %v, want %v", top1, c.Top1)
			}
			if c.Top5 != nil && math.Abs(top5-*c.Top5) > 1e-4 {
				t.Errorf("top-5 %v, want %v", top5, *c.Top5)
			}
		})
	}
}

// TestLinearOneStep checks one SGD step worked out by hand. Samples x=1
// (class 0) and x=−1 (class 1), zero start: both softmaxes are (½, ½), so
// the loss is ln 2 and the logit gradients (softmax − onehot)/2 are
// (−¼, ¼) and (¼, −¼). dW = Σ g·x = (−½, ½), db = 0; one step at lr 1
// (a one-step cosine schedule starts and stays at LR) gives W = (½, −½).
// With momentum and weight decay the first step is the same: torch's
// buffer starts as the gradient, and decay of a zero weight is zero.
func TestLinearOneStep(t *testing.T) {
	train := Features{Dim: 1, X: []float32{1, -1}, Labels: []int{0, 1}}
	cfg := LinearConfig{Epochs: 1, BatchSize: 2, LR: 1, Momentum: 0.9, WeightDecay: 0.5}
	m, loss, err := trainLinear(train, 2, cfg, func(int, []int) {})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.W, []float32{0.5, -0.5}) || !slices.Equal(m.B, []float32{0, 0}) {
		t.Errorf("W %v B %v, want [0.5 -0.5] [0 0]", m.W, m.B)
	}
	if math.Abs(loss-math.Ln2) > 1e-12 {
		t.Errorf("loss %v, want ln 2", loss)
	}
	top1, _, err := m.Evaluate(train)
	if err != nil {
		t.Fatal(err)
	}
	if top1 != 100 {
		t.Errorf("train top-1 %v, want 100", top1)
	}
}

// TestStandardisation checks the statistics on a hand-computed set: column
// 0 holds 1, 3 (mean 2, population sd 1), column 1 is constant 5 (centred,
// scale 1), column 2 holds −4, 4 (mean 0, sd 4).
func TestStandardisation(t *testing.T) {
	f := Features{Dim: 3, X: []float32{1, 5, -4, 3, 5, 4}, Labels: []int{0, 0}}
	mean, scale := standardisation(f)
	if want := []float32{2, 5, 0}; !slices.Equal(mean, want) {
		t.Errorf("mean %v, want %v", mean, want)
	}
	if want := []float32{1, 1, 0.25}; !slices.Equal(scale, want) {
		t.Errorf("scale %v, want %v", scale, want)
	}
}

func TestShuffle(t *testing.T) {
	ident := func(n int) []int {
		p := make([]int, n)
		for i := range p {
			p[i] = i
		}
		return p
	}
	a, b := ident(1000), ident(1000)
	shuffle(a, 1, 0)
	shuffle(b, 1, 0)
	if !slices.Equal(a, b) {
		t.Fatal("same seed and epoch gave different orders")
	}
	s := slices.Clone(a)
	slices.Sort(s)
	if !slices.Equal(s, ident(1000)) {
		t.Fatal("shuffle is not a permutation")
	}
	for _, o := range [][2]uint64{{1, 1}, {2, 0}} {
		c := ident(1000)
		shuffle(c, o[0], o[1])
		if slices.Equal(a, c) {
			t.Errorf("seed %d epoch %d gave the order of seed 1 epoch 0", o[0], o[1])
		}
	}
	if slices.Equal(a, ident(1000)) {
		t.Error("shuffle left the order unchanged")
	}
	// Uniformity of the bounded draws: every value of [0, 3) about a third
	// of the time (3 standard deviations of a binomial(30000, 1/3) ≈ 245).
	src := newTestPCG()
	var counts [3]int
	for range 30000 {
		counts[boundedDraw(src, 3)]++
	}
	for v, n := range counts {
		if n < 10000-245 || n > 10000+245 {
			t.Errorf("value %d drawn %d times in 30000, want about 10000", v, n)
		}
	}
}

// TestLinearDeterministic: the same seed gives identical weights with one
// or several workers; another seed gives other weights.
func TestLinearDeterministic(t *testing.T) {
	train := randomFeatures(600, 20, 7, 3)
	test := randomFeatures(200, 20, 7, 4)
	cfg := DefaultLinearConfig()
	cfg.Epochs = 3
	cfg.BatchSize = 64
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	a, err := Linear(train, test, 7, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GOMAXPROCS(4)
	b, err := Linear(train, test, 7, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Model.W, b.Model.W) || a.Top1 != b.Top1 || a.TrainLoss != b.TrainLoss {
		t.Error("1 and 4 workers trained different models")
	}
	cfg.Seed = 1
	c, err := Linear(train, test, 7, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a.Model.W, c.Model.W) {
		t.Error("seeds 0 and 1 trained identical models")
	}
	// The clusters are separable: the probe must learn them.
	if a.Top1 < 90 || !a.HasTop5 || a.Top5 < a.Top1 {
		t.Errorf("top-1 %v top-5 %v (HasTop5 %v) on separable clusters", a.Top1, a.Top5, a.HasTop5)
	}
}

func TestLinearErrors(t *testing.T) {
	good := Features{Dim: 2, X: []float32{1, 0, 0, 1}, Labels: []int{0, 1}}
	base := DefaultLinearConfig()
	with := func(f func(*LinearConfig)) LinearConfig { c := base; f(&c); return c }
	tests := []struct {
		name        string
		train, test Features
		classes     int
		cfg         LinearConfig
	}{
		{"empty train", Features{Dim: 2}, good, 2, base},
		{"empty test", good, Features{Dim: 2}, 2, base},
		{"dim mismatch", good, Features{Dim: 1, X: []float32{1}, Labels: []int{0}}, 2, base},
		{"label out of range", good, good, 1, base},
		{"infinite feature", Features{Dim: 2, X: []float32{float32(math.Inf(1)), 0, 0, 1}, Labels: []int{0, 1}}, good, 2, base},
		{"zero epochs", good, good, 2, with(func(c *LinearConfig) { c.Epochs = 0 })},
		{"zero batch", good, good, 2, with(func(c *LinearConfig) { c.BatchSize = 0 })},
		{"zero lr", good, good, 2, with(func(c *LinearConfig) { c.LR = 0 })},
		{"final lr above lr", good, good, 2, with(func(c *LinearConfig) { c.FinalLR = 1 })},
		{"momentum 1", good, good, 2, with(func(c *LinearConfig) { c.Momentum = 1 })},
		{"negative weight decay", good, good, 2, with(func(c *LinearConfig) { c.WeightDecay = -1 })},
		{"diverging lr", Features{Dim: 2, X: []float32{1e30, 0, 0, 1e30}, Labels: []int{0, 1}}, good, 2,
			with(func(c *LinearConfig) { c.LR = 1e30; c.Standardize = false })},
	}
	for _, tt := range tests {
		_, err := Linear(tt.train, tt.test, tt.classes, tt.cfg)
		if !errors.Is(err, ErrInput) {
			t.Errorf("%s: error %v, want ErrInput", tt.name, err)
		}
		if tt.name == "diverging lr" && err != nil && !strings.Contains(err.Error(), "diverged") {
			t.Errorf("%s: error %q does not say the training diverged", tt.name, err)
		}
	}
	m := &LinearModel{Dim: 2, Classes: 2, W: make([]float32, 4), B: make([]float32, 2)}
	if _, err := m.Scores([]float32{1}); !errors.Is(err, ErrInput) {
		t.Errorf("Scores of a short feature: error %v, want ErrInput", err)
	}
	if _, _, err := m.Evaluate(Features{Dim: 3, X: []float32{1, 2, 3}, Labels: []int{0}}); !errors.Is(err, ErrInput) {
		t.Errorf("Evaluate of the wrong dimension: error %v, want ErrInput", err)
	}
}

func newTestPCG() *rand.PCG { return rand.NewPCG(42, 43) }
