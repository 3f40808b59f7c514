package backbone

import (
	"fmt"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/sinks/onnx"
	"github.com/sslight-go/sslight/trainer/nn"
)

// ONNXOptions configure ONNX.
type ONNXOptions struct {
	// Height and Width are the input's spatial size: the graph is written
	// for it (a ViT's position embeddings are interpolated for it once, at
	// export, as Forward does for other sizes; a CNN's shapes follow it).
	Height, Width int
	// FoldBN folds every eval-mode BatchNorm into the convolution before
	// it; without it each is a BatchNormalization node. ViTs have none.
	FoldBN bool
}

// ONNXOutput names the values ONNX wrote.
type ONNXOutput struct {
	// Embedding is Output.Embedding, [N, EmbedDim].
	Embedding string
	EmbedDim  int
	// FeatureMap is a CNN's last feature map [N, C, H, W] with FeatureShape
	// (C, H, W); "" for ViTs.
	FeatureMap   string
	FeatureShape [3]int
}

// onnxWritten is implemented by the backbones of this package: each walks
// its own modules as its Forward does.
type onnxWritten interface {
	onnx(e *onnxWriter, x string) (ONNXOutput, error)
}

// onnxWriter carries the graph and the options through one walk, and the
// current spatial size for the shape checks.
type onnxWriter struct {
	g    *onnx.Graph
	o    ONNXOptions
	h, w int
}

// ONNX writes b's evaluation-mode forward pass (BatchNorm with its running
// statistics, no stochastic depth) on the graph value x [N, 3, H, W] into
// g and returns the names of its outputs. The ops are opset 13's, kept to
// what OpenCV 4.6 loads (see trainer/nn's ONNX notes). It fails for an
// input too small for the network, before writing anything.
func ONNX(b Backbone, g *onnx.Graph, x string, o ONNXOptions) (ONNXOutput, error) {
	if o.Height < 1 || o.Width < 1 {
		return ONNXOutput{}, fmt.Errorf("backbone: ONNX of %s: input size %dx%d: want positive height and width", b.Arch(), o.Height, o.Width)
	}
	m, ok := b.(onnxWritten)
	if !ok {
		return ONNXOutput{}, fmt.Errorf("backbone: ONNX of %T: not a backbone of this package", b)
	}
	// The FLOP walk runs the same size arithmetic: a map that would become
	// empty fails here, before a node is written.
	if _, err := CountFLOPs(b, o.Height, o.Width); err != nil {
		return ONNXOutput{}, err
	}
	out, err := m.onnx(&onnxWriter{g: g, o: o, h: o.Height, w: o.Width}, x)
	if err != nil {
		return ONNXOutput{}, fmt.Errorf("backbone: ONNX of %s: %w", b.Arch(), err)
	}
	return out, nil
}

// convBN writes a convolution, its BatchNorm and its activation, and
// tracks the map size.
func (e *onnxWriter) convBN(c *convBN, x string) (string, error) {
	s := c.conv.Weight.Value.Shape()
	p := c.conv.P
	one := func(v int) int { return max(v, 1) }
	e.h = (e.h+2*p.Padding[0]-(one(p.Dilation[0])*(s[2]-1)+1))/one(p.Stride[0]) + 1
	e.w = (e.w+2*p.Padding[1]-(one(p.Dilation[1])*(s[3]-1)+1))/one(p.Stride[1]) + 1
	y := nn.ConvONNX(e.g, c.name, x, c.conv, c.bn, e.o.FoldBN)
	if c.act == nil {
		return y, nil
	}
	return nn.ActivationONNX(e.g, c.name+"."+c.act.String(), y, *c.act)
}

func (r *ResNet) onnx(e *onnxWriter, x string) (ONNXOutput, error) {
	y, err := e.convBN(r.stem, x)
	if err != nil {
		return ONNXOutput{}, err
	}
	if r.maxPool {
		y = nn.MaxPoolONNX(e.g, "maxpool", y, 3, 2, 1)
		e.h, e.w = (e.h+2-3)/2+1, (e.w+2-3)/2+1
	}
	for _, layer := range r.blocks {
		for _, b := range layer {
			in := y
			for _, c := range b.convs {
				if y, err = e.convBN(c, y); err != nil {
					return ONNXOutput{}, err
				}
			}
			identity := in
			if b.downsample != nil {
				h, w := e.h, e.w // the main branch set the output size already
				if identity, err = e.convBN(b.downsample, in); err != nil {
					return ONNXOutput{}, err
				}
				e.h, e.w = h, w
			}
			name := b.convs[0].name
			name = name[:len(name)-len(".conv1")]
			y = e.g.Node("Add", name+".residual", []string{y, identity})
			y = e.g.Node("Relu", name+".relu", []string{y})
		}
	}
	return ONNXOutput{Embedding: nn.GlobalAvgPoolONNX(e.g, "avgpool", y), EmbedDim: r.embedDim,
		FeatureMap: y, FeatureShape: [3]int{r.embedDim, e.h, e.w}}, nil
}

func (m *MobileNetV2) onnx(e *onnxWriter, x string) (ONNXOutput, error) {
	y, err := e.convBN(m.stem, x)
	if err != nil {
		return ONNXOutput{}, err
	}
	for _, b := range m.blocks {
		in := y
		for _, l := range b.layers {
			if y, err = e.convBN(l, y); err != nil {
				return ONNXOutput{}, err
			}
		}
		if b.residual {
			y = e.g.Node("Add", b.layers[0].name+".residual", []string{y, in})
		}
	}
	if y, err = e.convBN(m.head, y); err != nil {
		return ONNXOutput{}, err
	}
	return ONNXOutput{Embedding: nn.GlobalAvgPoolONNX(e.g, "avgpool", y), EmbedDim: m.embedDim,
		FeatureMap: y, FeatureShape: [3]int{m.embedDim, e.h, e.w}}, nil
}

// PosEmbedValues returns the position embeddings Forward adds for an h×w
// input, [1+rows·cols, D] row-major: the parameter itself on the training
// grid, its interpolation (PosEmbedFor, run once) otherwise.
func (v *ViT) PosEmbedValues(h, w int) ([]float32, error) {
	g := gorgonia.NewGraph()
	n, err := v.PosEmbedFor(g, h, w)
	if err != nil {
		return nil, err
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return nil, fmt.Errorf("position embeddings for %dx%d: %w", h, w, err)
	}
	return append([]float32(nil), n.Value().Data().([]float32)...), nil
}

func (v *ViT) onnx(e *onnxWriter, x string) (ONNXOutput, error) {
	d := v.cfg.EmbedDim
	rows, cols := nn.PosEmbedGrid(e.h, e.w, v.cfg.Patch)
	t := 1 + rows*cols
	pos, err := v.PosEmbedValues(e.h, e.w)
	if err != nil {
		return ONNXOutput{}, err
	}
	// The class token rides in position 0: the patch tokens get a zero
	// token in front (Pad) and the constant [T, D] adds cls + pos[0]
	// there and pos[i] at the patches, so no batch-sized Concat or Expand
	// is needed.
	cls := v.clsToken.Data()
	for j := 0; j < d; j++ {
		pos[j] += cls[j]
	}
	g := e.g
	p := nn.ConvONNX(g, "patch_embed.proj", x, v.patchEmbed, nil, false) // [N, D, rows, cols]
	p = g.Node("Reshape", "patch_embed.flatten", []string{p, g.Int64("patch_embed.flatten_shape", []int64{0, int64(d), -1}, 3)})
	p = g.Node("Transpose", "patch_embed.tokens", []string{p}, onnx.AttrInts("perm", 0, 2, 1)) // [N, rows·cols, D]
	p = g.Node("Pad", "cls_slot", []string{p, g.Int64("cls_slot.pads", []int64{0, 1, 0, 0, 0, 0}, 6)}, onnx.AttrString("mode", "constant"))
	y := g.Node("Add", "tokens", []string{p, g.Float("cls_token+pos_embed", pos, t, d)})
	for _, b := range v.blocks {
		a := b.attn.ONNX(g, b.name+".attn", y, t, b.norm1)
		y = g.Node("Add", b.name+".attn.residual", []string{y, a})
		m, err := b.mlp.ONNX(g, b.name+".mlp", y, b.norm2)
		if err != nil {
			return ONNXOutput{}, err
		}
		y = g.Node("Add", b.name+".mlp.residual", []string{y, m})
	}
	// LayerNorm is per token: the class token is taken first and normed
	// alone, which is where the final norm's affine can be applied as is.
	c := g.Node("Slice", "cls", []string{y, g.Int64("cls.starts", []int64{0}, 1), g.Int64("cls.ends", []int64{1}, 1), g.Int64("cls.axes", []int64{1}, 1)})
	c = g.Node("Flatten", "cls.flatten", []string{c}, onnx.AttrInt("axis", 1))
	return ONNXOutput{Embedding: v.norm.ONNX(g, "norm", c), EmbedDim: d}, nil
}
