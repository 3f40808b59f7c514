package backbone

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/trainer/nn"
)

// MobileNetV2 is torchvision's mobilenet_v2 at width 1.0: features.0 (3x3
// stride-2 conv), 17 inverted residual blocks, features.18 (1x1 conv to
// 1280), each convolution followed by BatchNorm and ReLU6 except the blocks'
// linear projections.
type MobileNetV2 struct {
	stem       *convBN
	blocks     []*invertedResidual
	head       *convBN
	classifier *nn.Linear // classifier.1, when Options.Classifier
	embedDim   int        // 1280 unless widened
}

type invertedResidual struct {
	layers   []*convBN // [expand 1x1,] depthwise 3x3, project 1x1 (no activation)
	residual bool
}

// mobileNetV2Settings are torchvision's (expansion t, channels c, repeats n,
// first stride s).
var mobileNetV2Settings = [][4]int{
	{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
	{6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
}

// NewMobileNetV2 builds MobileNetV2 with torchvision's initialisation.
func NewMobileNetV2(o Options) *MobileNetV2 {
	rng := rand.New(rand.NewPCG(o.Seed, 0x3b2))
	relu6 := activation(nn.ReLU6)
	unit := func(prefix string, in, out, k, stride, groups int, a *nn.Activation) *convBN {
		p := nn.ConvParams{Stride: [2]int{stride, stride}, Padding: [2]int{(k - 1) / 2, (k - 1) / 2}, Groups: groups}
		return &convBN{name: prefix, conv: nn.NewConv2d(prefix+".0", in, out, k, p, false, rng),
			bn: nn.NewBatchNorm(prefix+".1", out), act: a}
	}
	w := o.width()
	stemStride := 2
	if o.SmallImageStem {
		stemStride = 1
	}
	in := makeDivisible(32*w, 8)
	m := &MobileNetV2{stem: unit("features.0", 3, in, 3, stemStride, 1, relu6)}
	idx := 1
	for _, s := range mobileNetV2Settings {
		t, c, n, stride := s[0], makeDivisible(float64(s[1])*w, 8), s[2], s[3]
		for i := 0; i < n; i++ {
			if i > 0 {
				stride = 1
			}
			p := fmt.Sprintf("features.%d.conv.", idx)
			hidden := in * t
			b := &invertedResidual{residual: stride == 1 && in == c}
			j := 0
			if t != 1 {
				b.layers = append(b.layers, unit(fmt.Sprintf("%s%d", p, j), in, hidden, 1, 1, 1, relu6))
				j++
			}
			b.layers = append(b.layers, unit(fmt.Sprintf("%s%d", p, j), hidden, hidden, 3, stride, hidden, relu6))
			j++
			// The projection is a bare conv (conv.j) and a bare BatchNorm
			// (conv.j+1), not a ConvBNActivation, hence the flat names.
			proj := &convBN{name: fmt.Sprintf("%s%d", p, j),
				conv: nn.NewConv2d(fmt.Sprintf("%s%d", p, j), hidden, c, 1, nn.ConvParams{}, false, rng),
				bn:   nn.NewBatchNorm(fmt.Sprintf("%s%d", p, j+1), c)}
			b.layers = append(b.layers, proj)
			m.blocks = append(m.blocks, b)
			in = c
			idx++
		}
	}
	last := makeDivisible(1280*max(1, w), 8)
	m.head = unit(fmt.Sprintf("features.%d", idx), in, last, 1, 1, 1, relu6)
	m.embedDim = last
	if o.Classifier {
		m.classifier = nn.NewLinear("classifier.1", last, 1000, true, rng)
		for i, d := 0, m.classifier.Weight.Data(); i < len(d); i++ {
			d[i] = float32(rng.NormFloat64() * 0.01)
		}
	}
	return m
}

// Arch implements Backbone.
func (m *MobileNetV2) Arch() string { return "mobilenet_v2" }

// EmbedDim implements Backbone: 1280 at width ≤ 1.
func (m *MobileNetV2) EmbedDim() int { return m.embedDim }

// Forward implements Backbone.
func (m *MobileNetV2) Forward(x *gorgonia.Node, train bool) (Output, error) {
	y, err := m.stem.forward(x, train)
	if err != nil {
		return Output{}, err
	}
	for _, b := range m.blocks {
		in := y
		for _, l := range b.layers {
			if y, err = l.forward(y, train); err != nil {
				return Output{}, err
			}
		}
		if b.residual {
			if y, err = nn.AddOp(y, in); err != nil {
				return Output{}, fmt.Errorf("%s residual: %w", b.layers[0].name, err)
			}
		}
	}
	if y, err = m.head.forward(y, train); err != nil {
		return Output{}, err
	}
	pooled, err := nn.GlobalAvgPoolOp(y)
	if err != nil {
		return Output{}, fmt.Errorf("avgpool: %w", err)
	}
	return Output{Embedding: pooled, FeatureMap: y}, nil
}

// Entries implements Backbone, in torchvision's state-dict order.
func (m *MobileNetV2) Entries() []nn.Entry {
	e := m.stem.entries()
	for _, b := range m.blocks {
		for _, l := range b.layers {
			e = append(e, l.entries()...)
		}
	}
	e = append(e, m.head.entries()...)
	if m.classifier != nil {
		e = append(e, m.classifier.Entries()...)
	}
	return e
}

// Params implements Backbone.
func (m *MobileNetV2) Params() []*nn.Param {
	p := m.stem.params()
	for _, b := range m.blocks {
		for _, l := range b.layers {
			p = append(p, l.params()...)
		}
	}
	return append(p, m.head.params()...)
}
