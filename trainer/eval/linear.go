package eval

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/sslight-go/sslight/trainer/optim"
)

// LinearConfig sets the linear probe's training ("fast mode": a linear
// classifier on precomputed frozen features, no augmentation).
type LinearConfig struct {
	Epochs      int     // passes over the train set
	BatchSize   int     // samples per SGD step; the last batch of an epoch may be smaller
	LR          float64 // learning rate at the first step
	FinalLR     float64 // learning rate the cosine schedule ends at
	Momentum    float64 // SGD momentum (torch semantics, no dampening, no Nesterov)
	WeightDecay float64 // L2 penalty on weight and bias, as torch.optim.SGD's weight_decay
	// Standardize scales every feature dimension to zero mean and unit
	// variance with the train set's statistics (applied to test features
	// too) before the classifier sees it.
	Standardize bool
	Seed        uint64 // seeds the per-epoch shuffles
}

// DefaultLinearConfig returns the fast mode's defaults: 30 epochs of SGD
// (momentum 0.9, batch 256, lr 0.1 decayed to 0 by a cosine, no weight
// decay) on standardised features.
//
// Standardisation is on by default because the probe compares backbones
// whose features differ in scale by orders of magnitude (a ResNet50's
// post-ReLU pooled features, a ViT's class token, raw pixels); one
// learning rate only suits all of them once every dimension has unit
// variance. It is an affine map of the input, so the classifier can express
// exactly the same decision functions; only the optimisation changes. The
// reference's protocols do the same thing in another form (MAE-style probes
// put a non-affine BatchNorm before the linear layer, whose eval-time form
// is this standardisation). Turn it off to run DINO's eval_linear
// arithmetic on raw features (and lower LR accordingly: DINO uses
// 0.001·batch/256).
func DefaultLinearConfig() LinearConfig {
	return LinearConfig{
		Epochs:      30,
		BatchSize:   256,
		LR:          0.1,
		Momentum:    0.9,
		Standardize: true,
	}
}

func (c LinearConfig) check() error {
	switch {
	case c.Epochs <= 0:
		return fmt.Errorf("linear: %d epochs: must be positive: %w", c.Epochs, ErrInput)
	case c.BatchSize <= 0:
		return fmt.Errorf("linear: batch size %d: must be positive: %w", c.BatchSize, ErrInput)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("linear: learning rate %v: must be positive and finite: %w", c.LR, ErrInput)
	case !(c.FinalLR >= 0) || c.FinalLR > c.LR:
		return fmt.Errorf("linear: final learning rate %v: must be in [0, LR=%v]: %w", c.FinalLR, c.LR, ErrInput)
	case !(c.Momentum >= 0 && c.Momentum < 1):
		return fmt.Errorf("linear: momentum %v: must be in [0, 1): %w", c.Momentum, ErrInput)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("linear: weight decay %v: must be non-negative and finite: %w", c.WeightDecay, ErrInput)
	}
	return nil
}

// LinearModel is a trained linear classifier: scores = W·x' + B, where x'
// is the feature x standardised (x' = (x − Mean)·Scale) when Mean is set and
// x itself otherwise.
type LinearModel struct {
	Dim, Classes int
	W            []float32 // Classes×Dim, row-major (torch's nn.Linear weight)
	B            []float32 // Classes
	Mean, Scale  []float32 // Dim each, or nil when the features are used as they are
}

// LinearResult is what the linear probe reports.
type LinearResult struct {
	Model     *LinearModel
	Top1      float64 // test top-1 accuracy in percent
	Top5      float64 // test top-5 accuracy in percent; meaningful only when HasTop5
	HasTop5   bool    // at least 5 classes
	TrainLoss float64 // mean cross-entropy over the last epoch's batches, before each step
}

// Linear trains a linear classifier (multinomial logistic regression: a
// linear layer and softmax cross-entropy) on frozen train features and
// evaluates it on the test features.
//
// Training follows torch: weight and bias start at zero (the problem is
// convex, so the start does not decide where it ends, and zero needs no
// random draw), each step takes the mean cross-entropy of a batch, and
// torch.optim.SGD (momentum, weight decay on both tensors) moves by the
// learning rate of a per-step cosine schedule from LR to FinalLR (DINO's
// eval_linear uses the same cosine stepped per epoch). The train set is
// shuffled every epoch by a permutation drawn from (Seed, epoch), so a run
// is reproducible on any machine and any GOMAXPROCS.
func Linear(train, test Features, classes int, cfg LinearConfig) (*LinearResult, error) {
	if err := checkPair(train, test, classes); err != nil {
		return nil, fmt.Errorf("linear: %w", err)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	m, loss, err := trainLinear(train, classes, cfg, func(epoch int, perm []int) {
		for i := range perm {
			perm[i] = i
		}
		shuffle(perm, cfg.Seed, uint64(epoch))
	})
	if err != nil {
		return nil, err
	}
	top1, top5, err := m.Evaluate(test)
	if err != nil {
		return nil, err
	}
	return &LinearResult{Model: m, Top1: top1, Top5: top5, HasTop5: classes >= 5, TrainLoss: loss}, nil
}

// trainLinear runs the training loop; order rearranges perm (the previous
// epoch's order, 0…n−1 at the start) into the sample order of an epoch.
// The inputs have been checked.
func trainLinear(train Features, classes int, cfg LinearConfig, order func(epoch int, perm []int)) (*LinearModel, float64, error) {
	n, d, c := train.Len(), train.Dim, classes
	m := &LinearModel{Dim: d, Classes: c, W: make([]float32, c*d), B: make([]float32, c)}
	if cfg.Standardize {
		m.Mean, m.Scale = standardisation(train)
	}
	gW, gB := make([]float32, c*d), make([]float32, c)
	params := []*optim.Param{
		{Name: "linear.weight", Shape: []int{c, d}, Data: m.W, Grad: gW},
		{Name: "linear.bias", Shape: []int{c}, Data: m.B, Grad: gB},
	}
	opt, err := optim.NewSGD([]optim.Group{{Params: params}}, cfg.Momentum)
	if err != nil {
		return nil, 0, fmt.Errorf("linear: %w", err)
	}
	bs := min(cfg.BatchSize, n)
	iters := (n + bs - 1) / bs
	lrs, err := optim.CosineScheduleIters(cfg.LR, cfg.FinalLR, cfg.Epochs*iters, 0, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("linear: %w", err)
	}

	xb := make([]float32, bs*d)
	g := make([]float32, bs*c) // logits, then the loss gradient
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	var loss float64
	step := 0
	for epoch := range cfg.Epochs {
		order(epoch, perm)
		loss = 0
		for lo := 0; lo < n; lo += bs {
			loss += m.batchGradients(train, perm[lo:min(lo+bs, n)], xb, g, gW, gB)
			if err := opt.Step(lrs[step], cfg.WeightDecay); err != nil {
				return nil, 0, fmt.Errorf("linear: step %d: %w", step, err)
			}
			step++
		}
		loss /= float64(iters)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, 0, fmt.Errorf("linear: training diverged in epoch %d (loss %v); lower the learning rate: %w", epoch, loss, ErrInput)
		}
	}
	return m, loss, nil
}

// batchGradients puts the mean softmax cross-entropy gradient of the
// given rows of train into gW and gB (xb and g are scratch of at least
// len(rows)·Dim and len(rows)·Classes) and returns the batch's mean loss.
func (m *LinearModel) batchGradients(train Features, rows []int, xb, g, gW, gB []float32) float64 {
	var impl gonum.Implementation
	mb, d, c := len(rows), m.Dim, m.Classes
	for r, i := range rows {
		m.input(train.Row(i), xb[r*d:(r+1)*d])
	}
	impl.Sgemm(blas.NoTrans, blas.Trans, mb, c, d, 1, xb, d, m.W, d, 0, g, c)
	var loss float64
	for r, i := range rows {
		loss += softmaxGrad(g[r*c:(r+1)*c], m.B, train.Labels[i], mb)
	}
	// dW = Gᵀ·X, dB = column sums of G.
	impl.Sgemm(blas.Trans, blas.NoTrans, c, d, mb, 1, g, c, xb, d, 0, gW, d)
	clear(gB)
	for r := range mb {
		for k, v := range g[r*c : (r+1)*c] {
			gB[k] += v
		}
	}
	return loss / float64(mb)
}

// softmaxGrad turns one row of logits (without bias) into the gradient of
// the batch-mean cross-entropy with respect to them, (softmax − onehot)/mb,
// and returns the row's loss. The softmax is computed in float64 after
// subtracting the largest logit, so no exponential overflows.
func softmaxGrad(z, bias []float32, target, mb int) float64 {
	mx := math.Inf(-1)
	for k := range z {
		z[k] += bias[k]
		mx = max(mx, float64(z[k]))
	}
	var sum float64
	for _, v := range z {
		sum += math.Exp(float64(v) - mx)
	}
	loss := math.Log(sum) - (float64(z[target]) - mx)
	inv := 1 / float64(mb)
	for k, v := range z {
		p := math.Exp(float64(v)-mx) / sum
		if k == target {
			p--
		}
		z[k] = float32(p * inv)
	}
	return loss
}

// standardisation returns the train set's per-dimension mean and the
// inverse of its population standard deviation (1 where a dimension is
// constant, as scikit-learn's StandardScaler does: it stays centred instead
// of being blown up).
func standardisation(f Features) (mean, scale []float32) {
	d, n := f.Dim, f.Len()
	sum := make([]float64, d)
	for i := range n {
		for j, v := range f.Row(i) {
			sum[j] += float64(v)
		}
	}
	mu := make([]float64, d)
	for j := range mu {
		mu[j] = sum[j] / float64(n)
	}
	// Two passes: the sum of squared deviations does not cancel the way
	// E[x²]−E[x]² does for features with a large mean.
	clear(sum)
	for i := range n {
		for j, v := range f.Row(i) {
			dv := float64(v) - mu[j]
			sum[j] += dv * dv
		}
	}
	mean, scale = make([]float32, d), make([]float32, d)
	for j := range d {
		mean[j] = float32(mu[j])
		scale[j] = 1
		if sd := math.Sqrt(sum[j] / float64(n)); sd > 1e-12 {
			scale[j] = float32(1 / sd)
		}
	}
	return mean, scale
}

// input writes the classifier's input for feature x into dst: x
// standardised, or x itself.
func (m *LinearModel) input(x, dst []float32) {
	if m.Mean == nil {
		copy(dst, x)
		return
	}
	for j, v := range x {
		dst[j] = (v - m.Mean[j]) * m.Scale[j]
	}
}

// Scores returns the class scores (logits) of feature x.
func (m *LinearModel) Scores(x []float32) ([]float32, error) {
	if len(x) != m.Dim {
		return nil, fmt.Errorf("linear scores: feature of dimension %d, model takes %d: %w", len(x), m.Dim, ErrInput)
	}
	in := make([]float32, m.Dim)
	m.input(x, in)
	out := make([]float32, m.Classes)
	for k := range out {
		var s float32
		for j, v := range m.W[k*m.Dim : (k+1)*m.Dim] {
			s += v * in[j]
		}
		out[k] = s + m.B[k]
	}
	return out, nil
}

// evalChunk is the number of test rows scored per BLAS call.
const evalChunk = 256

// Evaluate returns the model's top-1 and top-5 accuracy (percent) on test;
// top-5 is 0 with fewer than 5 classes. Ties between scores are broken by
// the lower class index.
func (m *LinearModel) Evaluate(test Features) (top1, top5 float64, err error) {
	if err := test.check("test", m.Classes); err != nil {
		return 0, 0, fmt.Errorf("linear evaluate: %w", err)
	}
	if test.Dim != m.Dim {
		return 0, 0, fmt.Errorf("linear evaluate: test features have dimension %d, model takes %d: %w", test.Dim, m.Dim, ErrInput)
	}
	n, d, c := test.Len(), m.Dim, m.Classes
	chunks := (n + evalChunk - 1) / evalChunk
	hits1, hits5 := make([]int, chunks), make([]int, chunks)
	parallelRange(chunks, func(clo, chi int) {
		var impl gonum.Implementation
		x := make([]float32, evalChunk*d)
		s := make([]float32, evalChunk*c)
		for ch := clo; ch < chi; ch++ {
			lo := ch * evalChunk
			mb := min(evalChunk, n-lo)
			for r := range mb {
				m.input(test.Row(lo+r), x[r*d:(r+1)*d])
			}
			impl.Sgemm(blas.NoTrans, blas.Trans, mb, c, d, 1, x, d, m.W, d, 0, s, c)
			for r := range mb {
				row := s[r*c : (r+1)*c]
				for k := range row {
					row[k] += m.B[k]
				}
				rank := rankOf(row, test.Labels[lo+r])
				if rank == 0 {
					hits1[ch]++
				}
				if c >= 5 && rank < 5 {
					hits5[ch]++
				}
			}
		}
	})
	var h1, h5 int
	for i := range hits1 {
		h1 += hits1[i]
		h5 += hits5[i]
	}
	return percent(h1, n), percent(h5, n), nil
}

// shuffle permutes perm in place by Fisher–Yates with a PCG stream seeded by
// (seed, epoch). The bounded draws are written out (Lemire's
// multiply-and-reject) rather than taken from math/rand, whose derived
// methods may change between Go releases; PCG's output is fixed by its
// definition, so the order is the same on every Go version.
func shuffle(perm []int, seed, epoch uint64) {
	src := rand.NewPCG(seed, epoch)
	for i := len(perm) - 1; i > 0; i-- {
		j := boundedDraw(src, uint64(i+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
}

// boundedDraw returns a uniform integer in [0, n) from src.
func boundedDraw(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}
