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

// MoCo's loss state inside checkpoint.safetensors, as the reference's
// buffers: the queue [OUTPUT_DIM, QUEUE_LENGTH] (a column per key) and the
// pointer [1].
const (
	nameMoCoQueue    = "moco.queue"
	nameMoCoQueuePtr = "moco.queue_ptr"
)

// encoder is a backbone with the MoCo head (the reference's encoder_q or
// encoder_k).
type encoder struct {
	backbone backbone.Backbone
	head     *ssl.MoCoHead
	// embedding is the last forward's backbone output node.
	embedding *gorgonia.Node
}

func newEncoder(cfg *configs.Config, prefix string, seed uint64, dropPath bool) (*encoder, error) {
	o := backboneOptions(cfg, seed)
	if !dropPath {
		o.DropPath = 0
	}
	bb, err := backbone.New(cfg.Model.BackboneArch, o)
	if err != nil {
		return nil, err
	}
	h := cfg.MoCo
	head, err := ssl.NewMoCoHead(prefix+"head.", ssl.MoCoHeadConfig{InDim: bb.EmbedDim(), HiddenDim: h.HiddenSize,
		OutDim: h.OutputDim, Layers: h.NumLayers, UseBN: h.UseBNInHead}, seed+1)
	if err != nil {
		return nil, err
	}
	return &encoder{backbone: bb, head: head}, nil
}

func (e *encoder) forward(inputs []*gorgonia.Node) (*gorgonia.Node, error) {
	x, err := embed(e.backbone, inputs)
	if err != nil {
		return nil, err
	}
	e.embedding = x
	return e.head.Forward(x, true)
}

func (e *encoder) params() []*nn.Param { return append(e.backbone.Params(), e.head.Params()...) }

func (e *encoder) entries(prefix string) []nn.Entry {
	return append(prefixed(e.backbone, prefix), e.head.Entries()...)
}

// mocoModel is MoCo-v2 with local views: the query encoder ("student." in
// checkpoints, trained) on global view 2 and the local views, the key
// encoder ("key.", an EMA of the query encoder with MOCO.MOMENTUM, no
// gradient) on global view 1, and the loss's queue of QUEUE_LENGTH keys.
//
// The reference shuffles the key batch across GPUs and back so that
// BatchNorm cannot see which sample is which; on one process that is a
// permutation within the batch, which batch statistics ignore, so the key
// encoder runs on the batch in order.
type mocoModel struct {
	trainState
	query, key *encoder
	loss       *ssl.MoCoLoss
	momentum   float64
	clip       float64

	qvm, kvm    gorgonia.VM
	xKey        *tensor.Dense // global view 1
	xQuery      *tensor.Dense // global view 2
	xLocal      *tensor.Dense // nil with MOCO.GLOBAL_ONLY
	keyIn       *tensor.Dense // the query graph's copy of the keys
	keyOut      *gorgonia.Node
	lossNode    *gorgonia.Node
	queryNodes  []*gorgonia.Node
	emaKey      []*optim.Param
	globalViews int
}

// step is one iteration of the reference's MoCo trainer: the model's
// forward (moco/builder.py: key-encoder update, keys, queries, logits
// against the keys and the queue, enqueue), backward, clipping and the
// optimiser step.
func (m *mocoModel) step(it iteration, b *Batch) (stepLog, error) {
	// This iteration's learning rate and weight decay; MOCO.MOMENTUM is
	// fixed (the reference's momentum schedule is only logged).
	log := stepLog{lr: m.sc.lr[it.step], wd: m.sc.wd[it.step], momentum: m.momentum}
	// _momentum_update_key_encoder, before the keys: θk ← m·θk + (1−m)·θq
	// with the query encoder as the last optimiser step left it.
	if err := optim.EMAParams(m.emaKey, m.params, m.momentum); err != nil {
		return log, fmt.Errorf("key encoder EMA: %w", err)
	}
	n := len(b.Global) / m.globalViews
	feed(m.xKey, b.Global[:n])
	feed(m.xQuery, b.Global[n:2*n])
	feed(m.xLocal, b.Local)
	// k = encoder_k(im_k): the keys of global view 1, without gradient.
	if err := runMachine(m.kvm, "key forward"); err != nil {
		return log, err
	}
	copy(m.keyIn.Float32s(), m.keyOut.Value().Data().([]float32))
	// q = encoder_q(im_q) on global view 2 and the local views; the
	// InfoNCE loss over [k, queue], after which the queue takes k;
	// loss.backward().
	loss, err := trainableStep(m.qvm, "query forward/backward", m.queryNodes, m.params, m.lossNode)
	if err != nil {
		return log, err
	}
	if log.loss, log.probe, err = m.jointProbe(loss, b); err != nil {
		return log, err
	}
	if !isFinite(log.loss) { // the run undoes the step and stops
		return log, errLossNotFinite
	}
	// Clipping as the reference's MoCo trainer (its
	// cancel_gradients_last_layer finds no last layer in the MoCo head).
	if m.clip > 0 {
		optim.ClipGradients(m.params, m.clip, nil)
	}
	if err := m.opt.Step(log.lr, log.wd); err != nil {
		return log, fmt.Errorf("optimizer: %w", err)
	}
	return log, nil
}

func newMoCoModel(cfg *configs.Config, geo Geometry, batch int, sc *schedules) (*mocoModel, error) {
	mc := cfg.MoCo
	if mc.QueueLength%batch != 0 {
		// The reference asserts this in _dequeue_and_enqueue.
		return nil, fmt.Errorf("MOCO.QUEUE_LENGTH %d is not a multiple of the batch size %d (TRAIN.BATCH_SIZE / --batch-size)", mc.QueueLength, batch)
	}
	seed := uint64(cfg.Seed)
	query, err := newEncoder(cfg, "student.", seed, true)
	if err != nil {
		return nil, err
	}
	key, err := newEncoder(cfg, "key.", seed, false)
	if err != nil {
		return nil, err
	}
	// Both encoders are deep copies of one network: the key starts equal to
	// the query, parameters and BN statistics.
	copyEntries(key.entries(""), query.entries(""))
	loss, err := ssl.NewMoCoLoss(ssl.MoCoConfig{GlobalCrops: geo.G, LocalCrops: geo.L, Lambdas: lambdasOf(cfg),
		GlobalOnly: mc.GlobalOnly, Dim: mc.OutputDim, QueueLength: mc.QueueLength, Temperature: mc.Temperature, Seed: seed})
	if err != nil {
		return nil, err
	}
	m := &mocoModel{query: query, key: key, loss: loss, momentum: mc.Momentum, clip: cfg.Solver.ClipGrad, globalViews: geo.G}
	m.xKey = viewTensor(batch, geo.GH, geo.GW)
	m.xQuery = viewTensor(batch, geo.GH, geo.GW)

	kg := gorgonia.NewGraph()
	if m.keyOut, err = key.forward([]*gorgonia.Node{inputNode(kg, "key_view", m.xKey)}); err != nil {
		return nil, fmt.Errorf("key encoder: %w", err)
	}
	m.keyIn = tensor.New(tensor.WithShape(batch, mc.OutputDim), tensor.Of(tensor.Float32))

	// Queries: global view 2, then the local views (MultiCropWrapper on
	// images[1:]); the loss takes them in that order.
	qg := gorgonia.NewGraph()
	ins := []*gorgonia.Node{inputNode(qg, "query_view", m.xQuery)}
	if !mc.GlobalOnly && geo.L > 0 {
		m.xLocal = viewTensor(geo.L*batch, geo.LH, geo.LW)
		ins = append(ins, inputNode(qg, "local", m.xLocal))
	}
	q, err := query.forward(ins)
	if err != nil {
		return nil, fmt.Errorf("query encoder: %w", err)
	}
	if m.lossNode, err = loss.Apply(q, inputNode(qg, "keys", m.keyIn)); err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	params := query.params()
	for _, p := range params {
		m.queryNodes = append(m.queryNodes, p.Node(qg))
	}
	if _, err := gorgonia.Grad(m.lossNode, m.queryNodes...); err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	m.qvm = gorgonia.NewTapeMachine(qg)
	m.kvm = gorgonia.NewTapeMachine(kg)
	m.emaKey = optimParams(key.params())
	keyEntries := key.entries("key.")
	// The query encoder under "student.", the key encoder under "key.",
	// whose momentum update comes before the step's loss.
	m.trainState = trainState{sc: sc, params: optimParams(params), backbone: query.backbone, teacher: key.backbone,
		embedding: query.embedding,
		entries:   append(query.entries("student."), keyEntries...), preForward: paramEntries(keyEntries),
		machines: []gorgonia.VM{m.qvm, m.kvm}}
	return m, nil
}

func (m *mocoModel) saveLossState(f *safetensors.File) error {
	st := m.loss.State()
	c := m.keyIn.Shape()[1] // OUTPUT_DIM
	if err := f.Add(nameMoCoQueue, safetensors.Tensor{DType: safetensors.F32, Shape: []int{c, len(st.Queue) / c}, F32: st.Queue}); err != nil {
		return err
	}
	return f.Add(nameMoCoQueuePtr, safetensors.Tensor{DType: safetensors.I64, Shape: []int{1}, I64: []int64{int64(st.Ptr)}})
}

func (m *mocoModel) loadLossState(f *safetensors.File) error {
	c := m.keyIn.Shape()[1]
	q, ok := f.Tensors[nameMoCoQueue]
	if !ok {
		return fmt.Errorf("no %s tensor", nameMoCoQueue)
	}
	if q.DType != safetensors.F32 || len(q.Shape) != 2 || q.Shape[0] != c {
		return fmt.Errorf("tensor %s is %s%v, want F32 [%d, queue length]", nameMoCoQueue, q.DType, q.Shape, c)
	}
	ptr, err := tensorOf(f, nameMoCoQueuePtr, safetensors.I64, 1)
	if err != nil {
		return err
	}
	return m.loss.LoadState(ssl.MoCoState{Queue: q.F32, Ptr: int(ptr.I64[0])})
}
