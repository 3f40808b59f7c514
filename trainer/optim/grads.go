package optim

import "strings"

// clipEps is the 1e-6 the reference adds to each gradient norm before
// dividing (rounded to float32 where it meets the norm tensor).
const clipEps = float32(1e-6)

// ClipGradients is the reference's clip_gradients (DINO's
// utils.clip_gradients): each parameter's gradient is clipped on its own,
// not by a global norm. For every parameter with a gradient, with n its
// float32 L2 norm:
//
//	coef = clip · 1/(n + 1e-6)      (torch's float / tensor is reciprocal · float)
//	if coef < 1 { g *= coef }
//
// It appends each norm (before clipping) to norms and returns the slice, so
// a caller that reuses norms[:0] allocates nothing. The trainer calls it only
// when SOLVER.CLIP_GRAD > 0.
func ClipGradients(params []*Param, clip float64, norms []float64) []float64 {
	c := float32(clip)
	for _, p := range params {
		if p == nil || p.Grad == nil {
			continue
		}
		n := norm32(p.Grad)
		norms = append(norms, float64(n))
		coef := float32(1/float32(n+clipEps)) * c
		if coef < 1 {
			g := p.Grad
			for i := range g {
				g[i] *= coef
			}
		}
	}
	return norms
}

// CancelGradients drops the gradient (Grad = nil, torch's p.grad = None)
// of every parameter whose name contains substr, so the optimiser skips it
// entirely: no update, no weight decay, no momentum, no new state. The
// reference does this for "last_layer" while the DINO head's last layer is
// frozen and for "prototypes" during SwAV's first epochs. It returns how
// many gradients it dropped.
//
// Dropping (rather than zeroing) matters: a zero gradient would still move
// the parameter through weight decay and momentum.
func CancelGradients(params []*Param, substr string) int {
	n := 0
	for _, p := range params {
		if p != nil && p.Grad != nil && strings.Contains(p.Name, substr) {
			p.Grad = nil
			n++
		}
	}
	return n
}

// FreezeWindow is how long a set of parameters stays frozen from the start
// of training: Epochs (SOLVER.FREEZE_LAST_LAYER,
// SWAV.FREEZE_PROTOTYPES_EPOCHS) or, when Iters > 0, iterations (sslight's
// SOLVER.FREEZE_LAST_LAYER_ITERS). With Iters = Epochs·itersPerEpoch both
// freeze exactly the same steps.
type FreezeWindow struct {
	Epochs int
	Iters  int
}

// Frozen reports whether the window covers the iteration at global step
// step of epoch epoch (the reference: frozen while epoch < Epochs).
func (w FreezeWindow) Frozen(epoch, step int) bool {
	if w.Iters > 0 {
		return step < w.Iters
	}
	return epoch < w.Epochs
}

// CancelGradientsLastLayer is the reference's cancel_gradients_last_layer:
// while the window covers (epoch, step), the gradients of every parameter
// named "…last_layer…" are dropped (see CancelGradients).
func CancelGradientsLastLayer(params []*Param, epoch, step int, w FreezeWindow) {
	if w.Frozen(epoch, step) {
		CancelGradients(params, "last_layer")
	}
}
