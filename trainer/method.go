package trainer

import (
	"errors"
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/nn"
	"github.com/sslight-go/sslight/trainer/optim"
)

// method is one SSL method: its training step and the state a checkpoint
// holds. Each method's step reads top to bottom like its reference
// trainer's loop body (DINO's train_one_epoch, SwAV's and MoCo's train):
// this iteration's schedule values, the forward passes, the loss, the
// backward pass, the gradient rules, the optimiser step and the EMA
// updates. The run around it owns the data, the checkpoints and the
// metrics.
type method interface {
	// step trains iteration it on b and returns what it logs. When the
	// loss is not finite it returns errLossNotFinite before the optimiser
	// step, having changed nothing but what a stepSnapshot restores.
	step(it iteration, b *Batch) (stepLog, error)
	// state is what the step shares with checkpoints: the networks'
	// state dict, the optimiser, the trained backbone.
	state() *trainState
	// saveLossState adds the loss's state (DINO's center, the SwAV and
	// MoCo queues) to a checkpoint; loadLossState restores it.
	saveLossState(f *safetensors.File) error
	loadLossState(f *safetensors.File) error
	// close releases the graphs' machines.
	close()
}

// trainState is what every method holds besides its networks' graphs and
// its loss (each embeds it): the optimiser and the parameters it steps,
// the joint linear probe, and the state dict a checkpoint saves.
type trainState struct {
	sc *schedules
	// params are the method's trained parameters in torch's order: what
	// clipping and the frozen layers act on.
	params []*optim.Param
	// opt steps optimised: params, then the joint linear probe's (whose
	// shapes also name the optimiser state in a checkpoint).
	opt       optim.Optimizer
	optimised []*optim.Param
	// probe is TRAIN.JOINT_LINEAR_PROBE's classifier; nil without it.
	probe *linearProbe
	// entries are every network's state dict (parameters and BN
	// statistics) under its checkpoint name, in a fixed order, the probe's
	// last. They alias the networks' storage.
	entries []nn.Entry
	// preForward are the parameters the step updates before its loss is
	// known (MoCo's key encoder, SwAV's prototypes): with the BN buffers
	// and the loss state, what undoing a step restores.
	preForward []nn.Entry
	// backbone is the backbone being pre-trained: what
	// backbone.safetensors holds and evaluation loads.
	backbone backbone.Backbone
	// teacher is the backbone of the method's second network (DINO's EMA
	// teacher, MoCo's key encoder), what teacher_backbone.safetensors
	// holds; nil for SwAV, which has none.
	teacher backbone.Backbone
	// embedding is the trained network's embedding node, [views·batch,
	// embed_dim], whose first batch rows the joint linear probe classifies
	// (the reference's enc_feats[:batch_size]).
	embedding *gorgonia.Node
	machines  []gorgonia.VM
}

func (t *trainState) state() *trainState { return t }

func (t *trainState) close() {
	for _, vm := range t.machines {
		nn.CloseMachine(vm)
	}
}

// attach adds TRAIN.JOINT_LINEAR_PROBE's classifier, when configured, and
// builds the optimiser (SOLVER) over the method's parameters and the
// probe's.
func (t *trainState) attach(cfg *configs.Config, batch int) error {
	t.optimised = t.params
	if cfg.Train.JointLinearProbe {
		p, err := newLinearProbe(cfg.Train.NumClasses, t.backbone.EmbedDim(), batch, t.embedding, uint64(cfg.Seed)+7)
		if err != nil {
			return err
		}
		t.probe = p
		t.entries = append(t.entries, p.entries()...)
		t.optimised = append(append([]*optim.Param{}, t.params...), p.opt...)
	}
	s := cfg.Solver
	groups := optim.GroupParams(t.optimised, optim.GroupConfig{WDFactorForBias: s.WDFactorForBias, WDFactorForDW: s.WDFactorForDW,
		LARSExcludeBias: s.LARSExcludeBias, LARSExcludeDW: s.LARSExcludeDW})
	var err error
	t.opt, err = optim.New(s.OptimizingMethod, groups, s.Momentum)
	return err
}

// jointProbe trains TRAIN.JOINT_LINEAR_PROBE's classifier on the detached
// embedding the forward pass just computed and returns loss plus its
// cross-entropy, as the reference adds sup_loss to the SSL loss, with its
// logged values; without the probe it returns loss.
func (t *trainState) jointProbe(loss float32, b *Batch) (float32, *probeLog, error) {
	if t.probe == nil {
		return loss, nil, nil
	}
	if err := t.probe.step(b.Labels, b.Keys); err != nil {
		return 0, nil, err
	}
	return loss + float32(t.probe.loss), &probeLog{loss: t.probe.loss, accuracy: t.probe.accuracy}, nil
}

// iteration is where a step stands: its training epoch, its global step
// (the schedules' index) and its index within the epoch.
type iteration struct {
	epoch, step, inEpoch int
}

// stepLog is what a step reports for metrics.jsonl and the progress line.
type stepLog struct {
	// loss is the step's loss, the joint linear probe's included.
	loss float32
	// lr and wd are the values the optimiser stepped with.
	lr, wd float64
	// momentum is the EMA momentum of the teacher or key encoder (0 for
	// SwAV, which has none).
	momentum float64
	// teacherTemp is DINO's teacher temperature; global and local are its
	// unweighted loss terms.
	teacherTemp, global, local float64
	// probe is the joint linear probe's figures; nil without it.
	probe *probeLog
}

// probeLog is the joint linear probe's cross-entropy and top-1 accuracy (a
// fraction) on a step's batch.
type probeLog struct {
	loss, accuracy float64
}

// errLossNotFinite is a step's report that its loss is NaN or infinite;
// the run undoes the step and stops with ErrNonFiniteLoss.
var errLossNotFinite = errors.New("the loss is not finite")

func isFinite(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}

// newMethod builds cfg.SSLMethod's model for batches of batch samples of
// geometry geo, with the per-iteration schedules sc, and its optimiser.
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
		m, err = newSwAVModel(cfg, geo, batch, sc)
	case "MOCO":
		m, err = newMoCoModel(cfg, geo, batch, sc)
	default:
		return nil, fmt.Errorf("SSL_METHOD %q: the trainer knows DINO, SWAV and MOCO", cfg.SSLMethod)
	}
	if err != nil {
		return nil, err
	}
	if err := m.state().attach(cfg, batch); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
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

// feed copies a batch's views into a graph's input buffer (nil when the
// graph takes no such views).
func feed(x *tensor.Dense, views []float32) {
	if x != nil {
		copy(x.Float32s(), views)
	}
}

// paramEntries returns the entries of a state dict that are parameters.
func paramEntries(entries []nn.Entry) []nn.Entry {
	var out []nn.Entry
	for _, e := range entries {
		if e.Param != nil {
			out = append(out, e)
		}
	}
	return out
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
// and binds the gradients of nodes to params. It returns the loss.
func trainableStep(vm gorgonia.VM, what string, nodes []*gorgonia.Node, params []*optim.Param, loss *gorgonia.Node) (float32, error) {
	if err := runMachine(vm, what); err != nil {
		return 0, err
	}
	if err := gradients(nodes, params); err != nil {
		return 0, err
	}
	return loss.Value().Data().(float32), nil
}
