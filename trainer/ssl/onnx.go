package ssl

import (
	"fmt"
	"strings"

	"github.com/sslight-go/sslight/sinks/onnx"
	"github.com/sslight-go/sslight/trainer/nn"
)

// The heads' ONNX forms, in evaluation mode (BatchNorm1d with its running
// statistics), written with trainer/nn's ONNX layers on the backbone's
// embedding [N, InDim]; fold folds every BatchNorm into the linear before
// it (a BatchNormalization node otherwise).

// ONNX writes Forward's logits: the MLP, the L2-normalised bottleneck and
// the weight-normalised last layer, whose weight g·v/max(‖v‖, 1e-12) is
// computed once here as Forward computes it. It returns the logits' name
// and width (OutDim).
func (h *DINOHead) ONNX(g *onnx.Graph, x string, fold bool) (string, int, error) {
	y := x
	for l, lin := range h.linears {
		name := trimWeight(lin.Weight.Name)
		if l == len(h.linears)-1 {
			y = lin.GemmONNX(g, name, y, nil, fold)
			break
		}
		y = lin.GemmONNX(g, name, y, h.norms[l], fold)
		var err error
		if y, err = nn.ActivationONNX(g, name+".gelu", y, nn.GELU); err != nil {
			return "", 0, fmt.Errorf("DINO head: %w", err)
		}
	}
	prefix := strings.TrimSuffix(h.V.Name, "last_layer.weight_v")
	b := h.cfg.BottleneckDim
	y = nn.L2NormalizeONNX(g, prefix+"bottleneck.normalized", y, b)
	w := nn.L2NormalizeRows(h.V.Data(), b)
	for r, f := range h.G.Data() {
		for j := r * b; j < (r+1)*b; j++ {
			w[j] *= f // float32, as ScaleRowsOp
		}
	}
	return nn.GemmNoBiasONNX(g, prefix+"last_layer", y, prefix+"last_layer.weight", w, h.cfg.OutDim, b), h.cfg.OutDim, nil
}

// ONNX writes Forward: the projection MLP, un-normalised (MoCoLoss
// normalises it). It returns the output's name and width.
func (h *MoCoHead) ONNX(g *onnx.Graph, x string, fold bool) (string, int, error) {
	y, err := h.proj.onnx(g, x, fold)
	if err != nil {
		return "", 0, fmt.Errorf("MoCo head: %w", err)
	}
	return y, h.proj.linears[len(h.proj.linears)-1].Weight.Value.Shape()[0], nil
}

// ONNX writes Forward: the L2-normalised projection (embedding, OutDim
// wide) and the prototype scores (Prototypes wide), with the prototypes as
// stored (Forward does not renormalise them; the trainer does before each
// step).
func (h *SwAVHead) ONNX(g *onnx.Graph, x string, fold bool) (embedding, scores string, err error) {
	y, err := h.proj.onnx(g, x, fold)
	if err != nil {
		return "", "", fmt.Errorf("SwAV head: %w", err)
	}
	prefix := strings.TrimSuffix(h.Prototypes.Name, "prototypes.weight")
	embedding = nn.L2NormalizeONNX(g, prefix+"projection.normalized", y, h.cfg.OutDim)
	scores = nn.GemmNoBiasONNX(g, prefix+"prototypes", embedding, h.Prototypes.Name, h.Prototypes.Data(), h.cfg.Prototypes, h.cfg.OutDim)
	return embedding, scores, nil
}

func (p *projection) onnx(g *onnx.Graph, x string, fold bool) (string, error) {
	y := x
	for l, lin := range p.linears {
		name := trimWeight(lin.Weight.Name)
		if l == len(p.linears)-1 {
			return lin.GemmONNX(g, name, y, nil, fold), nil
		}
		y = lin.GemmONNX(g, name, y, p.norms[l], fold)
		var err error
		if y, err = nn.ActivationONNX(g, name+".relu", y, nn.ReLU); err != nil {
			return "", err
		}
	}
	return y, nil
}

func trimWeight(name string) string { return strings.TrimSuffix(name, ".weight") }
