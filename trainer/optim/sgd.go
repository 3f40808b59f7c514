package optim

import "fmt"

// SGD is torch.optim.SGD as the reference trainer builds it (momentum from
// SOLVER.MOMENTUM, no dampening, no Nesterov). For every parameter with a
// gradient:
//
//	dp = g + wd·p               (skipped when wd is 0, as torch does)
//	buf = dp                    on the parameter's first update
//	buf = momentum·buf + dp     afterwards
//	p -= lr·buf                 (p -= lr·dp when momentum is 0: no buffer)
type SGD struct {
	set      paramSet
	momentum float64
	buf      bufferState
}

// sgdBuffer is torch's name for SGD's momentum buffer.
const sgdBuffer = "momentum_buffer"

// NewSGD returns an SGD optimiser with the given momentum over groups.
func NewSGD(groups []Group, momentum float64) (*SGD, error) {
	if !isFinite(momentum) {
		return nil, fmt.Errorf("SGD: momentum %v must be finite: %w", momentum, ErrInvalidParams)
	}
	set, err := newParamSet(groups)
	if err != nil {
		return nil, fmt.Errorf("SGD: %w", err)
	}
	return &SGD{set: set, momentum: momentum, buf: newBufferState(len(set.entries), sgdBuffer)}, nil
}

// Step applies one SGD update; see Optimizer.Step.
func (o *SGD) Step(lr, wd float64) error {
	if err := o.set.check(); err != nil {
		return fmt.Errorf("SGD step: %w", err)
	}
	lr32 := float32(lr)
	mom := float32(o.momentum)
	for i, e := range o.set.entries {
		g := e.p.Grad
		if g == nil {
			continue
		}
		p := e.p.Data
		g = g[:len(p)]
		wdg := o.set.weightDecay(e.group, wd)
		wd32 := float32(wdg)
		switch {
		case o.momentum == 0:
			for j := range p {
				dp := g[j]
				if wdg != 0 {
					dp += float32(wd32 * p[j])
				}
				p[j] -= float32(lr32 * dp)
			}
		case !o.buf.has(i):
			// torch clones dp into the buffer on the first update.
			o.buf.ensure(i, len(p))
			buf := o.buf.bufs[0][i][:len(p)]
			for j := range p {
				dp := g[j]
				if wdg != 0 {
					dp += float32(wd32 * p[j])
				}
				buf[j] = dp
				p[j] -= float32(lr32 * dp)
			}
		default:
			buf := o.buf.bufs[0][i][:len(p)]
			for j := range p {
				dp := g[j]
				if wdg != 0 {
					dp += float32(wd32 * p[j])
				}
				b := float32(mom*buf[j]) + dp
				buf[j] = b
				p[j] -= float32(lr32 * b)
			}
		}
	}
	return nil
}

// State returns a copy of every momentum buffer ("momentum_buffer").
func (o *SGD) State() State {
	var s State
	o.buf.export(&o.set, &s)
	return s
}

// LoadState replaces the momentum buffers; State.Steps must be empty.
func (o *SGD) LoadState(s State) error {
	if len(s.Steps) != 0 {
		return fmt.Errorf("SGD: state has step counts, which SGD does not keep: %w", ErrState)
	}
	if _, err := o.buf.load(&o.set, s); err != nil {
		return fmt.Errorf("SGD: %w", err)
	}
	return nil
}
