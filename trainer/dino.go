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

// prefixCenter names DINO's center inside checkpoint.safetensors.
const prefixCenter = "loss.dino.center"

// network is a backbone with the DINO head on top, the reference's
// MultiCropWrapper.
type network struct {
	backbone backbone.Backbone
	head     *ssl.DINOHead
	// embedding is the last forward's backbone output node.
	embedding *gorgonia.Node
}

func newNetwork(cfg *configs.Config, prefix string, seed uint64) (*network, error) {
	o := backboneOptions(cfg, seed)
	if prefix == "teacher." {
		o.DropPath = 0 // DINO builds its teacher without stochastic depth
	}
	bb, err := backbone.New(cfg.Model.BackboneArch, o)
	if err != nil {
		return nil, err
	}
	h := cfg.DINOHead
	head, err := ssl.NewDINOHead(prefix+"head.", ssl.DINOHeadConfig{InDim: bb.EmbedDim(), HiddenDim: h.HiddenSize,
		BottleneckDim: h.BottleneckDim, OutDim: h.OutputDim, Layers: h.NumLayers, UseBN: h.UseBNInHead,
		NormLastLayer: h.NormLastLayer}, seed+1)
	if err != nil {
		return nil, err
	}
	return &network{backbone: bb, head: head}, nil
}

// forward runs the backbone once per view resolution and the head once on
// all embeddings, as MultiCropWrapper does.
func (n *network) forward(inputs []*gorgonia.Node) (logits *gorgonia.Node, err error) {
	e, err := embed(n.backbone, inputs)
	if err != nil {
		return nil, err
	}
	n.embedding = e
	logits, _, err = n.head.Forward(e, true)
	return logits, err
}

// params are the trainable parameters, in torch's order (backbone, head).
func (n *network) params() []*nn.Param {
	return append(n.backbone.Params(), n.head.Params()...)
}

// allParams adds parameters frozen by construction (the head's fixed
// weight-norm gain): what torch's .parameters() lists and the EMA covers.
func (n *network) allParams() []*nn.Param {
	return append(n.backbone.Params(), n.head.AllParams()...)
}

// entries is the state dict: backbone under "backbone.", head under "head.".
func (n *network) entries(prefix string) []nn.Entry {
	// The head's names already carry prefix+"head.".
	return append(prefixed(n.backbone, prefix), n.head.Entries()...)
}

// dinoModel is DINO's student and EMA teacher with their graphs: the
// teacher graph sees the global views, the student graph every view plus
// the teacher's output as a constant input of the loss.
type dinoModel struct {
	trainState
	student, teacher *network
	loss             *ssl.DINOLoss
	clip             float64

	svm, tvm     gorgonia.VM
	xGlobal      *tensor.Dense // shared by both graphs
	xLocal       *tensor.Dense
	teacherIn    *tensor.Dense // the student graph's copy of the teacher logits
	teacherOut   *gorgonia.Node
	lossNode     *gorgonia.Node
	studentNodes []*gorgonia.Node
	emaStudent   []*optim.Param
	emaTeacher   []*optim.Param
}

// step is one iteration of DINO's train_one_epoch (main_dino.py).
func (m *dinoModel) step(it iteration, b *Batch) (stepLog, error) {
	// This iteration's learning rate, weight decay and teacher momentum;
	// the teacher temperature per epoch as the reference's, or per
	// iteration (DINO.WARMUP_TEACHER_TEMP_ITERS).
	log := stepLog{lr: m.sc.lr[it.step], wd: m.sc.wd[it.step], momentum: m.sc.momentum[it.step]}
	if err := m.loss.SetEpoch(m.sc.teacherTempIndex(it)); err != nil {
		return log, err
	}
	feed(m.xGlobal, b.Global)
	feed(m.xLocal, b.Local)
	// teacher_output = teacher(images[:2]): the global views only.
	if err := runMachine(m.tvm, "teacher forward"); err != nil {
		return log, err
	}
	copy(m.teacherIn.Float32s(), m.teacherOut.Value().Data().([]float32))
	// student_output = student(images); loss = dino_loss(student_output,
	// teacher_output, epoch), which also moves the center; loss.backward().
	loss, err := trainableStep(m.svm, "student forward/backward", m.studentNodes, m.params, m.lossNode)
	if err != nil {
		return log, err
	}
	if log.loss, log.probe, err = m.jointProbe(loss, b); err != nil {
		return log, err
	}
	if !isFinite(log.loss) { // the run undoes the step and stops
		return log, errLossNotFinite
	}
	// clip_gradients (SOLVER.CLIP_GRAD); cancel_gradients_last_layer while
	// SOLVER.FREEZE_LAST_LAYER(_ITERS) holds the head's last layer.
	if m.clip > 0 {
		optim.ClipGradients(m.params, m.clip, nil)
	}
	optim.CancelGradientsLastLayer(m.params, it.epoch, it.step, m.sc.freeze)
	if err := m.opt.Step(log.lr, log.wd); err != nil {
		return log, fmt.Errorf("optimizer: %w", err)
	}
	// EMA update for the teacher: θt ← m·θt + (1−m)·θs.
	if err := optim.EMAParams(m.emaTeacher, m.emaStudent, log.momentum); err != nil {
		return log, fmt.Errorf("teacher EMA: %w", err)
	}
	t := m.loss.Last()
	log.global, log.local, log.teacherTemp = float64(t.Global), float64(t.Local), t.TeacherTemp
	return log, nil
}

// newDINOModel builds DINO with sc's teacher temperatures, teacher
// momentum and last-layer freeze.
func newDINOModel(cfg *configs.Config, geo Geometry, batch int, sc *schedules) (*dinoModel, error) {
	seed := uint64(cfg.Seed)
	student, err := newNetwork(cfg, "student.", seed)
	if err != nil {
		return nil, err
	}
	teacher, err := newNetwork(cfg, "teacher.", seed)
	if err != nil {
		return nil, err
	}
	// The teacher starts as a copy of the student (load_state_dict).
	copyEntries(teacher.entries(""), student.entries(""))
	loss, err := ssl.NewDINOLoss(ssl.DINOConfig{GlobalCrops: geo.G, LocalCrops: geo.L, Lambdas: lambdasOf(cfg),
		GlobalOnly: cfg.DINO.GlobalOnly, StudentTemp: cfg.DINO.StudentTemp, TeacherTemps: sc.teacherTemp,
		CenterMomentum: cfg.DINO.CenterMomentum, OutDim: cfg.DINOHead.OutputDim})
	if err != nil {
		return nil, err
	}
	m := &dinoModel{student: student, teacher: teacher, loss: loss, clip: cfg.Solver.ClipGrad}
	m.xGlobal = viewTensor(geo.G*batch, geo.GH, geo.GW)
	if geo.L > 0 {
		m.xLocal = viewTensor(geo.L*batch, geo.LH, geo.LW)
	}

	tg := gorgonia.NewGraph()
	if m.teacherOut, err = teacher.forward([]*gorgonia.Node{inputNode(tg, "global", m.xGlobal)}); err != nil {
		return nil, fmt.Errorf("teacher: %w", err)
	}
	m.teacherIn = tensor.New(tensor.WithShape(geo.G*batch, cfg.DINOHead.OutputDim), tensor.Of(tensor.Float32))

	sg := gorgonia.NewGraph()
	ins := []*gorgonia.Node{inputNode(sg, "global", m.xGlobal)}
	if geo.L > 0 {
		ins = append(ins, inputNode(sg, "local", m.xLocal))
	}
	logits, err := student.forward(ins)
	if err != nil {
		return nil, fmt.Errorf("student: %w", err)
	}
	if m.lossNode, err = loss.Apply(logits, inputNode(sg, "teacher_output", m.teacherIn)); err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	studentParams := student.params()
	for _, p := range studentParams {
		m.studentNodes = append(m.studentNodes, p.Node(sg))
	}
	if _, err := gorgonia.Grad(m.lossNode, m.studentNodes...); err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	m.svm = gorgonia.NewTapeMachine(sg)
	m.tvm = gorgonia.NewTapeMachine(tg)
	m.emaStudent = optimParams(student.allParams())
	m.emaTeacher = optimParams(teacher.allParams())
	// The student under "student.", the teacher under "teacher.".
	m.trainState = trainState{sc: sc, params: optimParams(studentParams), backbone: student.backbone, teacher: teacher.backbone,
		embedding: student.embedding,
		entries:   append(student.entries("student."), teacher.entries("teacher.")...),
		machines:  []gorgonia.VM{m.svm, m.tvm}}
	return m, nil
}

func (m *dinoModel) saveLossState(f *safetensors.File) error {
	center := m.loss.State().Center
	return f.Add(prefixCenter, safetensors.Tensor{DType: safetensors.F32, Shape: []int{1, len(center)}, F32: center})
}

func (m *dinoModel) loadLossState(f *safetensors.File) error {
	c, ok := f.Tensors[prefixCenter]
	if !ok {
		return fmt.Errorf("no %s tensor", prefixCenter)
	}
	return m.loss.LoadState(ssl.DINOState{Center: c.F32})
}
