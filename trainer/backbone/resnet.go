package backbone

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/trainer/nn"
)

// ResNet is torchvision's ResNet (v1.5: stride on the 3x3 convolution of a
// bottleneck) without its classifier in the forward pass.
type ResNet struct {
	arch       string
	stem       *convBN
	maxPool    bool          // false with Options.SmallImageStem
	blocks     [][]*resBlock // layer1..layer4
	classifier *nn.Linear    // fc, when Options.Classifier
	embedDim   int
}

// resBlock is a BasicBlock (two 3x3 convolutions) or a Bottleneck (1x1,
// 3x3, 1x1 with 4x expansion), with an optional projection shortcut.
type resBlock struct {
	convs      []*convBN // the last one has no activation
	downsample *convBN
}

// NewResNet builds "resnet18", "resnet34" or "resnet50" with torchvision's
// initialisation (convolutions Kaiming-normal fan-out, BatchNorm 1/0).
func NewResNet(arch string, o Options) *ResNet {
	var depths []int
	bottleneck := false
	switch arch {
	case "resnet18":
		depths = []int{2, 2, 2, 2}
	case "resnet34":
		depths = []int{3, 4, 6, 3}
	case "resnet50":
		depths, bottleneck = []int{3, 4, 6, 3}, true
	default:
		panic("backbone: NewResNet: unknown arch " + arch)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5e5))
	relu := activation(nn.ReLU)
	// conv+bn pairs carry torchvision's names (conv1/bn1, layerL.B.conv2/bn2, …).
	named := func(conv, bn string, in, out, k, stride int, a *nn.Activation) *convBN {
		p := nn.ConvParams{Stride: [2]int{stride, stride}, Padding: [2]int{k / 2, k / 2}}
		return &convBN{name: conv, conv: nn.NewConv2d(conv, in, out, k, p, false, rng), bn: nn.NewBatchNorm(bn, out), act: a}
	}
	r := &ResNet{arch: arch, maxPool: !o.SmallImageStem}
	base := scaledWidth(64, o.Width)
	if o.SmallImageStem {
		r.stem = named("conv1", "bn1", 3, base, 3, 1, relu)
	} else {
		r.stem = named("conv1", "bn1", 3, base, 7, 2, relu)
	}
	expansion := 1
	if bottleneck {
		expansion = 4
	}
	in := base
	for li, n := range depths {
		width := base << li
		var layer []*resBlock
		for bi := 0; bi < n; bi++ {
			stride := 1
			if bi == 0 && li > 0 {
				stride = 2
			}
			p := fmt.Sprintf("layer%d.%d.", li+1, bi)
			b := &resBlock{}
			if bottleneck {
				b.convs = []*convBN{
					named(p+"conv1", p+"bn1", in, width, 1, 1, relu),
					named(p+"conv2", p+"bn2", width, width, 3, stride, relu),
					named(p+"conv3", p+"bn3", width, width*expansion, 1, 1, nil),
				}
			} else {
				b.convs = []*convBN{
					named(p+"conv1", p+"bn1", in, width, 3, stride, relu),
					named(p+"conv2", p+"bn2", width, width, 3, 1, nil),
				}
			}
			if stride != 1 || in != width*expansion {
				b.downsample = named(p+"downsample.0", p+"downsample.1", in, width*expansion, 1, stride, nil)
			}
			in = width * expansion
			layer = append(layer, b)
		}
		r.blocks = append(r.blocks, layer)
	}
	r.embedDim = in
	if o.Classifier {
		r.classifier = nn.NewLinear("fc", in, 1000, true, rng)
	}
	return r
}

// Arch implements Backbone.
func (r *ResNet) Arch() string { return r.arch }

// EmbedDim implements Backbone: 512 (ResNet-18/34) or 2048 (ResNet-50).
func (r *ResNet) EmbedDim() int { return r.embedDim }

// Forward implements Backbone.
func (r *ResNet) Forward(x *gorgonia.Node, train bool) (Output, error) {
	y, err := r.stem.forward(x, train)
	if err != nil {
		return Output{}, err
	}
	if r.maxPool {
		if y, err = nn.MaxPool2dOp(y, 3, 2, 1); err != nil {
			return Output{}, fmt.Errorf("maxpool: %w", err)
		}
	}
	for _, layer := range r.blocks {
		for _, b := range layer {
			if y, err = b.forward(y, train); err != nil {
				return Output{}, err
			}
		}
	}
	pooled, err := nn.GlobalAvgPoolOp(y)
	if err != nil {
		return Output{}, fmt.Errorf("avgpool: %w", err)
	}
	return Output{Embedding: pooled, FeatureMap: y}, nil
}

func (b *resBlock) forward(x *gorgonia.Node, train bool) (*gorgonia.Node, error) {
	y := x
	var err error
	for _, c := range b.convs {
		if y, err = c.forward(y, train); err != nil {
			return nil, err
		}
	}
	identity := x
	if b.downsample != nil {
		if identity, err = b.downsample.forward(x, train); err != nil {
			return nil, err
		}
	}
	if y, err = nn.AddOp(y, identity); err != nil {
		return nil, fmt.Errorf("%s residual: %w", b.convs[0].name, err)
	}
	return act(y, nn.ReLU, b.convs[0].name)
}

// Entries implements Backbone, in torchvision's state-dict order.
func (r *ResNet) Entries() []nn.Entry {
	e := r.stem.entries()
	for _, layer := range r.blocks {
		for _, b := range layer {
			for _, c := range b.convs {
				e = append(e, c.entries()...)
			}
			if b.downsample != nil {
				e = append(e, b.downsample.entries()...)
			}
		}
	}
	if r.classifier != nil {
		e = append(e, r.classifier.Entries()...)
	}
	return e
}

// Params implements Backbone.
func (r *ResNet) Params() []*nn.Param {
	p := r.stem.params()
	for _, layer := range r.blocks {
		for _, b := range layer {
			for _, c := range b.convs {
				p = append(p, c.params()...)
			}
			if b.downsample != nil {
				p = append(p, b.downsample.params()...)
			}
		}
	}
	return p
}
