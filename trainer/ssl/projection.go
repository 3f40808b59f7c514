package ssl

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/trainer/nn"
)

// projection is the MLP of the reference's SwAV and MoCo heads (MLP in
// model/swav.py, MOCOHead in model/moco.py): Layers−1 times Linear,
// [BatchNorm1d,] ReLU, then a Linear to the output width. Names follow
// torch's nn.Sequential numbering (mlp.0, mlp.1, …); with one layer the
// reference stores a bare nn.Linear, so its tensors are mlp.weight and
// mlp.bias.
type projection struct {
	linears []*nn.Linear
	norms   []*nn.BatchNorm // one per hidden linear; nil entries without BN
}

// newProjection builds the MLP named under prefix+"mlp" with the linears
// initialised as nn.NewLinear does (truncated normal 0.02, zero bias, the
// reference's MOCOHead/MLP _init_weights).
func newProjection(prefix string, in, hidden, out, layers int, useBN bool, rng *rand.Rand) (*projection, error) {
	if in <= 0 || out <= 0 || layers < 1 || (layers > 1 && hidden <= 0) {
		return nil, fmt.Errorf("%w: projection %d → %d with %d layers of %d: dimensions and layers must be positive",
			ErrConfig, in, out, layers, hidden)
	}
	p := &projection{}
	if layers == 1 {
		p.linears = []*nn.Linear{nn.NewLinear(prefix+"mlp", in, out, true, rng)}
		p.norms = []*nn.BatchNorm{nil}
		return p, nil
	}
	idx := 0
	for l := 0; l < layers; l++ {
		o := hidden
		if l == layers-1 {
			o = out
		}
		p.linears = append(p.linears, nn.NewLinear(fmt.Sprintf("%smlp.%d", prefix, idx), in, o, true, rng))
		idx++
		var bn *nn.BatchNorm
		if l < layers-1 {
			if useBN {
				bn = nn.NewBatchNorm(fmt.Sprintf("%smlp.%d", prefix, idx), o)
				idx++
			}
			idx++ // ReLU
		}
		p.norms = append(p.norms, bn)
		in = o
	}
	return p, nil
}

// forward maps x [N, in] to [N, out]; train selects batch statistics in
// the BatchNorms (and updates their running ones).
func (p *projection) forward(x *gorgonia.Node, train bool) (y *gorgonia.Node, err error) {
	y = x
	for l, lin := range p.linears {
		if y, err = lin.Forward(y); err != nil {
			return nil, fmt.Errorf("projection linear %d: %w", l, err)
		}
		if l == len(p.linears)-1 {
			break
		}
		if bn := p.norms[l]; bn != nil {
			if y, err = bn.Forward(y, train); err != nil {
				return nil, fmt.Errorf("projection BN %d: %w", l, err)
			}
		}
		if y, err = nn.ActivationOp(y, nn.ReLU); err != nil {
			return nil, fmt.Errorf("projection ReLU %d: %w", l, err)
		}
	}
	return y, nil
}

// params lists the learnable tensors in torch's order.
func (p *projection) params() []*nn.Param {
	var ps []*nn.Param
	for l, lin := range p.linears {
		ps = append(ps, lin.Weight, lin.Bias)
		if bn := p.norms[l]; bn != nil {
			ps = append(ps, bn.Weight, bn.Bias)
		}
	}
	return ps
}

// entries lists the state dict in torch's order (BN running statistics
// included).
func (p *projection) entries() []nn.Entry {
	var e []nn.Entry
	for l, lin := range p.linears {
		e = append(e, lin.Entries()...)
		if bn := p.norms[l]; bn != nil {
			e = append(e, bn.Entries()...)
		}
	}
	return e
}
