package optim

import (
	"fmt"
	"math"
)

// DefaultLARSEta is the trust coefficient of the reference's LARS.
const DefaultLARSEta = 0.001

// LARSConfig holds the LARS hyper-parameters that do not change per step.
type LARSConfig struct {
	Momentum float64 // SOLVER.MOMENTUM, 0.9 in every reference config
	Eta      float64 // trust coefficient, DefaultLARSEta
}

// LARS is the reference's LARS optimiser (sslight.utils.optimizer.LARS,
// itself DINO's). For every parameter with a gradient:
//
//	dp = g + wd·p
//	unless the group is LARSExclude:
//	    dp *= eta·‖p‖/‖dp‖   when ‖p‖ > 0 and ‖dp‖ > 0
//	mu = momentum·mu + dp    (mu starts at zero)
//	p -= lr·mu
//
// A parameter without a gradient is untouched and gets no state. Weight
// decay is applied even when it is zero (g + 0·p), as the reference does.
type LARS struct {
	set paramSet
	cfg LARSConfig
	mu  bufferState
}

// larsBuffer is torch's name for LARS's momentum buffer.
const larsBuffer = "mu"

// NewLARS returns a LARS optimiser over groups (usually from GroupParams).
func NewLARS(groups []Group, cfg LARSConfig) (*LARS, error) {
	if !isFinite(cfg.Momentum) || !isFinite(cfg.Eta) {
		return nil, fmt.Errorf("LARS: momentum %v and eta %v must be finite: %w", cfg.Momentum, cfg.Eta, ErrInvalidParams)
	}
	set, err := newParamSet(groups)
	if err != nil {
		return nil, fmt.Errorf("LARS: %w", err)
	}
	return &LARS{set: set, cfg: cfg, mu: newBufferState(len(set.entries), larsBuffer)}, nil
}

// Step applies one LARS update; see Optimizer.Step.
func (o *LARS) Step(lr, wd float64) error {
	if err := o.set.check(); err != nil {
		return fmt.Errorf("LARS step: %w", err)
	}
	// torch rounds every Python scalar to float32 when it meets a float32
	// tensor; so do we, once per step.
	lr32 := float32(lr)
	mom := float32(o.cfg.Momentum)
	eta := float32(o.cfg.Eta)
	for i, e := range o.set.entries {
		g := e.p.Grad
		if g == nil {
			continue
		}
		p := e.p.Data
		wdg := float32(o.set.weightDecay(e.group, wd))
		o.mu.ensure(i, len(p))
		mu := o.mu.bufs[0][i]
		q := float32(1)
		if !o.set.groups[e.group].LARSExclude {
			pp, dd := larsSumSquares(p, g, wdg)
			pn := float32(math.Sqrt(pp))
			dn := float32(math.Sqrt(dd))
			if pn > 0 && dn > 0 {
				q = float32(eta*pn) / dn
			}
		}
		larsUpdate(p, g, mu, wdg, q, mom, lr32)
	}
	return nil
}

// larsUpdate is the element-wise part of the step; each reference tensor op
// is one float32 rounding (q = 1 when the group is excluded from the
// adaptation, which multiplies exactly).
func larsUpdate(p, g, mu []float32, wd, q, mom, lr float32) {
	g = g[:len(p)]
	mu = mu[:len(p)]
	for j := range p {
		dp := g[j] + float32(wd*p[j])
		m := float32(mom*mu[j]) + float32(dp*q)
		mu[j] = m
		p[j] -= float32(lr * m)
	}
}

// State returns a copy of every momentum buffer ("mu").
func (o *LARS) State() State {
	var s State
	o.mu.export(&o.set, &s)
	return s
}

// LoadState replaces the momentum buffers; State.Steps must be empty.
func (o *LARS) LoadState(s State) error {
	if len(s.Steps) != 0 {
		return fmt.Errorf("LARS: state has step counts, which LARS does not keep: %w", ErrState)
	}
	if _, err := o.mu.load(&o.set, s); err != nil {
		return fmt.Errorf("LARS: %w", err)
	}
	return nil
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
