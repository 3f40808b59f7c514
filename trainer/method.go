package trainer

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/nn"
	"github.com/sslight-go/sslight/trainer/optim"
)

// method is one SSL method's networks, graphs and loss state: everything
// between a batch of views and the gradients, and the state a checkpoint
// needs. Run owns the rest (data, schedules, optimiser, checkpoints,
// metrics) and calls, once per step:
//
//	beforeStep → forwardBackward → adjustGradients → optimiser step → afterStep
//
// and startEpoch before the first step of an epoch. The order inside each
// hook follows the reference's trainer of the method.
type method interface {
	// startEpoch runs before the first iteration of epoch, and not when a
	// run resumes in its middle (the checkpoint holds what it set up).
	startEpoch(epoch int) error
	// beforeStep prepares global step step of epoch epoch, before the
	// forward.
	beforeStep(epoch, step int) error
	// forwardBackward runs the forward and backward passes on b, binds the
	// gradients to params' Grad and returns the loss.
	forwardBackward(b *Batch) (float32, error)
	// adjustGradients applies the method's gradient rules (clipping,
	// frozen layers) before the optimiser step.
	adjustGradients(epoch, step int)
	// afterStep runs after the optimiser step of global step step.
	afterStep(step int) error
	// params are what the optimiser updates, in torch's order.
	params() []*optim.Param
	// trained is the backbone being pre-trained: what backbone.safetensors
	// holds and evaluation loads.
	trained() backbone.Backbone
	// logTerms are the method's values of the last step (global step
	// step) for metrics.jsonl.
	logTerms(step int) stepTerms
	// networkEntries are every network's state dict (parameters and BN
	// statistics) under its checkpoint name, in a fixed order.
	networkEntries() []nn.Entry
	// saveLossState adds the loss's state (center, queues) to a
	// checkpoint; loadLossState restores it.
	saveLossState(f *safetensors.File) error
	loadLossState(f *safetensors.File) error
	// probeInput is the student's (MoCo: the query encoder's) embedding
	// node, [views·batch, embed_dim], whose first batch rows the joint
	// linear probe classifies, as the reference's enc_feats[:batch_size].
	probeInput() *gorgonia.Node
	// close releases the graphs' machines.
	close()
}

// stepTerms are a step's method-specific figures for metrics.jsonl.
type stepTerms struct {
	// global and local are the unweighted loss terms, when the loss
	// reports them (DINO).
	global, local float64
	// momentum is the EMA momentum of the teacher or key encoder (0 for
	// SwAV, which has none).
	momentum float64
	// teacherTemp is DINO's teacher temperature.
	teacherTemp float64
	// probe says whether the joint linear probe ran; probeLoss and
	// probeAccuracy (a fraction) are its cross-entropy and top-1.
	probe                    bool
	probeLoss, probeAccuracy float64
}

// newMethod builds cfg.SSLMethod's model for batches of batch samples of
// geometry geo, with the per-iteration schedules sc.
// With TRAIN.JOINT_LINEAR_PROBE the joint linear probe rides along.
func newMethod(cfg *configs.Config, geo Geometry, batch int, sc *schedules) (method, error) {
	var (
		m   method
		err error
	)
	switch cfg.SSLMethod {
	case "DINO":
		m, err = newDINOModel(cfg, geo, batch, sc)
	case "SWAV":
		m, err = newSwAVModel(cfg, geo, batch)
	case "MOCO":
		m, err = newMoCoModel(cfg, geo, batch)
	default:
		return nil, fmt.Errorf("SSL_METHOD %q: the trainer knows DINO, SWAV and MOCO", cfg.SSLMethod)
	}
	if err != nil || !cfg.Train.JointLinearProbe {
		return m, err
	}
	p, err := withLinearProbe(m, cfg.Train.NumClasses, batch, uint64(cfg.Seed)+7)
	if err != nil {
		m.close()
		return nil, err
	}
	return p, nil
}

// backboneOptions maps the MODEL and VIT sections onto backbone.Options.
func backboneOptions(cfg *configs.Config, seed uint64) backbone.Options {
	return backbone.Options{Seed: seed, PatchSize: cfg.ViT.PatchSize, DropPath: cfg.ViT.DropPathRate,
		Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem}
}

// embed runs bb once per view resolution (each input holds the
// concatenated views of one resolution) and concatenates the embeddings,
// as the reference's MultiCropWrapper does: BatchNorm statistics are those
// of each resolution's views together.
func embed(bb backbone.Backbone, inputs []*gorgonia.Node) (*gorgonia.Node, error) {
	embeds := make([]*gorgonia.Node, len(inputs))
	for i, x := range inputs {
		out, err := bb.Forward(x, true)
		if err != nil {
			return nil, fmt.Errorf("backbone: %w", err)
		}
		embeds[i] = out.Embedding
	}
	if len(embeds) == 1 {
		return embeds[0], nil
	}
	return nn.ConcatOp(embeds...)
}

// prefixed returns a backbone's state dict under prefix+"backbone.".
func prefixed(bb backbone.Backbone, prefix string) []nn.Entry {
	var out []nn.Entry
	for _, e := range bb.Entries() {
		e.Name = prefix + "backbone." + e.Name
		out = append(out, e)
	}
	return out
}

// copyEntries copies src's values into dst (same order and shapes): an EMA
// network starting as a copy of the trained one (load_state_dict, or
// MoCo's param_k.data.copy_ with deep-copied buffers).
func copyEntries(dst, src []nn.Entry) {
	for i := range src {
		if src[i].Count != nil {
			*dst[i].Count = *src[i].Count
		} else {
			copy(dst[i].F32, src[i].F32)
		}
	}
}

// optimParams wraps parameters for the optimiser and the EMA; Data aliases
// the parameters' storage.
func optimParams(ps []*nn.Param) []*optim.Param {
	out := make([]*optim.Param, len(ps))
	for i, p := range ps {
		out[i] = &optim.Param{Name: p.Name, Shape: p.Value.Shape().Clone(), Data: p.Data()}
	}
	return out
}

// inputNode is a graph input bound to v, so copying into v feeds it.
func inputNode(g *gorgonia.ExprGraph, name string, v *tensor.Dense) *gorgonia.Node {
	return gorgonia.NewTensor(g, tensor.Float32, v.Dims(), gorgonia.WithShape(v.Shape()...), gorgonia.WithName(name), gorgonia.WithValue(v))
}

// viewTensor is a [n, 3, h, w] float32 input buffer.
func viewTensor(n, h, w int) *tensor.Dense {
	return tensor.New(tensor.WithShape(n, 3, h, w), tensor.Of(tensor.Float32))
}

// lambdasOf is MULTI_VIEWS_TRANSFORMS.LAMBDAS, (1, 1) when unset.
func lambdasOf(cfg *configs.Config) [2]float64 {
	if l := cfg.MultiViewsTransforms.Lambdas; len(l) == 2 {
		return [2]float64{l[0], l[1]}
	}
	return [2]float64{1, 1}
}

// gradients binds each node's gradient to the optimiser parameter at the
// same position.
func gradients(nodes []*gorgonia.Node, ps []*optim.Param) error {
	for i, n := range nodes {
		gv, err := n.Grad()
		if err != nil {
			return fmt.Errorf("gradient of %s: %w", ps[i].Name, err)
		}
		ps[i].Grad = gv.Data().([]float32)
	}
	return nil
}

// scalarI64 is a 0-d int64 tensor.
func scalarI64(v int64) safetensors.Tensor {
	return safetensors.Tensor{DType: safetensors.I64, Shape: []int{}, I64: []int64{v}}
}

// tensorOf returns f's tensor name with the given dtype and element count,
// or an error naming what is wrong.
func tensorOf(f *safetensors.File, name string, dtype safetensors.DType, n int) (safetensors.Tensor, error) {
	t, ok := f.Tensors[name]
	switch {
	case !ok:
		return t, fmt.Errorf("no %s tensor", name)
	case t.DType != dtype || t.NumElements() != n:
		return t, fmt.Errorf("tensor %s is %s%v, want %s with %d elements", name, t.DType, t.Shape, dtype, n)
	}
	return t, nil
}

// runMachine resets vm and runs it, naming the pass that failed.
func runMachine(vm gorgonia.VM, what string) error {
	vm.Reset()
	if err := vm.RunAll(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// trainableStep runs the graph that holds the loss and its backward pass
// and binds the gradients of nodes to params: the common tail of every
// method's forwardBackward. It returns the loss.
func trainableStep(vm gorgonia.VM, what string, nodes []*gorgonia.Node, params []*optim.Param, loss *gorgonia.Node) (float32, error) {
	if err := runMachine(vm, what); err != nil {
		return 0, err
	}
	if err := gradients(nodes, params); err != nil {
		return 0, err
	}
	return loss.Value().Data().(float32), nil
}
