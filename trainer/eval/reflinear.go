package eval

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sslight-go/sslight/trainer/optim"
)

// ReferenceLinearConfig is the reference's linear evaluation
// (classification/config/exp_yamls/*_linear.yaml with its defaults): a
// linear layer on the frozen backbone's features of augmented training
// images, LARS, a per-iteration cosine from BaseLR·batch/256 to MinLR
// without warm-up.
type ReferenceLinearConfig struct {
	Epochs      int     // SOLVER.TOTAL_EPOCHS (100)
	BatchSize   int     // TRAIN.BATCH_SIZE (512); the last batch of an epoch may be smaller
	BaseLR      float64 // SOLVER.BASE_LR (0.05), scaled by batch/256
	MinLR       float64 // SOLVER.MIN_LR (1e-6)
	Momentum    float64 // SOLVER.MOMENTUM (0.9)
	WeightDecay float64 // SOLVER.WEIGHT_DECAY (0 in the linear YAMLs)
	Seed        uint64  // the classifier's init and the per-epoch shuffles
}

// DefaultReferenceLinearConfig returns the reference's settings for the
// ResNet and MobileNetV2 linear evaluations.
func DefaultReferenceLinearConfig() ReferenceLinearConfig {
	return ReferenceLinearConfig{Epochs: 100, BatchSize: 512, BaseLR: 0.05, MinLR: 1e-6, Momentum: 0.9}
}

func (c ReferenceLinearConfig) check() error {
	switch {
	case c.Epochs <= 0:
		return fmt.Errorf("reference linear: %d epochs: must be positive: %w", c.Epochs, ErrInput)
	case c.BatchSize <= 0:
		return fmt.Errorf("reference linear: batch size %d: must be positive: %w", c.BatchSize, ErrInput)
	case !(c.BaseLR > 0) || math.IsInf(c.BaseLR, 0):
		return fmt.Errorf("reference linear: base learning rate %v: must be positive and finite: %w", c.BaseLR, ErrInput)
	case !(c.MinLR >= 0) || math.IsInf(c.MinLR, 0):
		return fmt.Errorf("reference linear: minimum learning rate %v: must be non-negative and finite: %w", c.MinLR, ErrInput)
	case !(c.Momentum >= 0 && c.Momentum < 1):
		return fmt.Errorf("reference linear: momentum %v: must be in [0, 1): %w", c.Momentum, ErrInput)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("reference linear: weight decay %v: must be non-negative and finite: %w", c.WeightDecay, ErrInput)
	}
	return nil
}

// ReferenceLinear trains the reference's linear classifier and scores it
// on test (the evaluation transform's features). trainEpoch returns the
// training set's features for an epoch, each image under that epoch's
// augmentation, in a fixed order with the same labels every epoch; the
// rows are visited in a per-epoch shuffle. The weight starts as N(0, 0.01²)
// and the bias at 0, as the reference initialises fc / classifier; LARS
// adapts the weight's step and leaves the bias out of the trust ratio and
// the weight decay, as the reference's parameter groups do.
func ReferenceLinear(trainEpoch func(epoch int) (Features, error), test Features, classes int, cfg ReferenceLinearConfig) (*LinearResult, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	var (
		m        *LinearModel
		opt      optim.Optimizer
		lrs      []float64
		gW, gB   []float32
		xb, g    []float32
		perm     []int
		bs, step int
		labels   []int
		loss     float64
	)
	for epoch := range cfg.Epochs {
		train, err := trainEpoch(epoch)
		if err != nil {
			return nil, fmt.Errorf("reference linear: epoch %d features: %w", epoch, err)
		}
		n, d, c := train.Len(), train.Dim, classes
		if m == nil {
			if err := checkPair(train, test, classes); err != nil {
				return nil, fmt.Errorf("reference linear: %w", err)
			}
			m = &LinearModel{Dim: d, Classes: c, W: make([]float32, c*d), B: make([]float32, c)}
			rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
			for i := range m.W {
				m.W[i] = float32(0.01 * rng.NormFloat64())
			}
			gW, gB = make([]float32, c*d), make([]float32, c)
			params := []*optim.Param{
				{Name: "fc.weight", Shape: []int{c, d}, Data: m.W, Grad: gW},
				{Name: "fc.bias", Shape: []int{c}, Data: m.B, Grad: gB},
			}
			groups := optim.GroupParams(params, optim.GroupConfig{WDFactorForBias: 0, LARSExcludeBias: true})
			if opt, err = optim.New(optim.MethodLARS, groups, cfg.Momentum); err != nil {
				return nil, fmt.Errorf("reference linear: %w", err)
			}
			bs = min(cfg.BatchSize, n)
			iters := (n + bs - 1) / bs
			base := cfg.BaseLR * float64(cfg.BatchSize) / 256
			if lrs, err = optim.CosineScheduleIters(base, min(cfg.MinLR, base), cfg.Epochs*iters, 0, 0); err != nil {
				return nil, fmt.Errorf("reference linear: %w", err)
			}
			xb, g = make([]float32, bs*d), make([]float32, bs*c)
			perm = make([]int, n)
			labels = append([]int(nil), train.Labels...)
		} else {
			if err := train.check("train", classes); err != nil {
				return nil, fmt.Errorf("reference linear: epoch %d: %w", epoch, err)
			}
			if train.Dim != m.Dim || len(train.Labels) != len(labels) {
				return nil, fmt.Errorf("reference linear: epoch %d gave %d features of dimension %d, epoch 0 gave %d of %d: %w",
					epoch, train.Len(), train.Dim, len(labels), m.Dim, ErrInput)
			}
			for i, y := range train.Labels {
				if y != labels[i] {
					return nil, fmt.Errorf("reference linear: epoch %d: row %d is labelled %d, epoch 0 said %d: %w", epoch, i, y, labels[i], ErrInput)
				}
			}
		}
		for i := range perm {
			perm[i] = i
		}
		shuffle(perm, cfg.Seed, uint64(epoch))
		loss = 0
		batches := 0
		for lo := 0; lo < n; lo += bs {
			loss += m.batchGradients(train, perm[lo:min(lo+bs, n)], xb, g, gW, gB)
			batches++
			if err := opt.Step(lrs[step], cfg.WeightDecay); err != nil {
				return nil, fmt.Errorf("reference linear: step %d: %w", step, err)
			}
			step++
		}
		loss /= float64(batches)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("reference linear: training diverged in epoch %d (loss %v): %w", epoch, loss, ErrInput)
		}
	}
	top1, top5, err := m.Evaluate(test)
	if err != nil {
		return nil, err
	}
	return &LinearResult{Model: m, Top1: top1, Top5: top5, HasTop5: classes >= 5, TrainLoss: loss}, nil
}
