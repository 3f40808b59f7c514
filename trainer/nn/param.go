package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"weak"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Param is one learnable tensor. Its value lives outside any graph and is
// shared by the node Node creates in each graph, so a model can be run by a
// training graph and an evaluation graph (or by views of different sizes)
// with one set of weights, as a torch module is.
type Param struct {
	Name  string
	Value *tensor.Dense // float32

	// nodes holds the parameter's node in each graph weakly: a graph owns
	// its nodes and every op's buffers (all of a batch's activations), so
	// a strong reference here kept each graph a model was ever run in
	// alive as long as the model (gigabytes when feature extraction
	// rebuilt graphs per part).
	mu    sync.Mutex
	nodes map[weak.Pointer[gorgonia.ExprGraph]]weak.Pointer[gorgonia.Node]
}

// NewParam returns a zero parameter of the given shape.
func NewParam(name string, shape ...int) *Param {
	return &Param{Name: name, Value: tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))}
}

// Data returns the parameter's float32 storage.
func (p *Param) Data() []float32 { return p.Value.Float32s() }

// Node returns the parameter's node in g, creating it on first use.
func (p *Param) Node(g *gorgonia.ExprGraph) *gorgonia.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := weak.Make(g)
	if w, ok := p.nodes[key]; ok {
		if n := w.Value(); n != nil {
			return n
		}
	}
	if p.nodes == nil {
		p.nodes = map[weak.Pointer[gorgonia.ExprGraph]]weak.Pointer[gorgonia.Node]{}
	}
	// Forget the graphs that are gone (their nodes went with them).
	for k, w := range p.nodes {
		if k.Value() == nil || w.Value() == nil {
			delete(p.nodes, k)
		}
	}
	// gorgonia merges input nodes of equal name and shape, so the node name
	// carries the parameter's identity: a student and a teacher with the
	// same state-dict names must stay two sets of nodes.
	n := gorgonia.NewTensor(g, tensor.Float32, p.Value.Dims(), gorgonia.WithShape(p.Value.Shape()...),
		gorgonia.WithName(fmt.Sprintf("%s@%p", p.Name, p)), gorgonia.WithValue(p.Value))
	p.nodes[key] = weak.Make(n)
	return n
}

// Entry is one tensor of a model's state dict, named as PyTorch names it.
// F32 or I64 aliases the model's storage, so writing into it loads weights.
type Entry struct {
	Name  string
	Shape []int
	F32   []float32
	Count *int64 // a scalar int64 buffer (num_batches_tracked); F32 is nil then
	Param *Param // the learnable parameter, nil for buffers
}

// KaimingNormalFanOut fills p with N(0, 2/fan_out), fan_out = out channels ×
// kernel area: torchvision's init for ResNet and MobileNetV2 convolutions.
func KaimingNormalFanOut(p *Param, rng *rand.Rand) {
	s := p.Value.Shape()
	fanOut := s[0]
	for _, d := range s[2:] {
		fanOut *= d
	}
	std := math.Sqrt(2 / float64(fanOut))
	for i, d := 0, p.Data(); i < len(d); i++ {
		d[i] = float32(rng.NormFloat64() * std)
	}
}

// TruncNormal fills p with N(0, std²) truncated to [-2, 2] (absolute, as
// timm's trunc_normal_ with its default bounds).
func TruncNormal(p *Param, std float64, rng *rand.Rand) {
	for i, d := 0, p.Data(); i < len(d); i++ {
		for {
			v := rng.NormFloat64() * std
			if v >= -2 && v <= 2 {
				d[i] = float32(v)
				break
			}
		}
	}
}

// Fill sets every element of p to v.
func Fill(p *Param, v float32) {
	for i, d := 0, p.Data(); i < len(d); i++ {
		d[i] = v
	}
}

// Conv2d is torch.nn.Conv2d without bias unless Bias is set (weight
// [out, in/groups, k, k]).
type Conv2d struct {
	Weight *Param
	Bias   *Param
	P      ConvParams
}

// NewConv2d returns a convolution named prefix ("layer1.0.conv1") with
// square kernel k, initialised as torchvision does.
func NewConv2d(prefix string, in, out, k int, p ConvParams, bias bool, rng *rand.Rand) *Conv2d {
	p = p.withDefaults()
	c := &Conv2d{Weight: NewParam(prefix+".weight", out, in/p.Groups, k, k), P: p}
	KaimingNormalFanOut(c.Weight, rng)
	if bias {
		c.Bias = NewParam(prefix+".bias", out)
	}
	return c
}

// Forward convolves x [N, C, H, W].
func (c *Conv2d) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	y, err := Conv2dOp(x, c.Weight.Node(x.Graph()), c.P)
	if err != nil || c.Bias == nil {
		return y, err
	}
	return ChannelBiasOp(y, c.Bias.Node(x.Graph()))
}

// Entries returns the state-dict entries.
func (c *Conv2d) Entries() []Entry {
	e := []Entry{paramEntry(c.Weight)}
	if c.Bias != nil {
		e = append(e, paramEntry(c.Bias))
	}
	return e
}

func paramEntry(p *Param) Entry {
	return Entry{Name: p.Name, Shape: []int(p.Value.Shape().Clone()), F32: p.Data(), Param: p}
}

// BatchNorm is torch.nn.BatchNorm2d/1d: affine weight and bias plus running
// statistics shared by every op built from it.
type BatchNorm struct {
	prefix string
	Weight *Param
	Bias   *Param
	Stats  *BNStats
}

// NewBatchNorm returns a BatchNorm over c channels with weight 1, bias 0,
// running mean 0, running variance 1, momentum 0.1, eps 1e-5.
func NewBatchNorm(prefix string, c int) *BatchNorm {
	b := &BatchNorm{prefix: prefix, Weight: NewParam(prefix+".weight", c), Bias: NewParam(prefix+".bias", c), Stats: NewBNStats(c)}
	Fill(b.Weight, 1)
	return b
}

// Forward normalises x [N, C, ...]; train selects batch statistics (and
// updates the running ones) rather than the running statistics.
func (b *BatchNorm) Forward(x *gorgonia.Node, train bool) (*gorgonia.Node, error) {
	return BatchNormOp(x, b.Weight.Node(x.Graph()), b.Bias.Node(x.Graph()), b.Stats, train)
}

// ForwardAct is Forward followed by the activation a (ReLU or ReLU6),
// fused into one op (BatchNormActOp).
func (b *BatchNorm) ForwardAct(x *gorgonia.Node, train bool, a Activation) (*gorgonia.Node, error) {
	return BatchNormActOp(x, b.Weight.Node(x.Graph()), b.Bias.Node(x.Graph()), b.Stats, train, a)
}

// Entries returns weight, bias, running_mean, running_var and
// num_batches_tracked, in torch's order.
func (b *BatchNorm) Entries() []Entry {
	c := len(b.Stats.Mean)
	return []Entry{
		paramEntry(b.Weight), paramEntry(b.Bias),
		{Name: b.prefix + ".running_mean", Shape: []int{c}, F32: b.Stats.Mean},
		{Name: b.prefix + ".running_var", Shape: []int{c}, F32: b.Stats.Var},
		{Name: b.prefix + ".num_batches_tracked", Shape: []int{}, Count: &b.Stats.NumBatchesTracked},
	}
}

// Linear is torch.nn.Linear (weight [out, in], optional bias [out]).
type Linear struct {
	Weight *Param
	Bias   *Param
}

// NewLinear returns a linear layer with timm's ViT init: weight
// trunc-normal std 0.02, bias 0.
func NewLinear(prefix string, in, out int, bias bool, rng *rand.Rand) *Linear {
	l := &Linear{Weight: NewParam(prefix+".weight", out, in)}
	TruncNormal(l.Weight, 0.02, rng)
	if bias {
		l.Bias = NewParam(prefix+".bias", out)
	}
	return l
}

// Forward applies the layer to x [..., in].
func (l *Linear) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	var b *gorgonia.Node
	if l.Bias != nil {
		b = l.Bias.Node(x.Graph())
	}
	return LinearOp(x, l.Weight.Node(x.Graph()), b)
}

// Entries returns the state-dict entries.
func (l *Linear) Entries() []Entry {
	e := []Entry{paramEntry(l.Weight)}
	if l.Bias != nil {
		e = append(e, paramEntry(l.Bias))
	}
	return e
}

// LayerNorm is torch.nn.LayerNorm over the last dimension.
type LayerNorm struct {
	Weight *Param
	Bias   *Param
	Eps    float64
}

// NewLayerNorm returns a LayerNorm over d features with weight 1, bias 0.
func NewLayerNorm(prefix string, d int, eps float64) *LayerNorm {
	l := &LayerNorm{Weight: NewParam(prefix+".weight", d), Bias: NewParam(prefix+".bias", d), Eps: eps}
	Fill(l.Weight, 1)
	return l
}

// Forward normalises x [..., d].
func (l *LayerNorm) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	return LayerNormOp(x, l.Weight.Node(x.Graph()), l.Bias.Node(x.Graph()), l.Eps)
}

// Entries returns the state-dict entries.
func (l *LayerNorm) Entries() []Entry {
	return []Entry{paramEntry(l.Weight), paramEntry(l.Bias)}
}

// Attention is timm's multi-head self-attention: a qkv projection (with
// bias), scaled dot-product attention per head, an output projection.
type Attention struct {
	QKV   *Linear
	Proj  *Linear
	Heads int
}

// NewAttention returns attention over d features split into heads, named
// prefix.qkv and prefix.proj.
func NewAttention(prefix string, d, heads int, rng *rand.Rand) *Attention {
	return &Attention{QKV: NewLinear(prefix+".qkv", d, 3*d, true, rng), Proj: NewLinear(prefix+".proj", d, d, true, rng), Heads: heads}
}

// Forward applies attention to x [B, T, d] with scale head_dim^-0.5.
func (a *Attention) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	d := a.Proj.Weight.Value.Shape()[0]
	h, err := a.QKV.Forward(x)
	if err != nil {
		return nil, err
	}
	if h, err = AttentionOp(h, a.Heads, 1/math.Sqrt(float64(d/a.Heads))); err != nil {
		return nil, err
	}
	return a.Proj.Forward(h)
}

// Entries returns the state-dict entries.
func (a *Attention) Entries() []Entry { return append(a.QKV.Entries(), a.Proj.Entries()...) }

// MLP is a transformer block's feed-forward part: fc1, GELU, fc2.
type MLP struct {
	FC1, FC2 *Linear
}

// NewMLP returns an MLP d → hidden → d named prefix.fc1 and prefix.fc2.
func NewMLP(prefix string, d, hidden int, rng *rand.Rand) *MLP {
	return &MLP{FC1: NewLinear(prefix+".fc1", d, hidden, true, rng), FC2: NewLinear(prefix+".fc2", hidden, d, true, rng)}
}

// Forward applies the MLP to x [..., d].
func (m *MLP) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	h, err := m.FC1.Forward(x)
	if err != nil {
		return nil, err
	}
	if h, err = ActivationOp(h, GELU); err != nil {
		return nil, err
	}
	return m.FC2.Forward(h)
}

// Entries returns the state-dict entries.
func (m *MLP) Entries() []Entry { return append(m.FC1.Entries(), m.FC2.Entries()...) }
