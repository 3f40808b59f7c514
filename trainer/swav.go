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
	"github.com/sslight-go/sslight/trainer/ssl"
)

// SwAV's loss state inside checkpoint.safetensors: the queue
// [len(CROPS_FOR_ASSIGN), queue length, OUTPUT_DIM] (absent before
// SWAV.EPOCH_QUEUE_STARTS) and the reference's use_the_queue flag.
const (
	nameSwAVQueue    = "swav.queue"
	nameSwAVUseQueue = "swav.use_the_queue"
)

// swavModel is SwAV (no teacher): one network, backbone and SWAVHead, named
// "student." in checkpoints, trained on every view; the codes come from
// Sinkhorn on the assigned crops' scores (and the queue's).
type swavModel struct {
	trainState
	bb     backbone.Backbone
	head   *ssl.SwAVHead
	loss   *ssl.SwAVLoss
	scfg   configs.SwAVConfig
	qLen   int // queue length trimmed to a multiple of the batch; 0: no queue
	outDim int

	vm       gorgonia.VM
	xGlobal  *tensor.Dense
	xLocal   *tensor.Dense
	lossNode *gorgonia.Node
	nodes    []*gorgonia.Node
}

// step is one iteration of the reference's SwAV trainer (main_swav.py's
// train). It neither clips gradients nor freezes a last layer, so neither
// happens here.
func (m *swavModel) step(it iteration, b *Batch) (stepLog, error) {
	log := stepLog{lr: m.sc.lr[it.step], wd: m.sc.wd[it.step]}
	if it.inEpoch == 0 {
		// The epoch's set-up: the queue from SWAV.EPOCH_QUEUE_STARTS on,
		// use_the_queue cleared.
		if err := m.startEpoch(it.epoch); err != nil {
			return log, err
		}
	}
	// Normalise the prototypes (under no_grad, before every forward).
	m.head.NormalizePrototypes()
	feed(m.xGlobal, b.Global)
	feed(m.xLocal, b.Local)
	// embedding, output = model(inputs); per assigned crop, the codes
	// q = sinkhorn(scores) (with the queue's scores, which the queue then
	// joins), the swapped prediction loss over the other crops;
	// loss.backward().
	loss, err := trainableStep(m.vm, "forward/backward", m.nodes, m.params, m.lossNode)
	if err != nil {
		return log, err
	}
	if log.loss, log.probe, err = m.jointProbe(loss, b); err != nil {
		return log, err
	}
	if !isFinite(log.loss) { // the run undoes the step and stops
		return log, errLossNotFinite
	}
	// The prototypes stay frozen for SWAV.FREEZE_PROTOTYPES_EPOCHS.
	if it.epoch < m.scfg.FreezePrototypesEpochs {
		optim.CancelGradients(m.params, "prototypes")
	}
	if err := m.opt.Step(log.lr, log.wd); err != nil {
		return log, fmt.Errorf("optimizer: %w", err)
	}
	return log, nil
}

func newSwAVModel(cfg *configs.Config, geo Geometry, batch int, sc *schedules) (*swavModel, error) {
	seed := uint64(cfg.Seed)
	bb, err := backbone.New(cfg.Model.BackboneArch, backboneOptions(cfg, seed))
	if err != nil {
		return nil, err
	}
	s := cfg.SwAV
	head, err := ssl.NewSwAVHead("student.head.", ssl.SwAVHeadConfig{InDim: bb.EmbedDim(), HiddenDim: s.HiddenSize,
		OutDim: s.OutputDim, Layers: s.NumLayers, UseBN: s.UseBNInHead, Prototypes: s.NmbPrototypes}, seed+1)
	if err != nil {
		return nil, err
	}
	loss, err := ssl.NewSwAVLoss(ssl.SwAVConfig{GlobalCrops: geo.G, LocalCrops: geo.L, Lambdas: lambdasOf(cfg),
		CropsForAssign: cfg.MultiViewsTransforms.CropsForAssign, Temperature: s.Temperature, Epsilon: s.Epsilon,
		SinkhornIterations: s.SinkhornIterations})
	if err != nil {
		return nil, err
	}
	// The reference trims the queue to a multiple of the (global) batch.
	m := &swavModel{bb: bb, head: head, loss: loss, scfg: s, qLen: s.QueueLength - s.QueueLength%batch, outDim: s.OutputDim}
	m.xGlobal = viewTensor(geo.G*batch, geo.GH, geo.GW)
	g := gorgonia.NewGraph()
	ins := []*gorgonia.Node{inputNode(g, "global", m.xGlobal)}
	if geo.L > 0 {
		m.xLocal = viewTensor(geo.L*batch, geo.LH, geo.LW)
		ins = append(ins, inputNode(g, "local", m.xLocal))
	}
	e, err := embed(bb, ins)
	if err != nil {
		return nil, err
	}
	emb, scores, err := head.Forward(e, true)
	if err != nil {
		return nil, err
	}
	// The embedding and the prototypes enter the loss without a gradient
	// (the reference's embedding.detach() and no_grad queue scores).
	if m.lossNode, err = loss.Apply(scores, emb, head.Prototypes.Node(g)); err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	params := append(bb.Params(), head.Params()...)
	for _, p := range params {
		m.nodes = append(m.nodes, p.Node(g))
	}
	if _, err := gorgonia.Grad(m.lossNode, m.nodes...); err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	m.vm = gorgonia.NewTapeMachine(g)
	entries := append(prefixed(bb, "student."), head.Entries()...)
	var prototypes []nn.Entry // normalised before the step's loss
	for _, en := range entries {
		if en.Param == head.Prototypes {
			prototypes = append(prototypes, en)
		}
	}
	m.trainState = trainState{sc: sc, params: optimParams(params), backbone: bb, embedding: e, entries: entries,
		preForward: prototypes, machines: []gorgonia.VM{m.vm}}
	return m, nil
}

// startEpoch creates the queue from SWAV.EPOCH_QUEUE_STARTS on (all zeros,
// once) and clears use_the_queue, as the reference's train does before each
// epoch.
func (m *swavModel) startEpoch(epoch int) error {
	if m.qLen > 0 && epoch >= m.scfg.EpochQueueStarts {
		if err := m.loss.StartQueue(m.qLen, m.outDim); err != nil {
			return fmt.Errorf("SwAV queue: %w", err)
		}
	}
	m.loss.StartEpoch()
	return nil
}

func (m *swavModel) saveLossState(f *safetensors.File) error {
	st := m.loss.State()
	use := int64(0)
	if st.UseQueue {
		use = 1
	}
	if st.Queue != nil {
		shape := []int{len(st.Queue) / (st.QueueLength * st.EmbeddingDim), st.QueueLength, st.EmbeddingDim}
		if err := f.Add(nameSwAVQueue, safetensors.Tensor{DType: safetensors.F32, Shape: shape, F32: st.Queue}); err != nil {
			return err
		}
	}
	return f.Add(nameSwAVUseQueue, scalarI64(use))
}

func (m *swavModel) loadLossState(f *safetensors.File) error {
	use, err := tensorOf(f, nameSwAVUseQueue, safetensors.I64, 1)
	if err != nil {
		return err
	}
	st := ssl.SwAVState{UseQueue: use.I64[0] != 0}
	if q, ok := f.Tensors[nameSwAVQueue]; ok {
		if q.DType != safetensors.F32 || len(q.Shape) != 3 {
			return fmt.Errorf("tensor %s is %s%v, want a 3-d F32 queue", nameSwAVQueue, q.DType, q.Shape)
		}
		st.Queue, st.QueueLength, st.EmbeddingDim = q.F32, q.Shape[1], q.Shape[2]
	}
	return m.loss.LoadState(st)
}
