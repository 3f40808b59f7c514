package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/trainer/nn"
)

// SwAVHeadConfig is the SWAV section's head: projection widths and depth,
// BN, and the number of prototypes.
type SwAVHeadConfig struct {
	// InDim is the backbone's embedding width; HiddenDim (HIDDEN_SIZE) and
	// OutDim (OUTPUT_DIM) the projection's.
	InDim, HiddenDim, OutDim int
	// Layers is NUM_LAYERS (≥ 1; 2 in the reference configs).
	Layers int
	// UseBN puts a BatchNorm1d after every hidden linear (USE_BN_IN_HEAD).
	UseBN bool
	// Prototypes is NMB_PROTOTYPES.
	Prototypes int
}

// SwAVHead is the reference's SWAVHead: the projection MLP (Linear, [BN,]
// ReLU, …, Linear), L2 normalisation, and the prototypes, a bias-free
// linear layer to Prototypes scores. Parameter names are torch's:
// projection.mlp.0.weight …, prototypes.weight.
type SwAVHead struct {
	cfg  SwAVHeadConfig
	proj *projection
	// Prototypes is prototypes.weight [Prototypes, OutDim].
	Prototypes *nn.Param
}

// NewSwAVHead builds the head named under prefix ("head.") and initialises
// it as the reference's SWAV model does after construction: every linear
// (the prototypes included) N(0, 0.01²) with zero bias, BN weight 1 and
// bias 0.
func NewSwAVHead(prefix string, cfg SwAVHeadConfig, seed uint64) (*SwAVHead, error) {
	if cfg.Prototypes <= 0 {
		return nil, fmt.Errorf("%w: SwAV head %+v: the number of prototypes must be positive", ErrConfig, cfg)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5a4a))
	proj, err := newProjection(prefix+"projection.", cfg.InDim, cfg.HiddenDim, cfg.OutDim, cfg.Layers, cfg.UseBN, rng)
	if err != nil {
		return nil, fmt.Errorf("SwAV head: %w", err)
	}
	h := &SwAVHead{cfg: cfg, proj: proj, Prototypes: nn.NewParam(prefix+"prototypes.weight", cfg.Prototypes, cfg.OutDim)}
	// The SWAV model re-initialises every nn.Linear with normal_(0, 0.01),
	// overriding the MLP's truncated normal.
	for _, lin := range proj.linears {
		normal(lin.Weight, 0.01, rng)
	}
	normal(h.Prototypes, 0.01, rng)
	return h, nil
}

func normal(p *nn.Param, std float64, rng *rand.Rand) {
	for i, d := 0, p.Data(); i < len(d); i++ {
		d[i] = float32(rng.NormFloat64() * std)
	}
}

// NormalizePrototypes rescales every prototype (row of Prototypes) to unit
// L2 norm in place, as the reference's SwAV trainer does under no_grad
// before every forward (F.normalize(w, dim=1): rows with a norm below
// 1e-12 are divided by 1e-12).
func (h *SwAVHead) NormalizePrototypes() {
	normalizeRowsInPlace(h.Prototypes.Data(), h.cfg.OutDim)
}

// normalizeRowsInPlace divides each row of width c by its L2 norm,
// clamped below at 1e-12. The sum of squares is accumulated in float64 in
// index order, so the result does not depend on scheduling.
func normalizeRowsInPlace(x []float32, c int) {
	for r := 0; r < len(x)/c; r++ {
		row := x[r*c : (r+1)*c]
		n := float32(math.Max(math.Sqrt(dot32(row, row)), 1e-12))
		for j := range row {
			row[j] /= n
		}
	}
}

// Forward maps backbone embeddings x [N, InDim] to the normalised
// projection [N, OutDim] (the reference's embedding, what the SwAV queue
// stores) and the prototype scores [N, Prototypes] (its output); train
// selects batch statistics in the BatchNorms.
func (h *SwAVHead) Forward(x *gorgonia.Node, train bool) (embedding, scores *gorgonia.Node, err error) {
	y, err := h.proj.forward(x, train)
	if err != nil {
		return nil, nil, fmt.Errorf("SwAV head: %w", err)
	}
	if embedding, err = nn.L2NormalizeOp(y); err != nil {
		return nil, nil, fmt.Errorf("SwAV head normalize: %w", err)
	}
	if scores, err = nn.LinearOp(embedding, h.Prototypes.Node(x.Graph()), nil); err != nil {
		return nil, nil, fmt.Errorf("SwAV head prototypes: %w", err)
	}
	return embedding, scores, nil
}

// Params lists the learnable parameters in torch's order (projection,
// then prototypes).
func (h *SwAVHead) Params() []*nn.Param {
	return append(h.proj.params(), h.Prototypes)
}

// Entries lists the state dict in torch's order.
func (h *SwAVHead) Entries() []nn.Entry {
	return append(h.proj.entries(), nn.Entry{Name: h.Prototypes.Name, Shape: h.Prototypes.Value.Shape().Clone(),
		F32: h.Prototypes.Data(), Param: h.Prototypes})
}
