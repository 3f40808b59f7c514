package optim

import "fmt"

// Param is one trainable tensor as the optimiser sees it: the flat row-major
// float32 backing array of the trainer's tensor and of its gradient.
//
// Grad nil means the parameter has no gradient this step (torch's
// p.grad is None): every optimiser leaves it untouched and creates no state
// for it. CancelGradients sets it to nil for frozen layers, so the trainer
// binds Grad again after each backward pass.
type Param struct {
	Name  string    // state-dict name, e.g. "student.head.last_layer.weight_v"
	Shape []int     // tensor shape; decides the parameter group
	Data  []float32 // values, len = product of Shape; updated in place
	Grad  []float32 // gradient, same length as Data, or nil
}

// Size returns the number of elements the shape describes (1 for a
// scalar's empty shape).
func (p *Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// Group is a parameter group: parameters sharing a weight-decay factor and
// the LARS adaptation flag. Before every step the optimiser gives group 0 the
// scheduled weight decay wd and every other group wd·WDFactor, as the
// reference trainer does.
type Group struct {
	Params      []*Param
	WDFactor    float64 // ignored for group 0, which always gets wd
	LARSExclude bool    // LARS only: skip the trust-ratio scaling
}

// GroupConfig holds the SOLVER keys get_params reads.
type GroupConfig struct {
	WDFactorForBias float64 // SOLVER.WD_FACTOR_FOR_BIAS
	WDFactorForDW   float64 // SOLVER.WD_FACTOR_FOR_DW
	LARSExcludeBias bool    // SOLVER.LARS_EXCLUDE_BIAS
	LARSExcludeDW   bool    // SOLVER.LARS_EXCLUDE_DW
}

// GroupParams splits params into the reference's parameter groups
// (get_params), keeping their order within each group:
//
//   - group 0: everything not below, including cls_token [1,1,D] and
//     pos_embed (WDFactor 1, LARS adaptation on);
//   - depthwise convolutions, 4-dim with shape[1] == 1:
//     {WDFactorForDW, LARSExcludeDW} — present only when there is one;
//   - 1-dim tensors (biases, BatchNorm/LayerNorm affine parameters):
//     {WDFactorForBias, LARSExcludeBias}, always last.
//
// So the result has three groups when the model has depthwise convolutions
// and two otherwise, the same list the reference hands its optimiser.
//
// The rule looks at shapes only, as the reference's does: a convolution
// over a single input channel, such as the first layer of a grayscale
// (Fashion-MNIST) model, [C, 1, k, k], lands in the depthwise group too.
func GroupParams(params []*Param, cfg GroupConfig) []Group {
	var regular, depthwise, flat []*Param
	for _, p := range params {
		switch {
		case len(p.Shape) == 1:
			flat = append(flat, p)
		case len(p.Shape) == 4 && p.Shape[1] == 1:
			depthwise = append(depthwise, p)
		default:
			regular = append(regular, p)
		}
	}
	groups := []Group{{Params: regular, WDFactor: 1}}
	if len(depthwise) > 0 {
		groups = append(groups, Group{Params: depthwise, WDFactor: cfg.WDFactorForDW, LARSExclude: cfg.LARSExcludeDW})
	}
	return append(groups, Group{Params: flat, WDFactor: cfg.WDFactorForBias, LARSExclude: cfg.LARSExcludeBias})
}

// paramSet is the flattened view of the groups every optimiser keeps: one
// entry per parameter, in group order, with the index of its group.
type paramSet struct {
	groups  []Group
	entries []entry
	index   map[string]int // parameter name → entry
}

type entry struct {
	p     *Param
	group int
	size  int // len(Data) at construction; Data and Grad must keep it
}

func newParamSet(groups []Group) (paramSet, error) {
	s := paramSet{groups: groups, index: make(map[string]int)}
	for gi, g := range groups {
		for pi, p := range g.Params {
			if p == nil {
				return paramSet{}, fmt.Errorf("group %d, parameter %d is nil: %w", gi, pi, ErrInvalidParams)
			}
			if p.Name == "" {
				return paramSet{}, fmt.Errorf("group %d, parameter %d has no name (state is keyed by name): %w", gi, pi, ErrInvalidParams)
			}
			if _, dup := s.index[p.Name]; dup {
				return paramSet{}, fmt.Errorf("parameter %q appears twice: %w", p.Name, ErrInvalidParams)
			}
			for _, d := range p.Shape {
				if d < 0 {
					return paramSet{}, fmt.Errorf("parameter %q: negative dimension in shape %v: %w", p.Name, p.Shape, ErrShape)
				}
			}
			if n := p.Size(); len(p.Data) != n {
				return paramSet{}, fmt.Errorf("parameter %q: %d values for shape %v (%d): %w", p.Name, len(p.Data), p.Shape, n, ErrShape)
			}
			s.index[p.Name] = len(s.entries)
			s.entries = append(s.entries, entry{p: p, group: gi, size: len(p.Data)})
		}
	}
	return s, nil
}

// check verifies, before a step touches anything, that every parameter
// still has its size and every gradient matches it, so a failed step leaves
// parameters and state unchanged.
func (s *paramSet) check() error {
	for _, e := range s.entries {
		if len(e.p.Data) != e.size {
			return fmt.Errorf("parameter %q: data has %d values, want %d: %w", e.p.Name, len(e.p.Data), e.size, ErrShape)
		}
		if e.p.Grad != nil && len(e.p.Grad) != e.size {
			return fmt.Errorf("parameter %q: gradient has %d values, want %d: %w", e.p.Name, len(e.p.Grad), e.size, ErrShape)
		}
	}
	return nil
}

// weightDecay is the reference trainer's per-group weight decay: wd for
// group 0 and wd·wd_factor (in float64, as Python computes it) for others.
func (s *paramSet) weightDecay(group int, wd float64) float64 {
	if group == 0 {
		return wd
	}
	return wd * s.groups[group].WDFactor
}
