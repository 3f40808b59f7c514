package detect

import (
	"math"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/trainer/nn"
)

// HeatPrior is the heatmap bias at initialisation, −log((1−π)/π) with
// π = 0.1 (CenterNet's −2.19): every location starts as "probably
// background", which keeps the focal loss of the first steps small.
var HeatPrior = float32(-math.Log((1 - 0.1) / 0.1))

// Head is the CenterNet head on a backbone's last feature map: an optional
// 2× nearest upsampling, a shared 3x3 convolution + ReLU, then two 1x1
// convolutions: K class-heatmap logits and 4 regression channels (box
// width and height in cells, centre offset x and y). CenterNet gives each
// output its own 3x3 layer; one shared layer costs a third and serves the
// light models here.
type Head struct {
	Upsample bool
	Conv     *nn.Conv2d // 3x3, in → channels
	Heat     *nn.Conv2d // 1x1, channels → classes
	Reg      *nn.Conv2d // 1x1, channels → 4
}

// NewHead builds a head for in-channel feature maps with classes heatmaps.
// The output layers start small (normal, std 0.01) as CenterNet's
// fill_fc_weights, the heatmap bias at HeatPrior.
func NewHead(in, channels, classes int, upsample bool, rng *rand.Rand) *Head {
	h := &Head{
		Upsample: upsample,
		Conv:     nn.NewConv2d("head.conv", in, channels, 3, nn.ConvParams{Padding: [2]int{1, 1}}, true, rng),
		Heat:     nn.NewConv2d("head.heat", channels, classes, 1, nn.ConvParams{}, true, rng),
		Reg:      nn.NewConv2d("head.reg", channels, 4, 1, nn.ConvParams{}, true, rng),
	}
	for _, c := range []*nn.Conv2d{h.Heat, h.Reg} {
		w := c.Weight.Data()
		for i := range w {
			w[i] = float32(rng.NormFloat64() * 0.01)
		}
	}
	nn.Fill(h.Heat.Bias, HeatPrior)
	return h
}

// Forward returns the heatmap logits [N, K, h, w] and the regression map
// [N, 4, h, w] for a feature map [N, C, h', w'] (h = 2h' with upsampling).
func (h *Head) Forward(fm *gorgonia.Node) (heat, reg *gorgonia.Node, err error) {
	x := fm
	if h.Upsample {
		if x, err = UpsampleOp(x); err != nil {
			return nil, nil, err
		}
	}
	if x, err = h.Conv.Forward(x); err != nil {
		return nil, nil, err
	}
	if x, err = nn.ActivationOp(x, nn.ReLU); err != nil {
		return nil, nil, err
	}
	if heat, err = h.Heat.Forward(x); err != nil {
		return nil, nil, err
	}
	if reg, err = h.Reg.Forward(x); err != nil {
		return nil, nil, err
	}
	return heat, reg, nil
}

// Params lists the head's learnable parameters.
func (h *Head) Params() []*nn.Param {
	return []*nn.Param{h.Conv.Weight, h.Conv.Bias, h.Heat.Weight, h.Heat.Bias, h.Reg.Weight, h.Reg.Bias}
}
