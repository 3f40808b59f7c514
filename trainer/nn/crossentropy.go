package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Labels holds the class targets of a CrossEntropyOp; the caller rewrites
// Y before every run of the graph (one target per row of the logits).
type Labels struct {
	Y []int
}

// CrossEntropyOp is torch.nn.functional.cross_entropy(logits, y) with
// mean reduction: logits [N, K], targets in labels.Y (len N, each in
// [0, K)). The result is a scalar node.
func CrossEntropyOp(logits *gorgonia.Node, labels *Labels) (*gorgonia.Node, error) {
	// The kernel's output is a one-element vector (the nn ops produce
	// tensors); gorgonia's Sum turns it into the scalar Grad needs.
	v, err := apply(&ceKernel{labels: labels}, logits)
	if err != nil {
		return nil, err
	}
	return gorgonia.Sum(v)
}

type ceKernel struct{ labels *Labels }

func (k *ceKernel) name() string    { return fmt.Sprintf("CrossEntropy@%p", k.labels) }
func (k *ceKernel) diffWRT() []bool { return []bool{true} }
func (k *ceKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 2 || in[0][0] == 0 || in[0][1] == 0 {
		return nil, fmt.Errorf("logits %v must be [N, K] with N, K > 0", in[0])
	}
	return tensor.Shape{1}, nil
}

// logSoftmaxRow returns max and log(sum(exp(x − max))) of one row.
func logSumExp(row []float32) (float64, float64) {
	m := math.Inf(-1)
	for _, v := range row {
		m = max(m, float64(v))
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - m)
	}
	return m, math.Log(s)
}

func (k *ceKernel) check(n, kk int) {
	if len(k.labels.Y) != n {
		panic(fmt.Sprintf("nn: CrossEntropy: %d labels for %d rows", len(k.labels.Y), n))
	}
	for i, y := range k.labels.Y {
		if y < 0 || y >= kk {
			panic(fmt.Sprintf("nn: CrossEntropy: label %d of row %d outside [0, %d)", y, i, kk))
		}
	}
}

func (k *ceKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	n, kk := s[0][0], s[0][1]
	k.check(n, kk)
	var loss float64
	for i := 0; i < n; i++ {
		row := in[0][i*kk : (i+1)*kk]
		m, lse := logSumExp(row)
		loss += m + lse - float64(row[k.labels.Y[i]])
	}
	out[0] = float32(loss / float64(n))
}

// backward: d/dlogits = (softmax − onehot(y)) / N, times the incoming scalar.
func (k *ceKernel) backward(_ int, dIn, grad, _ []float32, in [][]float32, s []tensor.Shape) {
	n, kk := s[0][0], s[0][1]
	scale := float64(grad[0]) / float64(n)
	for i := 0; i < n; i++ {
		row := in[0][i*kk : (i+1)*kk]
		m, lse := logSumExp(row)
		for j, v := range row {
			p := math.Exp(float64(v) - m - lse)
			if j == k.labels.Y[i] {
				p--
			}
			dIn[i*kk+j] += float32(p * scale)
		}
	}
}
