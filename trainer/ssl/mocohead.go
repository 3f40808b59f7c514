package ssl

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/trainer/nn"
)

// MoCoHeadConfig is the MOCO section's head: projection widths and depth,
// and BN.
type MoCoHeadConfig struct {
	// InDim is the backbone's embedding width; HiddenDim (HIDDEN_SIZE,
	// 2048) and OutDim (OUTPUT_DIM, 128) the projection's.
	InDim, HiddenDim, OutDim int
	// Layers is NUM_LAYERS (≥ 1; 2 in the reference configs).
	Layers int
	// UseBN puts a BatchNorm1d after every hidden linear (USE_BN_IN_HEAD).
	UseBN bool
}

// MoCoHead is the reference's MOCOHead: an MLP (Linear, [BN,] ReLU, …,
// Linear) to OutDim, named mlp.0.weight … as in torch. Its output is the
// raw query or key; MoCoLoss L2-normalises it (the reference's
// F.normalize(q, dim=-1) in MOCO.forward), so the head does not.
type MoCoHead struct {
	proj *projection
}

// NewMoCoHead builds the head named under prefix ("head.") with the
// reference's initialisation: linears truncated-normal(0.02), zero bias,
// BN weight 1 and bias 0.
func NewMoCoHead(prefix string, cfg MoCoHeadConfig, seed uint64) (*MoCoHead, error) {
	rng := rand.New(rand.NewPCG(seed, 0x30c0))
	proj, err := newProjection(prefix, cfg.InDim, cfg.HiddenDim, cfg.OutDim, cfg.Layers, cfg.UseBN, rng)
	if err != nil {
		return nil, fmt.Errorf("MoCo head: %w", err)
	}
	return &MoCoHead{proj: proj}, nil
}

// Forward maps backbone embeddings x [N, InDim] to the projection
// [N, OutDim]; train selects batch statistics in the BatchNorms.
func (h *MoCoHead) Forward(x *gorgonia.Node, train bool) (*gorgonia.Node, error) {
	y, err := h.proj.forward(x, train)
	if err != nil {
		return nil, fmt.Errorf("MoCo head: %w", err)
	}
	return y, nil
}

// Params lists the learnable parameters in torch's order.
func (h *MoCoHead) Params() []*nn.Param { return h.proj.params() }

// Entries lists the state dict in torch's order.
func (h *MoCoHead) Entries() []nn.Entry { return h.proj.entries() }
