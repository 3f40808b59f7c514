package backbone

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/trainer/nn"
)

// ViTConfig is a Vision Transformer's shape (DINO's vision_transformer.py).
type ViTConfig struct {
	Arch      string
	Patch     int
	EmbedDim  int
	Depth     int
	Heads     int
	MLPRatio  int
	LayerNorm float64 // LayerNorm eps
}

// ViTTiny16 is DINO's vit_tiny with patch 16: embed 192, depth 12, 3 heads,
// MLP 768, qkv bias, LayerNorm eps 1e-6.
var ViTTiny16 = ViTConfig{Arch: "vit_tiny", Patch: 16, EmbedDim: 192, Depth: 12, Heads: 3, MLPRatio: 4, LayerNorm: 1e-6}

// ViTSmall16 is DINO's vit_small with patch 16: embed 384, depth 12, 6 heads.
var ViTSmall16 = ViTConfig{Arch: "vit_small", Patch: 16, EmbedDim: 384, Depth: 12, Heads: 6, MLPRatio: 4, LayerNorm: 1e-6}

// WithPatch returns the configuration with another patch size (DINO's
// patch_size argument; the paper uses 16 and 32).
func (c ViTConfig) WithPatch(p int) ViTConfig {
	c.Patch = p
	return c
}

// ViT is DINO's VisionTransformer without a head: patch embedding, class
// token, position embeddings (interpolated for inputs other than the
// training grid), pre-norm blocks, final norm; the embedding is the class
// token.
type ViT struct {
	cfg        ViTConfig
	patchEmbed *nn.Conv2d
	clsToken   *nn.Param
	posEmbed   *nn.Param
	blocks     []*vitBlock
	norm       *nn.LayerNorm
	rng        *rand.Rand
}

type vitBlock struct {
	norm1, norm2 *nn.LayerNorm
	attn         *nn.Attention
	mlp          *nn.MLP
	dropPath     float64
	name         string
}

// NewViT builds a ViT with DINO's initialisation (trunc-normal std 0.02
// for linear weights, class token and position embeddings; biases 0;
// LayerNorm 1/0). The grid of the position embeddings is 224/patch.
func NewViT(cfg ViTConfig, o Options) *ViT {
	rng := rand.New(rand.NewPCG(o.Seed, 0x717))
	d := cfg.EmbedDim
	grid := 224 / cfg.Patch
	v := &ViT{cfg: cfg, rng: rand.New(rand.NewPCG(o.Seed, 0xd20))}
	v.patchEmbed = nn.NewConv2d("patch_embed.proj", 3, d, cfg.Patch,
		nn.ConvParams{Stride: [2]int{cfg.Patch, cfg.Patch}}, true, rng)
	v.clsToken = nn.NewParam("cls_token", 1, 1, d)
	v.posEmbed = nn.NewParam("pos_embed", 1, 1+grid*grid, d)
	nn.TruncNormal(v.clsToken, 0.02, rng)
	nn.TruncNormal(v.posEmbed, 0.02, rng)
	for i := 0; i < cfg.Depth; i++ {
		p := fmt.Sprintf("blocks.%d.", i)
		rate := 0.0
		if cfg.Depth > 1 {
			rate = o.DropPath * float64(i) / float64(cfg.Depth-1)
		}
		v.blocks = append(v.blocks, &vitBlock{
			name:     fmt.Sprintf("blocks.%d", i),
			norm1:    nn.NewLayerNorm(p+"norm1", d, cfg.LayerNorm),
			attn:     nn.NewAttention(p+"attn", d, cfg.Heads, rng),
			norm2:    nn.NewLayerNorm(p+"norm2", d, cfg.LayerNorm),
			mlp:      nn.NewMLP(p+"mlp", d, cfg.MLPRatio*d, rng),
			dropPath: rate,
		})
	}
	v.norm = nn.NewLayerNorm("norm", d, cfg.LayerNorm)
	return v
}

// Arch implements Backbone.
func (v *ViT) Arch() string { return v.cfg.Arch }

// EmbedDim implements Backbone.
func (v *ViT) EmbedDim() int { return v.cfg.EmbedDim }

// PosEmbedFor returns the node of the position embeddings used for an h×w
// input: the parameter itself on the training grid, DINO's bicubic
// interpolation otherwise.
func (v *ViT) PosEmbedFor(g *gorgonia.ExprGraph, h, w int) (*gorgonia.Node, error) {
	pos := v.posEmbed.Node(g)
	grid := 224 / v.cfg.Patch
	rows, cols := nn.PosEmbedGrid(h, w, v.cfg.Patch)
	if rows*cols == grid*grid && h == w {
		return pos, nil
	}
	return nn.InterpolatePosEmbedOp(pos, h, w, v.cfg.Patch)
}

// Forward implements Backbone.
func (v *ViT) Forward(x *gorgonia.Node, train bool) (Output, error) {
	g := x.Graph()
	s := x.Shape()
	if s.Dims() != 4 {
		return Output{}, fmt.Errorf("vit: input %v is not [N, 3, H, W]", s)
	}
	patches, err := v.patchEmbed.Forward(x)
	if err != nil {
		return Output{}, fmt.Errorf("patch_embed: %w", err)
	}
	pos, err := v.PosEmbedFor(g, s[2], s[3])
	if err != nil {
		return Output{}, err
	}
	y, err := nn.TokensOp(patches, v.clsToken.Node(g), pos)
	if err != nil {
		return Output{}, err
	}
	for _, b := range v.blocks {
		if y, err = b.forward(y, train, v.rng); err != nil {
			return Output{}, fmt.Errorf("%s: %w", b.name, err)
		}
	}
	tokens, err := v.norm.Forward(y)
	if err != nil {
		return Output{}, fmt.Errorf("norm: %w", err)
	}
	cls, err := nn.ClassTokenOp(tokens)
	if err != nil {
		return Output{}, err
	}
	return Output{Embedding: cls, Tokens: tokens}, nil
}

// forward is DINO's Block: x + drop_path(attn(norm1(x))), then
// x + drop_path(mlp(norm2(x))).
func (b *vitBlock) forward(x *gorgonia.Node, train bool, rng *rand.Rand) (*gorgonia.Node, error) {
	residual := func(x, branch *gorgonia.Node) (*gorgonia.Node, error) {
		if train && b.dropPath > 0 {
			var err error
			// Each op gets its own generator, seeded from the model's, so
			// machines running different graphs never share one.
			own := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
			if branch, err = nn.DropPathOp(branch, b.dropPath, own); err != nil {
				return nil, err
			}
		}
		return nn.AddOp(x, branch)
	}
	h, err := b.norm1.Forward(x)
	if err != nil {
		return nil, err
	}
	if h, err = b.attn.Forward(h); err != nil {
		return nil, err
	}
	if x, err = residual(x, h); err != nil {
		return nil, err
	}
	if h, err = b.norm2.Forward(x); err != nil {
		return nil, err
	}
	if h, err = b.mlp.Forward(h); err != nil {
		return nil, err
	}
	return residual(x, h)
}

// Entries implements Backbone, in DINO's state-dict order.
func (v *ViT) Entries() []nn.Entry {
	e := []nn.Entry{paramEntry(v.clsToken), paramEntry(v.posEmbed)}
	e = append(e, v.patchEmbed.Entries()...)
	for _, b := range v.blocks {
		for _, part := range [][]nn.Entry{b.norm1.Entries(), b.attn.Entries(), b.norm2.Entries(), b.mlp.Entries()} {
			e = append(e, part...)
		}
	}
	return append(e, v.norm.Entries()...)
}

// Params implements Backbone.
func (v *ViT) Params() []*nn.Param {
	var p []*nn.Param
	for _, e := range v.Entries() {
		if e.Param != nil {
			p = append(p, e.Param)
		}
	}
	return p
}

func paramEntry(p *nn.Param) nn.Entry {
	return nn.Entry{Name: p.Name, Shape: []int(p.Value.Shape().Clone()), F32: p.Data(), Param: p}
}
