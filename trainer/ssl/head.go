package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/trainer/nn"
)

// DINOHeadConfig is the DINOHead section of the config.
type DINOHeadConfig struct {
	InDim, HiddenDim, BottleneckDim, OutDim int
	// Layers is the number of MLP linears (≥ 1; 3 in every reference config).
	Layers int
	// UseBN puts a BatchNorm1d after every hidden linear.
	UseBN bool
	// NormLastLayer freezes the weight-norm gain g of the last layer at 1.
	NormLastLayer bool
}

// DINOHead is the reference's DINOHead: an MLP (linear, [BN,] GELU, …,
// linear to the bottleneck), L2 normalisation, and a weight-normalised
// linear layer without bias to OutDim. Parameter names are torch's:
// mlp.0.weight … , last_layer.weight_g, last_layer.weight_v.
type DINOHead struct {
	cfg     DINOHeadConfig
	linears []*nn.Linear
	norms   []*nn.BatchNorm // nil entries without BN
	// G and V are weight_norm's gain [out, 1] and direction [out, bottleneck].
	G, V *nn.Param
}

// NewDINOHead builds the head named under prefix ("head.") and initialises
// it as the reference does: MLP linears truncated-normal(0.02) with zero
// bias, the last layer's direction as torch's default Linear init
// (uniform ±1/√in) and its gain 1.
func NewDINOHead(prefix string, cfg DINOHeadConfig, seed uint64) (*DINOHead, error) {
	if cfg.InDim <= 0 || cfg.BottleneckDim <= 0 || cfg.OutDim <= 0 || cfg.Layers < 1 || (cfg.Layers > 1 && cfg.HiddenDim <= 0) {
		return nil, fmt.Errorf("%w: DINO head %+v: dimensions and layers must be positive", ErrConfig, cfg)
	}
	rng := rand.New(rand.NewPCG(seed, 0xd1e0))
	h := &DINOHead{cfg: cfg}
	idx := 0
	in := cfg.InDim
	for l := 0; l < cfg.Layers; l++ {
		out := cfg.HiddenDim
		if l == cfg.Layers-1 {
			out = cfg.BottleneckDim
		}
		h.linears = append(h.linears, nn.NewLinear(fmt.Sprintf("%smlp.%d", prefix, idx), in, out, true, rng))
		idx++
		var bn *nn.BatchNorm
		if l < cfg.Layers-1 {
			if cfg.UseBN {
				bn = nn.NewBatchNorm(fmt.Sprintf("%smlp.%d", prefix, idx), out)
				idx++
			}
			idx++ // GELU
		}
		h.norms = append(h.norms, bn)
		in = out
	}
	h.G = nn.NewParam(prefix+"last_layer.weight_g", cfg.OutDim, 1)
	nn.Fill(h.G, 1)
	h.V = nn.NewParam(prefix+"last_layer.weight_v", cfg.OutDim, cfg.BottleneckDim)
	bound := 1 / math.Sqrt(float64(cfg.BottleneckDim))
	for i, d := 0, h.V.Data(); i < len(d); i++ {
		d[i] = float32((2*rng.Float64() - 1) * bound)
	}
	return h, nil
}

// Forward maps embeddings x [N, InDim] to logits [N, OutDim]; train
// selects batch statistics in the BatchNorms. Bottleneck is the normalised
// bottleneck output, what ignore_last_layer returns in the reference.
func (h *DINOHead) Forward(x *gorgonia.Node, train bool) (logits, bottleneck *gorgonia.Node, err error) {
	y := x
	for l, lin := range h.linears {
		if y, err = lin.Forward(y); err != nil {
			return nil, nil, fmt.Errorf("DINO head linear %d: %w", l, err)
		}
		if l == len(h.linears)-1 {
			break
		}
		if bn := h.norms[l]; bn != nil {
			if y, err = bn.Forward(y, train); err != nil {
				return nil, nil, fmt.Errorf("DINO head BN %d: %w", l, err)
			}
		}
		if y, err = nn.ActivationOp(y, nn.GELU); err != nil {
			return nil, nil, fmt.Errorf("DINO head GELU %d: %w", l, err)
		}
	}
	if bottleneck, err = nn.L2NormalizeOp(y); err != nil {
		return nil, nil, fmt.Errorf("DINO head normalize: %w", err)
	}
	g := x.Graph()
	w, err := nn.L2NormalizeOp(h.V.Node(g))
	if err == nil {
		w, err = nn.ScaleRowsOp(w, h.G.Node(g))
	}
	if err == nil {
		logits, err = nn.LinearOp(bottleneck, w, nil)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("DINO head last layer: %w", err)
	}
	return logits, bottleneck, nil
}

// Params lists the trainable parameters in torch's order (the gain is
// left out when NormLastLayer freezes it).
func (h *DINOHead) Params() []*nn.Param {
	var ps []*nn.Param
	for l, lin := range h.linears {
		ps = append(ps, lin.Weight, lin.Bias)
		if bn := h.norms[l]; bn != nil {
			ps = append(ps, bn.Weight, bn.Bias)
		}
	}
	if !h.cfg.NormLastLayer {
		ps = append(ps, h.G)
	}
	return append(ps, h.V)
}

// AllParams is Params with the frozen gain included: what the teacher's
// EMA and the state dict cover.
func (h *DINOHead) AllParams() []*nn.Param {
	ps := h.Params()
	if h.cfg.NormLastLayer {
		ps = append(ps[:len(ps)-1:len(ps)-1], h.G, h.V)
	}
	return ps
}

// Entries lists the state dict in torch's order.
func (h *DINOHead) Entries() []nn.Entry {
	var e []nn.Entry
	for l, lin := range h.linears {
		e = append(e, lin.Entries()...)
		if bn := h.norms[l]; bn != nil {
			e = append(e, bn.Entries()...)
		}
	}
	for _, p := range []*nn.Param{h.G, h.V} {
		e = append(e, nn.Entry{Name: p.Name, Shape: p.Value.Shape().Clone(), F32: p.Data(), Param: p})
	}
	return e
}
