package detect

import (
	"fmt"
	"math"

	"github.com/sslight-go/sslight/trainer/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Focal loss exponents of CenterNet (Law and Deng's CornerNet variant):
// α weights hard examples, β down-weights negatives near a centre.
const (
	FocalAlpha = 2
	FocalBeta  = 4
	// SigmoidClamp bounds the heatmap's sigmoid away from 0 and 1, as
	// CenterNet's _sigmoid does, so the logs stay finite.
	SigmoidClamp = 1e-4
)

// sigmoid returns CenterNet's clamped sigmoid of x and whether the clamp
// was inactive (where it is active the gradient is zero, as torch.clamp's).
func sigmoid(x float32) (float64, bool) {
	p := 1 / (1 + math.Exp(-float64(x)))
	switch {
	case p < SigmoidClamp:
		return SigmoidClamp, false
	case p > 1-SigmoidClamp:
		return 1 - SigmoidClamp, false
	}
	return p, true
}

// FocalLossOp is CenterNet's heatmap loss (_neg_loss of
// src/lib/models/losses.py) on the logits x [N, K, H, W] against t.Heat:
// with p the clamped sigmoid of x and y the target,
//
//	pos = Σ_{y=1} (1−p)^α log p,   neg = Σ_{y<1} (1−y)^β p^α log(1−p),
//	loss = −(pos + neg) / #{y = 1}   (−neg when no element is 1).
//
// The result is a scalar node; t is read each time the graph runs.
func FocalLossOp(x *gorgonia.Node, t *Targets) (*gorgonia.Node, error) {
	v, err := nn.Apply(&focalKernel{t: t}, x)
	if err != nil {
		return nil, err
	}
	return gorgonia.Sum(v)
}

type focalKernel struct{ t *Targets }

func (k *focalKernel) Name() string    { return fmt.Sprintf("FocalLoss@%p", k.t) }
func (k *focalKernel) DiffWRT() []bool { return []bool{true} }
func (k *focalKernel) OutShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 4 || in[0].TotalSize() == 0 {
		return nil, fmt.Errorf("heatmap logits %v must be a non-empty [N, K, H, W]", in[0])
	}
	return tensor.Shape{1}, nil
}

func (k *focalKernel) check(s tensor.Shape) {
	t := k.t
	if t.N != s[0] || t.K != s[1] || t.H != s[2] || t.W != s[3] || len(t.Heat) != s.TotalSize() {
		panic(fmt.Sprintf("detect: FocalLoss: targets are %dx%dx%dx%d with %d values, logits %v", t.N, t.K, t.H, t.W, len(t.Heat), s))
	}
}

// numPos counts the target elements equal to 1 (at least 1, so the
// normaliser never divides by zero; with none, CenterNet returns −neg).
func (k *focalKernel) numPos() float64 {
	n := 0
	for _, y := range k.t.Heat {
		if y == 1 {
			n++
		}
	}
	return float64(max(n, 1))
}

func (k *focalKernel) Forward(out []float32, in [][]float32, s []tensor.Shape) {
	k.check(s[0])
	var sum float64
	for i, x := range in[0] {
		p, _ := sigmoid(x)
		if y := float64(k.t.Heat[i]); y == 1 {
			sum += math.Pow(1-p, FocalAlpha) * math.Log(p)
		} else {
			sum += math.Pow(1-y, FocalBeta) * math.Pow(p, FocalAlpha) * math.Log(1-p)
		}
	}
	out[0] = float32(-sum / k.numPos())
}

// backward: dL/dx = dL/dp · p(1−p) where the clamp is inactive, which
// gives (1−p)^α (α p log p − (1−p)) for a positive and
// −(1−y)^β p^α (α (1−p) log(1−p) − p) for a negative, times the output's
// gradient over the normaliser.
func (k *focalKernel) Backward(_ int, dIn, grad, _ []float32, in [][]float32, s []tensor.Shape) {
	k.check(s[0])
	scale := float64(grad[0]) / k.numPos()
	for i, x := range in[0] {
		p, live := sigmoid(x)
		if !live {
			continue
		}
		var d float64
		if y := float64(k.t.Heat[i]); y == 1 {
			// L = −(1−p)^α log p: dL/dp = α(1−p)^(α−1) log p − (1−p)^α / p.
			d = math.Pow(1-p, FocalAlpha) * (FocalAlpha*p*math.Log(p) - (1 - p))
		} else {
			// L = −w p^α log(1−p): dL/dp = −w (α p^(α−1) log(1−p) − p^α/(1−p)).
			w := math.Pow(1-y, FocalBeta)
			d = -w * math.Pow(p, FocalAlpha) * (FocalAlpha*(1-p)*math.Log(1-p) - p)
		}
		dIn[i] += float32(d * scale)
	}
}

// Regression targets RegL1LossOp can fit.
const (
	FieldSize   = 0 // channels 0, 1 of the regression map: width, height in cells
	FieldOffset = 2 // channels 2, 3: the centre's sub-cell offset (x, y)
)

// RegL1LossOp is CenterNet's RegL1Loss on the regression map r [N, C, H, W]
// for one field (FieldSize or FieldOffset, two channels from that index):
// at every object's centre cell, the absolute error of the two channels
// against the object's target, summed and divided by 2·#objects + 1e-4
// (the sum of CenterNet's expanded mask). The result is a scalar node.
func RegL1LossOp(r *gorgonia.Node, t *Targets, field int) (*gorgonia.Node, error) {
	if field != FieldSize && field != FieldOffset {
		return nil, fmt.Errorf("RegL1Loss: field %d: want FieldSize or FieldOffset", field)
	}
	v, err := nn.Apply(&l1Kernel{t: t, field: field}, r)
	if err != nil {
		return nil, err
	}
	return gorgonia.Sum(v)
}

type l1Kernel struct {
	t     *Targets
	field int
}

func (k *l1Kernel) Name() string    { return fmt.Sprintf("RegL1Loss{%d}@%p", k.field, k.t) }
func (k *l1Kernel) DiffWRT() []bool { return []bool{true} }
func (k *l1Kernel) OutShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 4 || in[0][1] < k.field+2 || in[0].TotalSize() == 0 {
		return nil, fmt.Errorf("regression map %v must be [N, C, H, W] with C ≥ %d", in[0], k.field+2)
	}
	return tensor.Shape{1}, nil
}

// each calls f with the flat index into r and the target of every
// regressed value.
func (k *l1Kernel) each(s tensor.Shape, f func(i int, target float32)) {
	n, c, h, w := s[0], s[1], s[2], s[3]
	for _, o := range k.t.Objects {
		if o.Image < 0 || o.Image >= n || o.X < 0 || o.X >= w || o.Y < 0 || o.Y >= h {
			panic(fmt.Sprintf("detect: RegL1Loss: object %+v outside the map %v", o, s))
		}
		tv := o.Size
		if k.field == FieldOffset {
			tv = o.Offset
		}
		for j := 0; j < 2; j++ {
			f(((o.Image*c+k.field+j)*h+o.Y)*w+o.X, tv[j])
		}
	}
}

func (k *l1Kernel) norm() float64 { return 2*float64(len(k.t.Objects)) + 1e-4 }

func (k *l1Kernel) Forward(out []float32, in [][]float32, s []tensor.Shape) {
	var sum float64
	k.each(s[0], func(i int, t float32) { sum += math.Abs(float64(in[0][i]) - float64(t)) })
	out[0] = float32(sum / k.norm())
}

// backward: d|r − t|/dr = sign(r − t), 0 at r = t (torch's sign).
func (k *l1Kernel) Backward(_ int, dIn, grad, _ []float32, in [][]float32, s []tensor.Shape) {
	g := float64(grad[0]) / k.norm()
	k.each(s[0], func(i int, t float32) {
		switch d := in[0][i] - t; {
		case d > 0:
			dIn[i] += float32(g)
		case d < 0:
			dIn[i] -= float32(g)
		}
	})
}

// UpsampleOp doubles the height and width of x [N, C, H, W] by nearest
// neighbour (torch's nn.Upsample(scale_factor=2)).
func UpsampleOp(x *gorgonia.Node) (*gorgonia.Node, error) {
	return nn.Apply(upsampleKernel{}, x)
}

type upsampleKernel struct{}

func (upsampleKernel) Name() string    { return "Upsample2x" }
func (upsampleKernel) DiffWRT() []bool { return []bool{true} }
func (upsampleKernel) OutShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 4 {
		return nil, fmt.Errorf("x %v must be [N, C, H, W]", in[0])
	}
	s := in[0]
	return tensor.Shape{s[0], s[1], 2 * s[2], 2 * s[3]}, nil
}

func (upsampleKernel) Forward(out []float32, in [][]float32, s []tensor.Shape) {
	h, w := s[0][2], s[0][3]
	planes := s[0][0] * s[0][1]
	for p := 0; p < planes; p++ {
		src := in[0][p*h*w : (p+1)*h*w]
		dst := out[p*4*h*w : (p+1)*4*h*w]
		for y := 0; y < 2*h; y++ {
			row := src[(y/2)*w : (y/2+1)*w]
			d := dst[y*2*w : (y+1)*2*w]
			for x, v := range row {
				d[2*x], d[2*x+1] = v, v
			}
		}
	}
}

func (upsampleKernel) Backward(_ int, dIn, grad, _ []float32, _ [][]float32, s []tensor.Shape) {
	h, w := s[0][2], s[0][3]
	planes := s[0][0] * s[0][1]
	for p := 0; p < planes; p++ {
		g := grad[p*4*h*w : (p+1)*4*h*w]
		d := dIn[p*h*w : (p+1)*h*w]
		for y := 0; y < 2*h; y++ {
			row := g[y*2*w : (y+1)*2*w]
			di := d[(y/2)*w : (y/2+1)*w]
			for x := range di {
				di[x] += row[2*x] + row[2*x+1]
			}
		}
	}
}
