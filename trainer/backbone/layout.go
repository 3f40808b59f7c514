package backbone

import (
	"math/rand/v2"

	"github.com/sslight-go/sslight/trainer/nn"
)

// The layouts below expose each backbone's structure, read-only by
// convention, to code that runs the same network elsewhere (trainer/gpu's
// executor builds its device program from them): the modules themselves,
// so weights and BatchNorm statistics are the backbone's own.

// ConvBNLayout is a convolution, its BatchNorm and the activation after it
// (nil: none).
type ConvBNLayout struct {
	Name string
	Conv *nn.Conv2d
	BN   *nn.BatchNorm
	Act  *nn.Activation
}

func (c *convBN) layout() ConvBNLayout {
	return ConvBNLayout{Name: c.name, Conv: c.conv, BN: c.bn, Act: c.act}
}

// ResBlockLayout is a BasicBlock or Bottleneck: its convolutions in order
// (the last without activation), the projection shortcut (nil: identity);
// the block's output is ReLU(convs(x) + shortcut(x)).
type ResBlockLayout struct {
	Convs      []ConvBNLayout
	Downsample *ConvBNLayout
}

// ResNetLayout is a ResNet's structure: stem, optional 3x3 stride-2
// max-pool (padding 1), the four stages' blocks, global average pool.
type ResNetLayout struct {
	Stem    ConvBNLayout
	MaxPool bool
	Blocks  [][]ResBlockLayout
}

// Layout returns the ResNet's structure.
func (r *ResNet) Layout() ResNetLayout {
	l := ResNetLayout{Stem: r.stem.layout(), MaxPool: r.maxPool}
	for _, layer := range r.blocks {
		var bl []ResBlockLayout
		for _, b := range layer {
			rb := ResBlockLayout{}
			for _, c := range b.convs {
				rb.Convs = append(rb.Convs, c.layout())
			}
			if b.downsample != nil {
				d := b.downsample.layout()
				rb.Downsample = &d
			}
			bl = append(bl, rb)
		}
		l.Blocks = append(l.Blocks, bl)
	}
	return l
}

// InvertedResidualLayout is a MobileNetV2 block: its layers in order
// (expansion, depthwise, linear projection) and whether the input is added
// to the output.
type InvertedResidualLayout struct {
	Layers   []ConvBNLayout
	Residual bool
}

// MobileNetV2Layout is MobileNetV2's structure: stem, blocks, the 1x1 head,
// global average pool.
type MobileNetV2Layout struct {
	Stem   ConvBNLayout
	Blocks []InvertedResidualLayout
	Head   ConvBNLayout
}

// Layout returns the MobileNetV2's structure.
func (m *MobileNetV2) Layout() MobileNetV2Layout {
	l := MobileNetV2Layout{Stem: m.stem.layout(), Head: m.head.layout()}
	for _, b := range m.blocks {
		ib := InvertedResidualLayout{Residual: b.residual}
		for _, c := range b.layers {
			ib.Layers = append(ib.Layers, c.layout())
		}
		l.Blocks = append(l.Blocks, ib)
	}
	return l
}

// ViTBlockLayout is one pre-norm transformer block with its stochastic
// depth rate.
type ViTBlockLayout struct {
	Name         string
	Norm1, Norm2 *nn.LayerNorm
	Attn         *nn.Attention
	MLP          *nn.MLP
	DropPath     float64
}

// ViTLayout is a ViT's structure. RNG is the generator Forward draws each
// DropPath op's own generator from (two Uint64 per op, block by block,
// attention branch before MLP branch, when the op is built), so an
// executor drawing the same way reproduces the CPU trainer's masks.
type ViTLayout struct {
	Config     ViTConfig
	PatchEmbed *nn.Conv2d
	ClsToken   *nn.Param
	PosEmbed   *nn.Param
	Blocks     []ViTBlockLayout
	Norm       *nn.LayerNorm
	RNG        *rand.Rand
}

// Layout returns the ViT's structure.
func (v *ViT) Layout() ViTLayout {
	l := ViTLayout{Config: v.cfg, PatchEmbed: v.patchEmbed, ClsToken: v.clsToken, PosEmbed: v.posEmbed, Norm: v.norm, RNG: v.rng}
	for _, b := range v.blocks {
		l.Blocks = append(l.Blocks, ViTBlockLayout{Name: b.name, Norm1: b.norm1, Norm2: b.norm2, Attn: b.attn, MLP: b.mlp, DropPath: b.dropPath})
	}
	return l
}
