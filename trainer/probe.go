package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/nn"
	"github.com/sslight-go/sslight/trainer/optim"
)

// probeName is the joint linear probe's state-dict prefix: the reference's
// model.classifier.
const probeName = "classifier"

// linearProbe is the reference's TRAIN.JOINT_LINEAR_PROBE: a linear
// classifier (torch nn.Linear(embed_dim, TRAIN.NUM_CLASSES)) trained next
// to the SSL loss on the detached student embedding of the first batch
// rows (global view 1; MoCo's query encoder sees global view 2 first), its
// cross-entropy added to the loss and its parameters stepped by the same
// optimiser and schedules (trainState.jointProbe, in every method's step).
// It reads the embedding after the student's forward pass and computes its
// own gradient in plain Go: nothing flows back into the backbone, which is
// what the reference's .detach() means.
type linearProbe struct {
	classes, dim, batch int
	weight, bias        *nn.Param // [classes, dim], [classes]
	opt                 []*optim.Param
	input               *gorgonia.Node // the student embedding, [views·batch, dim]

	logits []float64
	// Last step's mean cross-entropy and top-1 accuracy (fraction).
	loss, accuracy float64
}

// newLinearProbe builds the classifier with torch's nn.Linear init
// (weight and bias uniform in ±1/√dim) from seed.
func newLinearProbe(classes, dim, batch int, input *gorgonia.Node, seed uint64) (*linearProbe, error) {
	if classes < 2 {
		return nil, fmt.Errorf("TRAIN.JOINT_LINEAR_PROBE needs TRAIN.NUM_CLASSES ≥ 2, have %d", classes)
	}
	if input == nil {
		return nil, fmt.Errorf("TRAIN.JOINT_LINEAR_PROBE: the method exposes no student embedding")
	}
	if s := input.Shape(); len(s) != 2 || s[1] != dim || s[0] < batch {
		return nil, fmt.Errorf("TRAIN.JOINT_LINEAR_PROBE: student embedding of shape %v, want [≥%d, %d]", s, batch, dim)
	}
	p := &linearProbe{classes: classes, dim: dim, batch: batch, input: input,
		weight: nn.NewParam(probeName+".weight", classes, dim), bias: nn.NewParam(probeName+".bias", classes),
		logits: make([]float64, classes)}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	bound := 1 / math.Sqrt(float64(dim))
	for _, q := range []*nn.Param{p.weight, p.bias} {
		for i, d := 0, q.Data(); i < len(d); i++ {
			d[i] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	p.opt = optimParams([]*nn.Param{p.weight, p.bias})
	for _, o := range p.opt {
		o.Grad = make([]float32, len(o.Data))
	}
	return p, nil
}

// step computes the probe's loss, accuracy and gradients for labels from
// the embedding the last forward pass left in the input node.
func (p *linearProbe) step(labels []int, keys []string) error {
	v := p.input.Value()
	if v == nil {
		return fmt.Errorf("joint linear probe: the student embedding has no value after the forward pass")
	}
	emb, ok := v.Data().([]float32)
	if !ok || len(emb) < p.batch*p.dim {
		return fmt.Errorf("joint linear probe: student embedding of %T, want %d float32s", v.Data(), p.batch*p.dim)
	}
	if len(labels) < p.batch {
		return fmt.Errorf("joint linear probe: %d labels for a batch of %d", len(labels), p.batch)
	}
	for i, y := range labels[:p.batch] {
		if y < 0 || y >= p.classes {
			key := ""
			if i < len(keys) {
				key = keys[i]
			}
			return fmt.Errorf("TRAIN.JOINT_LINEAR_PROBE needs labels in [0, %d) (TRAIN.NUM_CLASSES), sample %q has %d: prepare the shards from a labelled layout (imagenet, idx) or turn the probe off",
				p.classes, key, y)
		}
	}
	w, b := p.weight.Data(), p.bias.Data()
	dw, db := p.opt[0].Grad, p.opt[1].Grad
	clear(dw)
	clear(db)
	var loss float64
	correct := 0
	inv := 1 / float64(p.batch)
	for i := 0; i < p.batch; i++ {
		e := emb[i*p.dim : (i+1)*p.dim]
		best := 0
		for c := 0; c < p.classes; c++ {
			s := float64(b[c])
			for d, wc := range w[c*p.dim : (c+1)*p.dim] {
				s += float64(wc) * float64(e[d])
			}
			p.logits[c] = s
			if s > p.logits[best] {
				best = c
			}
		}
		y := labels[i]
		if best == y {
			correct++
		}
		// log-sum-exp around the largest logit, then softmax − one-hot.
		m := p.logits[best]
		var z float64
		for c := range p.logits {
			z += math.Exp(p.logits[c] - m)
		}
		loss += m + math.Log(z) - p.logits[y]
		for c := 0; c < p.classes; c++ {
			g := math.Exp(p.logits[c]-m) / z
			if c == y {
				g--
			}
			g *= inv
			db[c] += float32(g)
			row := dw[c*p.dim : (c+1)*p.dim]
			for d := range row {
				row[d] += float32(g * float64(e[d]))
			}
		}
	}
	p.loss = loss * inv
	p.accuracy = float64(correct) * inv
	return nil
}

// entries are the classifier's state-dict entries.
func (p *linearProbe) entries() []nn.Entry {
	return (&nn.Linear{Weight: p.weight, Bias: p.bias}).Entries()
}

// ProbeAccuracy scores the joint linear probe a checkpoint folder holds
// (checkpoint.safetensors' classifier.weight and classifier.bias) on
// features x ([n, dim] row-major, the backbone's evaluation-mode
// embeddings) with labels: the top-1 accuracy in percent, as the
// reference's knn_validate reports its "Linear probe".
func ProbeAccuracy(ctx context.Context, ckpt string, dim int, x []float32, labels []int) (float64, error) {
	uri := storage.Join(ckpt, checkpoint.StateFile)
	raw, err := storage.ReadFile(ctx, uri)
	if err != nil {
		return 0, err
	}
	f, err := safetensors.Decode(raw)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", uri, err)
	}
	w, okW := f.Tensors[probeName+".weight"]
	b, okB := f.Tensors[probeName+".bias"]
	switch {
	case !okW || !okB:
		return 0, fmt.Errorf("%s holds no %s.weight/%s.bias: it was not trained with TRAIN.JOINT_LINEAR_PROBE", uri, probeName, probeName)
	case len(w.Shape) != 2 || w.Shape[1] != dim || len(b.F32) != w.Shape[0]:
		return 0, fmt.Errorf("%s: classifier of shape %v and bias %v does not take %d-dimensional features", uri, w.Shape, b.Shape, dim)
	case dim <= 0 || len(x) != len(labels)*dim || len(labels) == 0:
		return 0, fmt.Errorf("probe accuracy: %d values for %d labels of dimension %d", len(x), len(labels), dim)
	}
	classes := w.Shape[0]
	correct := 0
	for i, y := range labels {
		e := x[i*dim : (i+1)*dim]
		best, bestScore := 0, math.Inf(-1)
		for c := 0; c < classes; c++ {
			s := float64(b.F32[c])
			for d, wc := range w.F32[c*dim : (c+1)*dim] {
				s += float64(wc) * float64(e[d])
			}
			if s > bestScore {
				best, bestScore = c, s
			}
		}
		if best == y {
			correct++
		}
	}
	return 100 * float64(correct) / float64(len(labels)), nil
}
