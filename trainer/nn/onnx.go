package nn

import (
	"fmt"
	"math"
	"strings"

	"github.com/sslight-go/sslight/sinks/onnx"
)

// The ONNX forms of the layers, in evaluation mode (BatchNorm with its
// running statistics, no stochastic depth): each writes the nodes that
// compute what its Forward computes into an onnx.Graph, under opset 13.
//
// The graphs are kept to what OpenCV 4.6's ONNX importer (Debian's
// python3-opencv) loads and runs correctly, checked op by op against it:
//
//   - ReLU6 is 6 − Relu(6 − Relu(x)): its importer takes Clip only with
//     min/max attributes (opset ≤ 10), and Min/Max only between two
//     computed tensors;
//   - LayerNormalization (opset 17) is missing there, and ReduceMean over
//     the last axis of a [N, T, D] tensor comes out with the wrong shape,
//     and it cannot broadcast a [N, T, 1] tensor against [N, T, D] nor
//     multiply [N, T, D] by a [D] vector. LayerNorm is therefore written
//     with MatMuls: the mean is x·(1/D)·1 [D, 1], spread back over the
//     features by a [1, D] row of ones, the same for the variance; its
//     affine γ, β is folded into the linear layer that follows it (the
//     final norm, on class tokens [N, D], applies it with Mul and Add).
//   - GELU is the exact x·½·(1 + erf(x/√2)) with ONNX's Erf, which it has.
//   - L2 normalisation max(‖x‖, 1e-12) is written sqrt(‖x‖² + 1e-24),
//     the same number unless ‖x‖ < 1e-11.
//
// Weights derived at export (folded BatchNorm, the LayerNorm affine in the
// next linear, the attention scale in the query weights) are computed in
// float64 and rounded to float32 once.

// ConvONNX writes the convolution c on x [N, C, H, W], followed by the
// BatchNorm bn when bn is not nil: folded into the convolution's weights
// and bias when fold (w' = w·γ/√(var+eps), b' = β − mean·γ/√(var+eps)),
// as a BatchNormalization node otherwise. It returns the output's name.
func ConvONNX(g *onnx.Graph, name, x string, c *Conv2d, bn *BatchNorm, fold bool) string {
	s := c.Weight.Value.Shape() // [out, in/groups, kh, kw]
	p := c.P.withDefaults()
	attrs := []*onnx.AttributeProto{
		onnx.AttrInts("kernel_shape", int64(s[2]), int64(s[3])),
		onnx.AttrInts("strides", int64(p.Stride[0]), int64(p.Stride[1])),
		onnx.AttrInts("pads", int64(p.Padding[0]), int64(p.Padding[1]), int64(p.Padding[0]), int64(p.Padding[1])),
		onnx.AttrInts("dilations", int64(p.Dilation[0]), int64(p.Dilation[1])),
		onnx.AttrInt("group", int64(p.Groups)),
	}
	wname := c.Weight.Name
	if bn != nil && fold {
		scale, shift := bn.foldCoefficients()
		w := c.Weight.Data()
		per := len(w) / s[0]
		fw := make([]float32, len(w))
		fb := make([]float32, s[0])
		for o := 0; o < s[0]; o++ {
			for i := o * per; i < (o+1)*per; i++ {
				fw[i] = float32(float64(w[i]) * scale[o])
			}
			b := 0.0
			if c.Bias != nil {
				b = float64(c.Bias.Data()[o])
			}
			fb[o] = float32(b*scale[o] + shift[o])
		}
		wn := g.Float(wname, fw, s...)
		bname := g.Float(strings.TrimSuffix(wname, ".weight")+".bias", fb, s[0])
		return g.Node("Conv", name, []string{x, wn, bname}, attrs...)
	}
	in := []string{x, g.Float(wname, c.Weight.Data(), s...)}
	if c.Bias != nil {
		in = append(in, g.Float(c.Bias.Name, c.Bias.Data(), s[0]))
	}
	y := g.Node("Conv", name, in, attrs...)
	if bn != nil {
		y = bn.ONNX(g, bn.prefix, y)
	}
	return y
}

// foldCoefficients returns eval-mode BatchNorm as a per-channel affine map
// y = scale·x + shift.
func (b *BatchNorm) foldCoefficients() (scale, shift []float64) {
	c := len(b.Stats.Mean)
	scale, shift = make([]float64, c), make([]float64, c)
	gamma, beta := b.Weight.Data(), b.Bias.Data()
	for i := 0; i < c; i++ {
		inv := 1 / math.Sqrt(float64(b.Stats.Var[i])+b.Stats.Eps)
		scale[i] = float64(gamma[i]) * inv
		shift[i] = float64(beta[i]) - float64(b.Stats.Mean[i])*scale[i]
	}
	return scale, shift
}

// ONNX writes the BatchNorm in evaluation mode on x [N, C, ...] as one
// BatchNormalization node (running statistics, the module's eps) and
// returns the output's name.
func (b *BatchNorm) ONNX(g *onnx.Graph, name, x string) string {
	c := len(b.Stats.Mean)
	in := []string{x,
		g.Float(b.Weight.Name, b.Weight.Data(), c), g.Float(b.Bias.Name, b.Bias.Data(), c),
		g.Float(b.prefix+".running_mean", b.Stats.Mean, c), g.Float(b.prefix+".running_var", b.Stats.Var, c)}
	return g.Node("BatchNormalization", name, in, onnx.AttrFloat("epsilon", float32(b.Stats.Eps)))
}

// ActivationONNX writes the activation a on x (see the package notes on
// ReLU6 and GELU) and returns the output's name.
func ActivationONNX(g *onnx.Graph, name, x string, a Activation) (string, error) {
	switch a {
	case ReLU:
		return g.Node("Relu", name, []string{x}), nil
	case ReLU6:
		// min(max(x, 0), 6) = 6 − max(6 − max(x, 0), 0): exactly 6 above
		// 6, and within half an ulp of 6 (2.4e-7) below, whatever x.
		six := g.Scalar(name+".six", 6)
		r := g.Node("Relu", name+".relu", []string{x})
		below := g.Node("Relu", name+".below6", []string{g.Node("Sub", name+".six_minus", []string{six, r})})
		return g.Node("Sub", name, []string{six, below}), nil
	case GELU:
		t := g.Node("Div", name+".scaled", []string{x, g.Scalar(name+".sqrt2", math.Sqrt2)})
		e := g.Node("Erf", name+".erf", []string{t})
		e = g.Node("Add", name+".cdf2", []string{e, g.Scalar(name+".one", 1)})
		y := g.Node("Mul", name+".x_cdf2", []string{x, e})
		return g.Node("Mul", name, []string{y, g.Scalar(name+".half", 0.5)}), nil
	}
	return "", fmt.Errorf("onnx: unknown activation %v", a)
}

// MaxPoolONNX writes MaxPool2dOp(x, kernel, stride, padding).
func MaxPoolONNX(g *onnx.Graph, name, x string, kernel, stride, padding int) string {
	k, s, p := int64(kernel), int64(stride), int64(padding)
	return g.Node("MaxPool", name, []string{x}, onnx.AttrInts("kernel_shape", k, k),
		onnx.AttrInts("strides", s, s), onnx.AttrInts("pads", p, p, p, p))
}

// GlobalAvgPoolONNX writes GlobalAvgPoolOp: x [N, C, H, W] to [N, C].
func GlobalAvgPoolONNX(g *onnx.Graph, name, x string) string {
	p := g.Node("GlobalAveragePool", name+".pool", []string{x})
	return g.Node("Flatten", name, []string{p}, onnx.AttrInt("axis", 1))
}

// GemmONNX writes the linear layer on rows x [N, in], followed by the
// BatchNorm bn (nil: none), folded into the weights when fold, a
// BatchNormalization node otherwise.
func (l *Linear) GemmONNX(g *onnx.Graph, name, x string, bn *BatchNorm, fold bool) string {
	s := l.Weight.Value.Shape() // [out, in]
	out := s[0]
	w, b := l.Weight.Data(), make([]float32, out)
	if l.Bias != nil {
		copy(b, l.Bias.Data())
	}
	wname, bname := l.Weight.Name, strings.TrimSuffix(l.Weight.Name, ".weight")+".bias"
	if bn != nil && fold {
		scale, shift := bn.foldCoefficients()
		fw := make([]float32, len(w))
		for o := 0; o < out; o++ {
			for i := o * s[1]; i < (o+1)*s[1]; i++ {
				fw[i] = float32(float64(w[i]) * scale[o])
			}
			b[o] = float32(float64(b[o])*scale[o] + shift[o])
		}
		w = fw
	}
	y := g.Node("Gemm", name, []string{x, g.Float(wname, w, s...), g.Float(bname, b, out)}, onnx.AttrInt("transB", 1))
	if bn != nil && !fold {
		y = bn.ONNX(g, bn.prefix, y)
	}
	return y
}

// GemmNoBiasONNX writes x [N, in] times w [out, in] transposed, for the
// bias-free last layers of the heads (w given as computed by the caller).
func GemmNoBiasONNX(g *onnx.Graph, name, x, wname string, w []float32, out, in int) string {
	return g.Node("Gemm", name, []string{x, g.Float(wname, w, out, in)}, onnx.AttrInt("transB", 1))
}

// rowStat writes x·col [.., 1] (col a [d, 1] column) spread back to
// [.., d] by ones, a [1, d] row of ones.
func rowStat(g *onnx.Graph, name, x, col, ones string) string {
	s := g.Node("MatMul", name, []string{x, col})
	return g.Node("MatMul", name+".spread", []string{s, ones})
}

// normalizeONNX writes LayerNorm's (x − mean)/√(var + eps) over the last
// dimension (d wide) of x, without the affine: see the package notes.
func (l *LayerNorm) normalizeONNX(g *onnx.Graph, name, x string, d int) string {
	mean := make([]float32, d)
	ones := make([]float32, d)
	for i := range mean {
		mean[i], ones[i] = float32(1/float64(d)), 1
	}
	col := g.Float(name+".mean_weights", mean, d, 1)
	row := g.Float(name+".ones", ones, 1, d)
	c := g.Node("Sub", name+".centered", []string{x, rowStat(g, name+".mean", x, col, row)})
	sq := g.Node("Mul", name+".squared", []string{c, c})
	v := g.Node("MatMul", name+".var", []string{sq, col})
	sd := g.Node("Sqrt", name+".std", []string{g.Node("Add", name+".var_eps", []string{v, g.Scalar(name+".eps", float32(l.Eps))})})
	sd = g.Node("MatMul", name+".std.spread", []string{sd, row})
	return g.Node("Div", name+".normalized", []string{c, sd})
}

// ONNX writes the LayerNorm with its affine on rows x [N, D] (two
// dimensions: the ViT's final norm on the class tokens).
func (l *LayerNorm) ONNX(g *onnx.Graph, name, x string) string {
	d := len(l.Weight.Data())
	n := l.normalizeONNX(g, name, x, d)
	n = g.Node("Mul", name+".scaled", []string{n, g.Float(l.Weight.Name, l.Weight.Data(), d)})
	return g.Node("Add", name, []string{n, g.Float(l.Bias.Name, l.Bias.Data(), d)})
}

// tokenLinear writes rows [lo, hi) of the linear layer l on tokens
// x [N, T, in] as MatMul + Add, with pre's affine (γ, β: the LayerNorm
// before it, nil for none) folded in and the result scaled by scale:
// scale·(W·(γ⊙n + β) + b) = (scale·W·diag γ)·n + scale·(W·β + b).
func tokenLinear(g *onnx.Graph, name, x string, l *Linear, lo, hi int, pre *LayerNorm, scale float64) string {
	s := l.Weight.Value.Shape() // [out, in]
	in := s[1]
	w := l.Weight.Data()
	out := hi - lo
	wt := make([]float32, in*out) // [in, out]: MatMul's right operand
	bias := make([]float32, out)
	for o := 0; o < out; o++ {
		row := w[(lo+o)*in : (lo+o+1)*in]
		b := 0.0
		if l.Bias != nil {
			b = float64(l.Bias.Data()[lo+o])
		}
		for i, v := range row {
			wi := float64(v)
			if pre != nil {
				b += wi * float64(pre.Bias.Data()[i])
				wi *= float64(pre.Weight.Data()[i])
			}
			wt[i*out+o] = float32(wi * scale)
		}
		bias[o] = float32(b * scale)
	}
	y := g.Node("MatMul", name+".matmul", []string{x, g.Float(name+".weight", wt, in, out)})
	return g.Node("Add", name, []string{y, g.Float(name+".bias", bias, out)})
}

// ONNX writes timm's pre-norm attention branch attn(norm(x)) on tokens
// x [N, T, D]: norm's affine and the scale head_dim^-½ are folded into the
// query, key and value projections (three MatMuls, split from qkv), the
// heads are a reshape to [N, T, H, D/H] and transposes, softmax over the
// keys, then the output projection.
func (a *Attention) ONNX(g *onnx.Graph, name, x string, tokens int, norm *LayerNorm) string {
	d := a.Proj.Weight.Value.Shape()[0]
	hd := d / a.Heads
	n := norm.normalizeONNX(g, strings.TrimSuffix(norm.Weight.Name, ".weight"), x, d)
	heads := g.Int64(name+".heads_shape", []int64{0, int64(tokens), int64(a.Heads), int64(hd)}, 4)
	split := func(part string, i int, scale float64, perm ...int64) string {
		y := tokenLinear(g, name+"."+part, n, a.QKV, i*d, (i+1)*d, norm, scale)
		y = g.Node("Reshape", name+"."+part+".heads", []string{y, heads})
		return g.Node("Transpose", name+"."+part+".t", []string{y}, onnx.AttrInts("perm", perm...))
	}
	q := split("q", 0, 1/math.Sqrt(float64(hd)), 0, 2, 1, 3) // [N, H, T, hd]
	k := split("k", 1, 1, 0, 2, 3, 1)                        // [N, H, hd, T]
	v := split("v", 2, 1, 0, 2, 1, 3)                        // [N, H, T, hd]
	scores := g.Node("MatMul", name+".scores", []string{q, k})
	attn := g.Node("Softmax", name+".softmax", []string{scores}, onnx.AttrInt("axis", -1))
	o := g.Node("MatMul", name+".context", []string{attn, v})
	o = g.Node("Transpose", name+".context.t", []string{o}, onnx.AttrInts("perm", 0, 2, 1, 3))
	o = g.Node("Reshape", name+".merged", []string{o, g.Int64(name+".merged_shape", []int64{0, int64(tokens), int64(d)}, 3)})
	return tokenLinear(g, strings.TrimSuffix(a.Proj.Weight.Name, ".weight"), o, a.Proj, 0, d, nil, 1)
}

// ONNX writes the pre-norm MLP branch mlp(norm(x)) on tokens x [N, T, D],
// norm's affine folded into fc1.
func (m *MLP) ONNX(g *onnx.Graph, name, x string, norm *LayerNorm) (string, error) {
	s := m.FC1.Weight.Value.Shape()
	n := norm.normalizeONNX(g, strings.TrimSuffix(norm.Weight.Name, ".weight"), x, s[1])
	h := tokenLinear(g, strings.TrimSuffix(m.FC1.Weight.Name, ".weight"), n, m.FC1, 0, s[0], norm, 1)
	h, err := ActivationONNX(g, name+".act", h, GELU)
	if err != nil {
		return "", err
	}
	return tokenLinear(g, strings.TrimSuffix(m.FC2.Weight.Name, ".weight"), h, m.FC2, 0, m.FC2.Weight.Value.Shape()[0], nil, 1), nil
}

// L2NormalizeONNX writes L2NormalizeOp on rows x [N, d]: x / max(‖x‖,
// 1e-12), as x / sqrt(‖x‖² + 1e-24) (see the package notes).
func L2NormalizeONNX(g *onnx.Graph, name, x string, d int) string {
	ones := make([]float32, d)
	for i := range ones {
		ones[i] = 1
	}
	sq := g.Node("Mul", name+".squared", []string{x, x})
	ss := g.Node("MatMul", name+".sum", []string{sq, g.Float(name+".ones_col", ones, d, 1)})
	ss = g.Node("Add", name+".sum_eps", []string{ss, g.Scalar(name+".eps2", l2NormEps*l2NormEps)})
	nrm := g.Node("Sqrt", name+".norm", []string{ss})
	nrm = g.Node("MatMul", name+".norm.spread", []string{nrm, g.Float(name+".ones_row", ones, 1, d)})
	return g.Node("Div", name, []string{x, nrm})
}

// L2NormalizeRows returns w [rows, d] with every row divided by max(‖row‖,
// 1e-12) as L2NormalizeOp computes it (float64 sums), for weights
// normalised at export.
func L2NormalizeRows(w []float32, d int) []float32 {
	out := make([]float32, len(w))
	for r := 0; r < len(w)/d; r++ {
		row := w[r*d : (r+1)*d]
		n := rowNorm(row)
		for j, v := range row {
			out[r*d+j] = float32(float64(v) / n)
		}
	}
	return out
}
