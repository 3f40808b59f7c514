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
	bb     backbone.Backbone
	head   *ssl.SwAVHead
	loss   *ssl.SwAVLoss
	scfg   configs.SwAVConfig
	qLen   int // queue length trimmed to a multiple of the batch; 0: no queue
	outDim int

	g         *gorgonia.ExprGraph
	vm        gorgonia.VM
	xGlobal   *tensor.Dense
	xLocal    *tensor.Dense
	embedding *gorgonia.Node // the backbone's output, for the joint probe
	lossNode  *gorgonia.Node
	nodes     []*gorgonia.Node
	optParams []*optim.Param
}

func newSwAVModel(cfg *configs.Config, geo Geometry, batch int) (*swavModel, error) {
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
	ins := []*gorgonia.Node{}
	m.g = gorgonia.NewGraph()
	ins = append(ins, inputNode(m.g, "global", m.xGlobal))
	if geo.L > 0 {
		m.xLocal = viewTensor(geo.L*batch, geo.LH, geo.LW)
		ins = append(ins, inputNode(m.g, "local", m.xLocal))
	}
	e, err := embed(bb, ins)
	if err != nil {
		return nil, err
	}
	m.embedding = e
	emb, scores, err := head.Forward(e, true)
	if err != nil {
		return nil, err
	}
	// The embedding and the prototypes enter the loss without a gradient
	// (the reference's embedding.detach() and no_grad queue scores).
	if m.lossNode, err = loss.Apply(scores, emb, head.Prototypes.Node(m.g)); err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	params := append(bb.Params(), head.Params()...)
	for _, p := range params {
		m.nodes = append(m.nodes, p.Node(m.g))
	}
	if _, err := gorgonia.Grad(m.lossNode, m.nodes...); err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	m.vm = gorgonia.NewTapeMachine(m.g)
	m.optParams = optimParams(params)
	return m, nil
}

func (m *swavModel) close() { nn.CloseMachine(m.vm) }

// startEpoch creates the queue from SWAV.EPOCH_QUEUE_STARTS on (all zeros,
// once) and clears use_the_queue, as the reference's train_epoch does.
func (m *swavModel) startEpoch(epoch int) error {
	if m.qLen > 0 && epoch >= m.scfg.EpochQueueStarts {
		if err := m.loss.StartQueue(m.qLen, m.outDim); err != nil {
			return fmt.Errorf("SwAV queue: %w", err)
		}
	}
	m.loss.StartEpoch()
	return nil
}

// beforeStep normalises the prototypes, as the reference does under
// no_grad before every forward.
func (m *swavModel) beforeStep(int, int) error {
	m.head.NormalizePrototypes()
	return nil
}

func (m *swavModel) forwardBackward(b *Batch) (float32, error) {
	copy(m.xGlobal.Float32s(), b.Global)
	if m.xLocal != nil {
		copy(m.xLocal.Float32s(), b.Local)
	}
	return trainableStep(m.vm, "forward/backward", m.nodes, m.optParams, m.lossNode)
}

// adjustGradients drops the prototypes' gradients during the first
// SWAV.FREEZE_PROTOTYPES_EPOCHS epochs. The reference's SwAV trainer
// neither clips gradients nor freezes a last layer, so neither happens
// here.
func (m *swavModel) adjustGradients(epoch, _ int) {
	if epoch < m.scfg.FreezePrototypesEpochs {
		optim.CancelGradients(m.optParams, "prototypes")
	}
}

func (m *swavModel) afterStep(int) error        { return nil }
func (m *swavModel) params() []*optim.Param     { return m.optParams }
func (m *swavModel) probeInput() *gorgonia.Node { return m.embedding }
func (m *swavModel) trained() backbone.Backbone { return m.bb }
func (m *swavModel) logTerms(int) stepTerms     { return stepTerms{} }
func (m *swavModel) networkEntries() []nn.Entry {
	return append(prefixed(m.bb, "student."), m.head.Entries()...)
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
