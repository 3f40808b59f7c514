package optim

import (
	"fmt"
	"math"
	"sort"
)

// AdamWConfig holds AdamW's fixed hyper-parameters.
type AdamWConfig struct {
	Beta1, Beta2 float64
	Eps          float64
}

// DefaultAdamWConfig returns torch 1.13's AdamW defaults, which the
// reference uses (betas 0.9/0.999, eps 1e-8; amsgrad off).
func DefaultAdamWConfig() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// AdamW is torch 1.13's torch.optim.AdamW (single-tensor path, amsgrad off).
// For every parameter with a gradient, with t its own update count
// (1-based):
//
//	p *= 1 − lr·wd                            (decoupled weight decay)
//	m = β1·m + (1−β1)·g
//	v = β2·v + (1−β2)·g²
//	p −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
//
// State per parameter: step, exp_avg (m), exp_avg_sq (v).
type AdamW struct {
	set   paramSet
	cfg   AdamWConfig
	bufs  bufferState // exp_avg, exp_avg_sq
	steps []int64     // per entry; 0 = no state
}

// AdamW buffer names, as in torch's state dict.
const (
	adamExpAvg   = "exp_avg"
	adamExpAvgSq = "exp_avg_sq"
)

// NewAdamW returns an AdamW optimiser over groups.
func NewAdamW(groups []Group, cfg AdamWConfig) (*AdamW, error) {
	if !isFinite(cfg.Beta1) || !isFinite(cfg.Beta2) || !isFinite(cfg.Eps) ||
		cfg.Beta1 < 0 || cfg.Beta1 >= 1 || cfg.Beta2 < 0 || cfg.Beta2 >= 1 || cfg.Eps < 0 {
		return nil, fmt.Errorf("AdamW: betas (%v, %v) must be in [0, 1) and eps %v ≥ 0: %w", cfg.Beta1, cfg.Beta2, cfg.Eps, ErrInvalidParams)
	}
	set, err := newParamSet(groups)
	if err != nil {
		return nil, fmt.Errorf("AdamW: %w", err)
	}
	return &AdamW{
		set:   set,
		cfg:   cfg,
		bufs:  newBufferState(len(set.entries), adamExpAvg, adamExpAvgSq),
		steps: make([]int64, len(set.entries)),
	}, nil
}

// Step applies one AdamW update; see Optimizer.Step.
func (o *AdamW) Step(lr, wd float64) error {
	if err := o.set.check(); err != nil {
		return fmt.Errorf("AdamW step: %w", err)
	}
	b1, b2 := o.cfg.Beta1, o.cfg.Beta2
	// Scalars as torch forms them: in float64 on the Python side, rounded
	// to float32 where they meet a tensor.
	beta1, beta2 := float32(b1), float32(b2)
	c1, c2 := float32(1-b1), float32(1-b2)
	eps := float32(o.cfg.Eps)
	for i, e := range o.set.entries {
		g := e.p.Grad
		if g == nil {
			continue
		}
		p := e.p.Data
		o.bufs.ensure(i, len(p))
		o.steps[i]++
		t := float64(o.steps[i])
		bc1 := 1 - math.Pow(b1, t)
		bc2 := 1 - math.Pow(b2, t)
		decay := float32(1 - lr*o.set.weightDecay(e.group, wd))
		negStep := float32(-(lr / bc1))
		bc2Sqrt := float32(math.Sqrt(bc2))
		adamwUpdate(p, g, o.bufs.bufs[0][i], o.bufs.bufs[1][i], decay, beta1, c1, beta2, c2, bc2Sqrt, eps, negStep)
	}
	return nil
}

// adamwUpdate is the element-wise part of the step, one float32 rounding per
// reference tensor op: param.mul_, exp_avg.mul_().add_(alpha),
// exp_avg_sq.mul_().addcmul_(value), (sqrt(v)/bc2_sqrt).add_(eps) and
// param.addcdiv_(value), whose kernel computes (value·m)/denom.
func adamwUpdate(p, g, m, v []float32, decay, beta1, c1, beta2, c2, bc2Sqrt, eps, negStep float32) {
	g = g[:len(p)]
	m = m[:len(p)]
	v = v[:len(p)]
	for j := range p {
		x := float32(p[j] * decay)
		gj := g[j]
		mj := float32(beta1*m[j]) + float32(c1*gj)
		vj := float32(beta2*v[j]) + float32(float32(c2*gj)*gj)
		m[j] = mj
		v[j] = vj
		denom := float32(float32(math.Sqrt(float64(vj)))/bc2Sqrt) + eps
		p[j] = x + float32(negStep*mj)/denom
	}
}

// State returns copies of exp_avg and exp_avg_sq and the step counts.
func (o *AdamW) State() State {
	var s State
	o.bufs.export(&o.set, &s)
	s.Steps = make(map[string]int64)
	for i, e := range o.set.entries {
		if o.steps[i] > 0 {
			s.Steps[e.p.Name] = o.steps[i]
		}
	}
	return s
}

// LoadState replaces the moments and step counts. A parameter has either
// both buffers and a positive step count, or none of them.
func (o *AdamW) LoadState(s State) error {
	names := make([]string, 0, len(s.Steps))
	for name := range s.Steps {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := o.set.index[name]; !ok {
			return fmt.Errorf("AdamW: step count for unknown parameter %q: %w", name, ErrState)
		}
		if s.Steps[name] <= 0 {
			return fmt.Errorf("AdamW: parameter %q: step count %d must be positive: %w", name, s.Steps[name], ErrState)
		}
	}
	// Check buffer/step agreement before load mutates anything.
	for _, e := range o.set.entries {
		_, hasBuf := s.Buffers[StateKey(e.p.Name, adamExpAvg)]
		_, hasStep := s.Steps[e.p.Name]
		if hasBuf != hasStep {
			return fmt.Errorf("AdamW: parameter %q: exp_avg present %v but step count present %v: %w", e.p.Name, hasBuf, hasStep, ErrState)
		}
	}
	present, err := o.bufs.load(&o.set, s)
	if err != nil {
		return fmt.Errorf("AdamW: %w", err)
	}
	for i, e := range o.set.entries {
		o.steps[i] = 0
		if present[i] {
			o.steps[i] = s.Steps[e.p.Name]
		}
	}
	return nil
}
