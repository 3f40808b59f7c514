// Package backbone builds the vision backbones SSLight pre-trains —
// torchvision's ResNet-18/34/50 and MobileNetV2 and DINO's ViT-Tiny/16 — out
// of trainer/nn layers on gorgonia, with PyTorch's parameter names so that
// weights move both ways through safetensors.
//
// A Backbone holds its parameters outside any graph (see nn.Param); Forward
// adds one pass to the graph of its input, so the same backbone can be
// applied to views of different sizes in one graph, or to a training and an
// evaluation graph, with one set of weights and BatchNorm statistics.
package backbone

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/trainer/nn"
)

// Output is what one forward pass produces.
type Output struct {
	// Embedding is what the SSL head consumes, [N, D]: the global average of
	// the last feature map for CNNs, the class token after the final norm
	// for ViTs.
	Embedding *gorgonia.Node
	// FeatureMap is the last convolutional feature map [N, C, h, w] of a CNN
	// (nil for ViTs).
	FeatureMap *gorgonia.Node
	// Tokens is a ViT's final-norm output [N, 1+patches, D] (nil for CNNs).
	Tokens *gorgonia.Node
}

// Backbone is one architecture with its weights.
type Backbone interface {
	// Arch is the architecture's name ("resnet18", "mobilenet_v2", "vit_tiny").
	Arch() string
	// EmbedDim is the width of Output.Embedding.
	EmbedDim() int
	// Forward adds a pass over x [N, 3, H, W] to x's graph. train selects
	// batch statistics for BatchNorm (updating the running ones) and enables
	// stochastic depth.
	Forward(x *gorgonia.Node, train bool) (Output, error)
	// Entries lists the state dict in PyTorch's order, classifier last when
	// the backbone carries one.
	Entries() []nn.Entry
	// Params lists the learnable parameters the forward pass uses (the
	// classifier is not among them).
	Params() []*nn.Param
}

// Options configure construction.
type Options struct {
	// Seed makes the random initialisation reproducible.
	Seed uint64
	// Classifier keeps torchvision's 1000-class classifier (fc /
	// classifier.1) among the entries, unused by Forward, so that state
	// dicts load strictly in both directions. Ignored for ViTs (DINO has no
	// head in the backbone).
	Classifier bool
	// DropPath is the ViT's stochastic-depth rate, spread linearly over the
	// blocks as in DINO (0 disables it).
	DropPath float64
	// PatchSize is the ViT's patch size: 16 (default) or 32.
	PatchSize int
	// Width multiplies the channel widths of a CNN (0 means 1): ResNet
	// stages become round(64·w)·2^i wide (0.25 gives 16/32/64/128);
	// MobileNetV2 follows torchvision's width_mult (channels rounded to a
	// multiple of 8, the last 1280 never narrowed). MODEL.WIDTH.
	Width float64
	// SmallImageStem replaces a CNN's stride-4 stem for small images:
	// ResNet gets a 3x3 stride-1 conv1 and no max-pool, MobileNetV2 a
	// stride-1 features.0. MODEL.SMALL_IMAGE_STEM.
	SmallImageStem bool
}

func (o Options) width() float64 {
	if o.Width == 0 {
		return 1
	}
	return o.Width
}

// scaledWidth is a ResNet stage width c scaled by w, at least 1.
func scaledWidth(c int, w float64) int {
	if w == 0 {
		w = 1
	}
	return max(1, int(math.Round(float64(c)*w)))
}

// makeDivisible is torchvision's _make_divisible: v rounded to the nearest
// multiple of divisor, never more than 10% below v.
func makeDivisible(v float64, divisor int) int {
	n := max(divisor, int(v+float64(divisor)/2)/divisor*divisor)
	if float64(n) < 0.9*v {
		n += divisor
	}
	return n
}

func (o Options) patch() int {
	if o.PatchSize == 0 {
		return 16
	}
	return o.PatchSize
}

// Archs lists the architectures New builds.
func Archs() []string {
	a := make([]string, 0, len(constructors))
	for k := range constructors {
		a = append(a, k)
	}
	sort.Strings(a)
	return a
}

var constructors = map[string]func(Options) Backbone{
	"resnet18":     func(o Options) Backbone { return NewResNet("resnet18", o) },
	"resnet34":     func(o Options) Backbone { return NewResNet("resnet34", o) },
	"resnet50":     func(o Options) Backbone { return NewResNet("resnet50", o) },
	"mobilenet_v2": func(o Options) Backbone { return NewMobileNetV2(o) },
	"vit_tiny":     func(o Options) Backbone { return NewViT(ViTTiny16.WithPatch(o.patch()), o) },
	"vit_small":    func(o Options) Backbone { return NewViT(ViTSmall16.WithPatch(o.patch()), o) },
}

// New builds the named architecture.
func New(arch string, o Options) (Backbone, error) {
	c, ok := constructors[arch]
	if !ok {
		return nil, fmt.Errorf("backbone: unknown architecture %q (have %s)", arch, strings.Join(Archs(), ", "))
	}
	if p := o.patch(); p != 16 && p != 32 && strings.HasPrefix(arch, "vit") {
		return nil, fmt.Errorf("backbone: %s with patch size %d: want 16 or 32", arch, p)
	}
	if !(o.Width >= 0) || math.IsInf(o.Width, 0) {
		return nil, fmt.Errorf("backbone: %s with width %v: want a finite multiplier > 0", arch, o.Width)
	}
	if strings.HasPrefix(arch, "vit") && (o.width() != 1 || o.SmallImageStem) {
		return nil, fmt.Errorf("backbone: %s: width and small-image stem apply to CNNs only", arch)
	}
	return c(o), nil
}

// NumParams counts the learnable parameters the forward pass uses (the
// classifier excluded), the figure of the paper's table.
func NumParams(b Backbone) int {
	n := 0
	for _, p := range b.Params() {
		n += len(p.Data())
	}
	return n
}

// relu applies an activation and wraps errors with where.
func act(x *gorgonia.Node, a nn.Activation, where string) (*gorgonia.Node, error) {
	y, err := nn.ActivationOp(x, a)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return y, nil
}

// convBN is a convolution followed by BatchNorm and an optional activation,
// the unit both CNNs are made of.
type convBN struct {
	conv *nn.Conv2d
	bn   *nn.BatchNorm
	act  *nn.Activation
	name string
}

func (c *convBN) forward(x *gorgonia.Node, train bool) (*gorgonia.Node, error) {
	y, err := c.conv.Forward(x)
	if err != nil {
		return nil, fmt.Errorf("%s conv: %w", c.name, err)
	}
	if c.act != nil && (*c.act == nn.ReLU || *c.act == nn.ReLU6) {
		// One fused op: the activation costs no extra pass over the
		// tensor, forward or backward.
		if y, err = c.bn.ForwardAct(y, train, *c.act); err != nil {
			return nil, fmt.Errorf("%s bn+%v: %w", c.name, *c.act, err)
		}
		return y, nil
	}
	if y, err = c.bn.Forward(y, train); err != nil {
		return nil, fmt.Errorf("%s bn: %w", c.name, err)
	}
	if c.act != nil {
		return act(y, *c.act, c.name)
	}
	return y, nil
}

func (c *convBN) entries() []nn.Entry {
	return append(c.conv.Entries(), c.bn.Entries()...)
}

func (c *convBN) params() []*nn.Param {
	return []*nn.Param{c.conv.Weight, c.bn.Weight, c.bn.Bias}
}

func activation(a nn.Activation) *nn.Activation { return &a }
