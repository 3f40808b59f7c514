package nn

import (
	"fmt"
	"math"
	"sync"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BNStats are one BatchNorm module's running statistics. Every op built
// from the module points at the same BNStats, so views of different sizes
// and separate graphs update one set of statistics, as a torch module does.
type BNStats struct {
	mu                sync.Mutex
	Mean, Var         []float32
	NumBatchesTracked int64
	Momentum          float64 // weight of the new batch statistics (torch: 0.1)
	Eps               float64 // torch: 1e-5
}

// NewBNStats returns statistics for c channels as torch initialises them:
// mean 0, variance 1, momentum 0.1, eps 1e-5.
func NewBNStats(c int) *BNStats {
	s := &BNStats{Mean: make([]float32, c), Var: make([]float32, c), Momentum: 0.1, Eps: 1e-5}
	for i := range s.Var {
		s.Var[i] = 1
	}
	return s
}

// BatchNormOp normalises x [N, C, ...] per channel and applies gamma and
// beta [C]. In training it uses the batch statistics (biased variance) and
// updates stats with the unbiased variance; otherwise it uses stats. The
// backward recomputes what it needs from x and dy instead of keeping state
// from the forward pass (once per backward pass, shared by the three
// gradient ops), so an op node can be run by any machine in any order.
func BatchNormOp(x, gamma, beta *gorgonia.Node, stats *BNStats, training bool) (*gorgonia.Node, error) {
	if stats == nil {
		return nil, fmt.Errorf("BatchNorm: nil statistics")
	}
	return apply(&bnKernel{stats: stats, training: training}, x, gamma, beta)
}

// BatchNormActOp is BatchNormOp followed by a (ReLU or ReLU6) in one op: the
// normalised values are written once, already activated, and the backward
// masks the incoming gradient with the output instead of running a separate
// activation pass over the whole tensor. The results equal the two ops'.
func BatchNormActOp(x, gamma, beta *gorgonia.Node, stats *BNStats, training bool, a Activation) (*gorgonia.Node, error) {
	if stats == nil {
		return nil, fmt.Errorf("BatchNorm: nil statistics")
	}
	if a != ReLU && a != ReLU6 {
		return nil, fmt.Errorf("BatchNorm: cannot fuse activation %v (only ReLU and ReLU6)", a)
	}
	return apply(&bnKernel{stats: stats, training: training, act: a.code()}, x, gamma, beta)
}

type bnKernel struct {
	stats    *BNStats
	training bool
	act      actCode // activation fused after the normalisation, if any

	// The three gradient ops (dx, dγ, dβ) of one backward pass need the
	// same per-channel sums over x and dy, each a full pass over both
	// tensors; the first op to run computes them and the other two reuse
	// them. An entry is valid for the forward run it follows (gen counts
	// forward runs), for the dy buffer it was computed from, and for each
	// gradient op once: an op asking twice means a new backward pass.
	mu    sync.Mutex
	gen   uint64
	cache bnSumsCache
}

type bnSumsCache struct {
	gen    uint64
	grad   *float32
	served [3]bool
	sums   [][4]float64 // per channel: sum x, x², dy, dy·x
}

// backwardSums returns the per-channel sums the gradient wrt input wrt
// needs, from the cache when another gradient op of this pass made them.
func (k *bnKernel) backwardSums(wrt int, x, grad, out []float32, n, c, sp int) [][4]float64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := &k.cache
	if e.gen == k.gen && e.grad == &grad[0] && len(e.sums) == c && !e.served[wrt] {
		e.served[wrt] = true
		return e.sums
	}
	if len(e.sums) != c {
		e.sums = make([][4]float64, c)
	}
	// Channels are independent: the split over workers does not change any
	// sum, so the results do not depend on scheduling.
	parallelFor(c, func(_, lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			sx, sxx, sdy, sdyx := channelSums(x, grad, out, k.act, n, c, sp, ch)
			e.sums[ch] = [4]float64{sx, sxx, sdy, sdyx}
		}
	})
	e.gen, e.grad, e.served = k.gen, &grad[0], [3]bool{}
	e.served[wrt] = true
	return e.sums
}

func (k *bnKernel) name() string {
	if k.act != actNone {
		return fmt.Sprintf("BatchNorm%s{train=%v %p}", k.act, k.training, k.stats)
	}
	return fmt.Sprintf("BatchNorm{train=%v %p}", k.training, k.stats)
}

func (k *bnKernel) diffWRT() []bool { return []bool{true, true, true} }

func (k *bnKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x := in[0]
	if x.Dims() < 2 {
		return nil, fmt.Errorf("x %v needs at least [N, C]", x)
	}
	c := x[1]
	if in[1].TotalSize() != c || in[2].TotalSize() != c || in[1].Dims() != 1 || in[2].Dims() != 1 {
		return nil, fmt.Errorf("gamma %v and beta %v must be [%d]", in[1], in[2], c)
	}
	if len(k.stats.Mean) != c {
		return nil, fmt.Errorf("statistics hold %d channels, x has %d", len(k.stats.Mean), c)
	}
	if k.training && x[0]*shapeProduct(x[2:]) < 2 {
		return nil, fmt.Errorf("training needs more than one value per channel, x is %v", x)
	}
	return x.Clone(), nil
}

// bnDims returns batch, channels and spatial size.
func bnDims(s tensor.Shape) (n, c, sp int) {
	return s[0], s[1], shapeProduct(s[2:])
}

// channelSumsGo returns, for channel ch, the sums of x and x² and, when
// grad is not nil, of dy and dy·x, in one pass with float64 accumulators;
// dy is masked by a fused activation's output y (act ≠ actNone).
func channelSumsGo(x, grad, y []float32, act actCode, n, c, sp, ch int) (sx, sxx, sdy, sdyx float64) {
	for b := 0; b < n; b++ {
		xs := x[(b*c+ch)*sp : (b*c+ch+1)*sp]
		if grad == nil {
			for _, v := range xs {
				f := float64(v)
				sx += f
				sxx += f * f
			}
			continue
		}
		gs := grad[(b*c+ch)*sp : (b*c+ch+1)*sp]
		var ys []float32
		if act != actNone {
			ys = y[(b*c+ch)*sp : (b*c+ch+1)*sp]
		}
		for i, v := range xs {
			f, g := float64(v), float64(gs[i])
			if act != actNone && !act.passes(ys[i]) {
				g = 0
			}
			sx += f
			sxx += f * f
			sdy += g
			sdyx += g * f
		}
	}
	return sx, sxx, sdy, sdyx
}

// bnApplyGo writes act(x·scale + shift) into channel ch of out.
func bnApplyGo(out, x []float32, n, c, sp, ch int, scale, shift float32, act actCode) {
	for b := 0; b < n; b++ {
		o := out[(b*c+ch)*sp : (b*c+ch+1)*sp]
		xs := x[(b*c+ch)*sp : (b*c+ch+1)*sp]
		for i, v := range xs {
			o[i] = act.apply(v*scale + shift)
		}
	}
}

// bnCoef holds what BatchNorm's input gradient needs of one channel:
// gamma/std, the mean, 1/std, mean(dy) and mean(dy·xhat).
type bnCoef [5]float64

// bnDxGo writes channel ch of BatchNorm's input gradient: with the batch
// statistics (train) dx = gamma/std·(dy − mean(dy) − xhat·mean(dy·xhat)),
// with the running statistics (constants) dx = dy·gamma/std; dy is masked
// by a fused activation's output y.
func bnDxGo(dx, x, dy, y []float32, act actCode, n, c, sp, ch int, train bool, k *bnCoef) {
	g, mean, inv, mdy, mdyx := k[0], k[1], k[2], k[3], k[4]
	for b := 0; b < n; b++ {
		off := (b*c + ch) * sp
		xs, d := x[off:off+sp], dx[off:off+sp]
		for i, gv := range dy[off : off+sp] {
			gf := float64(gv)
			if act != actNone && !act.passes(y[off+i]) {
				gf = 0
			}
			if !train {
				d[i] = float32(gf * g)
				continue
			}
			xhat := (float64(xs[i]) - mean) * inv
			d[i] = float32(g * (gf - mdy - xhat*mdyx))
		}
	}
}

// moments turns sums over cnt values into the mean and the biased variance.
func moments(sx, sxx, cnt float64) (mean, variance float64) {
	mean = sx / cnt
	return mean, max(sxx/cnt-mean*mean, 0)
}

func (k *bnKernel) forward(out []float32, in [][]float32, shapes []tensor.Shape) {
	x, gamma, beta := in[0], in[1], in[2]
	n, c, sp := bnDims(shapes[0])
	k.mu.Lock()
	k.gen++ // a new forward run: the backward's cached sums are stale
	k.mu.Unlock()
	st := k.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	parallelFor(c, func(_, lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			var mean, variance float64
			if k.training {
				cnt := float64(n * sp)
				sx, sxx, _, _ := channelSums(x, nil, nil, actNone, n, c, sp, ch)
				mean, variance = moments(sx, sxx, cnt)
				m := st.Momentum
				st.Mean[ch] = float32((1-m)*float64(st.Mean[ch]) + m*mean)
				st.Var[ch] = float32((1-m)*float64(st.Var[ch]) + m*variance*cnt/(cnt-1))
			} else {
				mean, variance = float64(st.Mean[ch]), float64(st.Var[ch])
			}
			inv := 1 / math.Sqrt(variance+st.Eps)
			scale := float32(float64(gamma[ch]) * inv)
			shift := float32(float64(beta[ch]) - mean*float64(gamma[ch])*inv)
			bnApply(out, x, n, c, sp, ch, scale, shift, k.act)
		}
	})
	if k.training {
		st.NumBatchesTracked++
	}
}

// overwrites: dx, dγ and dβ are each written element by element.
func (k *bnKernel) overwrites(int) bool { return true }

func (k *bnKernel) backward(wrt int, dIn, grad, out []float32, in [][]float32, shapes []tensor.Shape) {
	x, gamma := in[0], in[1]
	n, c, sp := bnDims(shapes[0])
	st := k.stats
	st.mu.Lock()
	eps := st.Eps
	var runMean, runVar []float32
	if !k.training {
		runMean = append([]float32(nil), st.Mean...)
		runVar = append([]float32(nil), st.Var...)
	}
	st.mu.Unlock()
	cnt := float64(n * sp)
	sums := k.backwardSums(wrt, x, grad, out, n, c, sp)
	perChannel := func(_, lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			sx, sxx, sdy, sdyx := sums[ch][0], sums[ch][1], sums[ch][2], sums[ch][3]
			mean, variance := moments(sx, sxx, cnt)
			if !k.training {
				mean, variance = float64(runMean[ch]), float64(runVar[ch])
			}
			inv := 1 / math.Sqrt(variance+eps)
			// sum(dy·xhat) = (sum(dy·x) − mean·sum(dy)) / std.
			sdyx = (sdyx - mean*sdy) * inv
			switch wrt {
			case 1:
				dIn[ch] = float32(sdyx)
			case 2:
				dIn[ch] = float32(sdy)
			case 0:
				coef := bnCoef{float64(gamma[ch]) * inv, mean, inv, sdy / cnt, sdyx / cnt}
				bnDx(dIn, x, grad, out, k.act, n, c, sp, ch, k.training, &coef)
			}
		}
	}
	if wrt != 0 {
		perChannel(0, 0, c) // dγ and dβ are C values from the sums
		return
	}
	parallelFor(c, perChannel)
}

// LayerNormOp normalises x over its last dimension D and applies weight and
// bias [D]: torch.nn.LayerNorm(D, eps).
func LayerNormOp(x, weight, bias *gorgonia.Node, eps float64) (*gorgonia.Node, error) {
	return apply(&lnKernel{eps: eps}, x, weight, bias)
}

type lnKernel struct{ eps float64 }

func (k *lnKernel) name() string    { return fmt.Sprintf("LayerNorm{eps=%g}", k.eps) }
func (k *lnKernel) diffWRT() []bool { return []bool{true, true, true} }

func (k *lnKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x := in[0]
	if x.Dims() < 1 {
		return nil, fmt.Errorf("x is a scalar")
	}
	d := x[x.Dims()-1]
	if in[1].Dims() != 1 || in[1][0] != d || in[2].Dims() != 1 || in[2][0] != d {
		return nil, fmt.Errorf("weight %v and bias %v must be [%d]", in[1], in[2], d)
	}
	return x.Clone(), nil
}

func rowMoments(xs []float32, eps float64) (mean, inv float64) {
	var s float64
	for _, v := range xs {
		s += float64(v)
	}
	mean = s / float64(len(xs))
	var sq float64
	for _, v := range xs {
		d := float64(v) - mean
		sq += d * d
	}
	return mean, 1 / math.Sqrt(sq/float64(len(xs))+eps)
}

func (k *lnKernel) forward(out []float32, in [][]float32, shapes []tensor.Shape) {
	x, w, b := in[0], in[1], in[2]
	d := len(w)
	rows := len(x) / d
	parallelFor(rows, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			xs := x[r*d : (r+1)*d]
			o := out[r*d : (r+1)*d]
			mean, inv := rowMoments(xs, k.eps)
			for i, v := range xs {
				o[i] = float32((float64(v)-mean)*inv)*w[i] + b[i]
			}
		}
	})
}

func (k *lnKernel) backward(wrt int, dIn, grad, _ []float32, in [][]float32, shapes []tensor.Shape) {
	x, w := in[0], in[1]
	d := len(w)
	rows := len(x) / d
	if wrt != 0 {
		// Parameter gradients: reduce over rows, per-worker partial sums.
		parts := make([][]float64, numWorkers(rows))
		parallelFor(rows, func(wk, lo, hi int) {
			acc := make([]float64, d)
			parts[wk] = acc
			for r := lo; r < hi; r++ {
				gs := grad[r*d : (r+1)*d]
				if wrt == 2 {
					for i, g := range gs {
						acc[i] += float64(g)
					}
					continue
				}
				xs := x[r*d : (r+1)*d]
				mean, inv := rowMoments(xs, k.eps)
				for i, g := range gs {
					acc[i] += float64(g) * (float64(xs[i]) - mean) * inv
				}
			}
		})
		for i := range dIn {
			var s float64
			for _, p := range parts {
				if p != nil {
					s += p[i]
				}
			}
			dIn[i] = float32(s)
		}
		return
	}
	parallelFor(rows, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			xs := x[r*d : (r+1)*d]
			gs := grad[r*d : (r+1)*d]
			mean, inv := rowMoments(xs, k.eps)
			var m1, m2 float64 // mean(g*w), mean(g*w*xhat)
			for i, g := range gs {
				gw := float64(g) * float64(w[i])
				m1 += gw
				m2 += gw * (float64(xs[i]) - mean) * inv
			}
			m1 /= float64(d)
			m2 /= float64(d)
			o := dIn[r*d : (r+1)*d]
			for i, g := range gs {
				xhat := (float64(xs[i]) - mean) * inv
				o[i] = float32(inv * (float64(g)*float64(w[i]) - m1 - xhat*m2))
			}
		}
	})
}
