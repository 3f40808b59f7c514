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
	student, teacher *network
	loss             *ssl.DINOLoss
	sc               *schedules
	clip             float64

	sg, tg        *gorgonia.ExprGraph
	svm, tvm      gorgonia.VM
	xGlobal       *tensor.Dense // shared by both graphs
	xLocal        *tensor.Dense
	teacherIn     *tensor.Dense // the student graph's copy of the teacher logits
	teacherOut    *gorgonia.Node
	lossNode      *gorgonia.Node
	studentNodes  []*gorgonia.Node
	studentParams []*nn.Param
	optParams     []*optim.Param
	emaStudent    []*optim.Param
	emaTeacher    []*optim.Param
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
	m := &dinoModel{student: student, teacher: teacher, loss: loss, sc: sc, clip: cfg.Solver.ClipGrad}
	m.xGlobal = viewTensor(geo.G*batch, geo.GH, geo.GW)
	if geo.L > 0 {
		m.xLocal = viewTensor(geo.L*batch, geo.LH, geo.LW)
	}

	m.tg = gorgonia.NewGraph()
	if m.teacherOut, err = teacher.forward([]*gorgonia.Node{inputNode(m.tg, "global", m.xGlobal)}); err != nil {
		return nil, fmt.Errorf("teacher: %w", err)
	}
	m.teacherIn = tensor.New(tensor.WithShape(geo.G*batch, cfg.DINOHead.OutputDim), tensor.Of(tensor.Float32))

	m.sg = gorgonia.NewGraph()
	ins := []*gorgonia.Node{inputNode(m.sg, "global", m.xGlobal)}
	if geo.L > 0 {
		ins = append(ins, inputNode(m.sg, "local", m.xLocal))
	}
	logits, err := student.forward(ins)
	if err != nil {
		return nil, fmt.Errorf("student: %w", err)
	}
	if m.lossNode, err = loss.Apply(logits, inputNode(m.sg, "teacher_output", m.teacherIn)); err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	m.studentParams = student.params()
	for _, p := range m.studentParams {
		m.studentNodes = append(m.studentNodes, p.Node(m.sg))
	}
	if _, err := gorgonia.Grad(m.lossNode, m.studentNodes...); err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	m.svm = gorgonia.NewTapeMachine(m.sg)
	m.tvm = gorgonia.NewTapeMachine(m.tg)
	m.optParams = optimParams(m.studentParams)
	m.emaStudent = optimParams(student.allParams())
	m.emaTeacher = optimParams(teacher.allParams())
	return m, nil
}

func (m *dinoModel) close() {
	nn.CloseMachine(m.svm)
	nn.CloseMachine(m.tvm)
}

func (m *dinoModel) startEpoch(int) error { return nil }

// beforeStep selects the teacher temperature: per epoch as the reference,
// or per iteration (DINO.WARMUP_TEACHER_TEMP_ITERS).
func (m *dinoModel) beforeStep(epoch, step int) error {
	if m.sc.tempPerIter {
		return m.loss.SetEpoch(step)
	}
	return m.loss.SetEpoch(epoch)
}

// forwardBackward runs the teacher and the student on b and leaves the
// student's gradients bound to optParams. It returns the loss.
func (m *dinoModel) forwardBackward(b *Batch) (float32, error) {
	copy(m.xGlobal.Float32s(), b.Global)
	if m.xLocal != nil {
		copy(m.xLocal.Float32s(), b.Local)
	}
	if err := runMachine(m.tvm, "teacher forward"); err != nil {
		return 0, err
	}
	copy(m.teacherIn.Float32s(), m.teacherOut.Value().Data().([]float32))
	return trainableStep(m.svm, "student forward/backward", m.studentNodes, m.optParams, m.lossNode)
}

// adjustGradients clips (SOLVER.CLIP_GRAD) and drops the last layer's
// gradients while it is frozen, as the reference's DINO trainer does.
func (m *dinoModel) adjustGradients(epoch, step int) {
	if m.clip > 0 {
		optim.ClipGradients(m.optParams, m.clip, nil)
	}
	optim.CancelGradientsLastLayer(m.optParams, epoch, step, m.sc.freeze)
}

// afterStep moves the teacher towards the student.
func (m *dinoModel) afterStep(step int) error {
	if err := optim.EMAParams(m.emaTeacher, m.emaStudent, m.sc.momentum[step]); err != nil {
		return fmt.Errorf("teacher EMA: %w", err)
	}
	return nil
}

func (m *dinoModel) params() []*optim.Param     { return m.optParams }
func (m *dinoModel) probeInput() *gorgonia.Node { return m.student.embedding }
func (m *dinoModel) trained() backbone.Backbone { return m.student.backbone }

func (m *dinoModel) logTerms(step int) stepTerms {
	t := m.loss.Last()
	return stepTerms{global: float64(t.Global), local: float64(t.Local), momentum: m.sc.momentum[step], teacherTemp: t.TeacherTemp}
}

// networkEntries: the student under "student.", the teacher under
// "teacher.".
func (m *dinoModel) networkEntries() []nn.Entry {
	return append(m.student.entries("student."), m.teacher.entries("teacher.")...)
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
