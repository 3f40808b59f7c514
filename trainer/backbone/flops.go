package backbone

import (
	"fmt"

	"github.com/sslight-go/sslight/trainer/nn"
)

// FLOPCount is the cost of one forward pass of one image, by kind of
// operation, in fvcore's units: one multiply-accumulate counts as one
// "FLOP", which is what the paper's GFLOPs column (and most vision papers
// since ResNet) calls a FLOP.
//
// The convention is fvcore's FlopCountAnalysis with its default handles, on
// the model in eval mode (classifier excluded):
//
//   - convolutions: Cout·(Cin/groups)·kh·kw·Hout·Wout, bias not counted;
//   - linear layers: tokens·in·out, bias not counted;
//   - attention matmuls: q·kᵀ and attn·v, tokens²·dim each;
//   - BatchNorm: 2 per element (eval mode, affine); LayerNorm: 5 per element;
//   - the global average pool: 1 per input element.
//
// Activations, residual adds, max-pooling, softmax, the attention scale,
// the class token and the (bicubic) position-embedding interpolation are
// not counted, as fvcore has no handle for them. This is the one common
// convention that reproduces every figure of the paper's table to the
// precision it prints: counting convolutions and matmuls alone gives
// MobileNetV2 0.2995 G (printed 0.31) and ViT-T/16 1.2535 G (printed 1.26);
// the norms bring them to 0.3129 and 1.2582.
type FLOPCount struct {
	Conv   int64 // convolutions, the ViT's patch embedding included
	Linear int64 // linear layers (the ViT's qkv, proj, fc1, fc2)
	Matmul int64 // attention's q·kᵀ and attn·v
	Norm   int64 // BatchNorm and LayerNorm
	Pool   int64 // the CNNs' global average pool
}

// Total is the sum over all kinds.
func (c FLOPCount) Total() int64 { return c.Conv + c.Linear + c.Matmul + c.Norm + c.Pool }

// GFLOPs is Total in units of 10⁹, the figure the paper prints.
func (c FLOPCount) GFLOPs() float64 { return float64(c.Total()) / 1e9 }

// FLOPs returns the total cost (see FLOPCount) of one forward pass of one
// h×w image through b.
func FLOPs(b Backbone, h, w int) (int64, error) {
	c, err := CountFLOPs(b, h, w)
	return c.Total(), err
}

// flopCounted is implemented by the backbones of this package: each walks
// its own modules, so the count follows Options (width, stem, patch size)
// and the input size rather than a table.
type flopCounted interface {
	countFLOPs(fc *FLOPCount, h, w int) error
}

// CountFLOPs returns the cost of one forward pass of one h×w image through
// b by kind of operation. It fails for an input too small for the network
// (a layer would produce an empty map) and for backbones from outside this
// package.
func CountFLOPs(b Backbone, h, w int) (FLOPCount, error) {
	if h < 1 || w < 1 {
		return FLOPCount{}, fmt.Errorf("backbone: FLOPs of %s: input size %dx%d: want positive height and width", b.Arch(), h, w)
	}
	m, ok := b.(flopCounted)
	if !ok {
		return FLOPCount{}, fmt.Errorf("backbone: FLOPs of %T: not a backbone of this package", b)
	}
	var c FLOPCount
	if err := m.countFLOPs(&c, h, w); err != nil {
		return FLOPCount{}, fmt.Errorf("backbone: FLOPs of %s at %dx%d: %w", b.Arch(), h, w, err)
	}
	return c, nil
}

// conv adds one convolution on an h×w input and returns its output size,
// with torch.nn.Conv2d's output-size formula.
func (c *FLOPCount) conv(conv *nn.Conv2d, name string, h, w int) (oh, ow int, err error) {
	s := conv.Weight.Value.Shape() // [out, in/groups, kh, kw]
	p := conv.P
	one := func(v int) int { return max(v, 1) } // unset stride/dilation mean 1, as in nn
	kh := one(p.Dilation[0])*(s[2]-1) + 1       // the dilated kernel's extent
	kw := one(p.Dilation[1])*(s[3]-1) + 1
	if h+2*p.Padding[0] < kh || w+2*p.Padding[1] < kw {
		return 0, 0, fmt.Errorf("%s: a %dx%d map is too small for its %dx%d kernel", name, h, w, s[2], s[3])
	}
	oh = (h+2*p.Padding[0]-kh)/one(p.Stride[0]) + 1
	ow = (w+2*p.Padding[1]-kw)/one(p.Stride[1]) + 1
	c.Conv += int64(s[0]) * int64(s[1]*s[2]*s[3]) * int64(oh*ow)
	return oh, ow, nil
}

// convBN adds a convolution and its BatchNorm (the activation is free).
func (c *FLOPCount) convBN(u *convBN, h, w int) (oh, ow int, err error) {
	if oh, ow, err = c.conv(u.conv, u.name, h, w); err != nil {
		return 0, 0, err
	}
	c.Norm += 2 * int64(len(u.bn.Weight.Data())) * int64(oh*ow)
	return oh, ow, nil
}

// linear adds a linear layer applied to tokens rows.
func (c *FLOPCount) linear(l *nn.Linear, tokens int) {
	s := l.Weight.Value.Shape() // [out, in]
	c.Linear += int64(tokens) * int64(s[0]) * int64(s[1])
}

// layerNorm adds a LayerNorm over tokens rows.
func (c *FLOPCount) layerNorm(l *nn.LayerNorm, tokens int) {
	c.Norm += 5 * int64(tokens) * int64(len(l.Weight.Data()))
}

func (r *ResNet) countFLOPs(c *FLOPCount, h, w int) error {
	h, w, err := c.convBN(r.stem, h, w)
	if err != nil {
		return err
	}
	if r.maxPool {
		// MaxPool2d(3, 2, padding 1) costs nothing in fvcore but halves the map.
		h, w = (h+2-3)/2+1, (w+2-3)/2+1
	}
	for _, layer := range r.blocks {
		for _, b := range layer {
			inH, inW := h, w
			for _, u := range b.convs {
				if h, w, err = c.convBN(u, h, w); err != nil {
					return err
				}
			}
			if b.downsample != nil {
				if _, _, err = c.convBN(b.downsample, inH, inW); err != nil {
					return err
				}
			}
		}
	}
	c.Pool += int64(r.embedDim) * int64(h*w)
	return nil
}

func (m *MobileNetV2) countFLOPs(c *FLOPCount, h, w int) error {
	h, w, err := c.convBN(m.stem, h, w)
	if err != nil {
		return err
	}
	for _, b := range m.blocks {
		for _, u := range b.layers {
			if h, w, err = c.convBN(u, h, w); err != nil {
				return err
			}
		}
	}
	if h, w, err = c.convBN(m.head, h, w); err != nil {
		return err
	}
	c.Pool += int64(m.embedDim) * int64(h*w)
	return nil
}

func (v *ViT) countFLOPs(c *FLOPCount, h, w int) error {
	rows, cols, err := c.conv(v.patchEmbed, "patch_embed.proj", h, w)
	if err != nil {
		return err
	}
	t := 1 + rows*cols // the class token rides along through every block
	d := int64(v.cfg.EmbedDim)
	for _, b := range v.blocks {
		c.layerNorm(b.norm1, t)
		c.linear(b.attn.QKV, t)
		// q·kᵀ and attn·v: per head tokens²·(d/heads), summed over heads.
		c.Matmul += 2 * int64(t) * int64(t) * d
		c.linear(b.attn.Proj, t)
		c.layerNorm(b.norm2, t)
		c.linear(b.mlp.FC1, t)
		c.linear(b.mlp.FC2, t)
	}
	c.layerNorm(v.norm, t)
	return nil
}
