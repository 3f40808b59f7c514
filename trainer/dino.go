package trainer

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/nn"
	"github.com/sslight-go/sslight/trainer/optim"
	"github.com/sslight-go/sslight/trainer/ssl"
)

// network is a backbone with the DINO head on top, the reference's
// MultiCropWrapper.
type network struct {
	backbone backbone.Backbone
	head     *ssl.DINOHead
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

// backboneOptions maps the MODEL and VIT sections onto backbone.Options.
func backboneOptions(cfg *configs.Config, seed uint64) backbone.Options {
	return backbone.Options{Seed: seed, PatchSize: cfg.ViT.PatchSize, DropPath: cfg.ViT.DropPathRate,
		Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem}
}

// forward runs the backbone once per view resolution (the inputs are the
// concatenated views of one resolution each) and the head once on all
// embeddings, as MultiCropWrapper does.
func (n *network) forward(inputs []*gorgonia.Node) (logits *gorgonia.Node, err error) {
	embeds := make([]*gorgonia.Node, len(inputs))
	for i, x := range inputs {
		out, err := n.backbone.Forward(x, true)
		if err != nil {
			return nil, fmt.Errorf("backbone: %w", err)
		}
		embeds[i] = out.Embedding
	}
	e, err := nn.ConcatOp(embeds...)
	if err != nil {
		return nil, err
	}
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
	var out []nn.Entry
	for _, e := range n.backbone.Entries() {
		e.Name = prefix + "backbone." + e.Name
		out = append(out, e)
	}
	// The head's names already carry prefix+"head.".
	return append(out, n.head.Entries()...)
}

// dinoModel is DINO's student and EMA teacher with their graphs: the
// teacher graph sees the global views, the student graph every view plus
// the teacher's output as a constant input of the loss.
type dinoModel struct {
	student, teacher *network
	loss             *ssl.DINOLoss

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

func newDINOModel(cfg *configs.Config, geo Geometry, batch int, teacherTemps []float64) (*dinoModel, error) {
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
	se, te := student.entries(""), teacher.entries("")
	for i := range se {
		if se[i].Count != nil {
			*te[i].Count = *se[i].Count
		} else {
			copy(te[i].F32, se[i].F32)
		}
	}
	lambdas := [2]float64{1, 1}
	if l := cfg.MultiViewsTransforms.Lambdas; len(l) == 2 {
		lambdas = [2]float64{l[0], l[1]}
	}
	loss, err := ssl.NewDINOLoss(ssl.DINOConfig{GlobalCrops: geo.G, LocalCrops: geo.L, Lambdas: lambdas,
		GlobalOnly: cfg.DINO.GlobalOnly, StudentTemp: cfg.DINO.StudentTemp, TeacherTemps: teacherTemps,
		CenterMomentum: cfg.DINO.CenterMomentum, OutDim: cfg.DINOHead.OutputDim})
	if err != nil {
		return nil, err
	}
	m := &dinoModel{student: student, teacher: teacher, loss: loss}
	m.xGlobal = tensor.New(tensor.WithShape(geo.G*batch, 3, geo.GH, geo.GW), tensor.Of(tensor.Float32))
	if geo.L > 0 {
		m.xLocal = tensor.New(tensor.WithShape(geo.L*batch, 3, geo.LH, geo.LW), tensor.Of(tensor.Float32))
	}
	input := func(g *gorgonia.ExprGraph, name string, v *tensor.Dense) *gorgonia.Node {
		return gorgonia.NewTensor(g, tensor.Float32, v.Dims(), gorgonia.WithShape(v.Shape()...), gorgonia.WithName(name), gorgonia.WithValue(v))
	}

	m.tg = gorgonia.NewGraph()
	if m.teacherOut, err = teacher.forward([]*gorgonia.Node{input(m.tg, "global", m.xGlobal)}); err != nil {
		return nil, fmt.Errorf("teacher: %w", err)
	}
	m.teacherIn = tensor.New(tensor.WithShape(geo.G*batch, cfg.DINOHead.OutputDim), tensor.Of(tensor.Float32))

	m.sg = gorgonia.NewGraph()
	ins := []*gorgonia.Node{input(m.sg, "global", m.xGlobal)}
	if geo.L > 0 {
		ins = append(ins, input(m.sg, "local", m.xLocal))
	}
	logits, err := student.forward(ins)
	if err != nil {
		return nil, fmt.Errorf("student: %w", err)
	}
	if m.lossNode, err = loss.Apply(logits, input(m.sg, "teacher_output", m.teacherIn)); err != nil {
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
	for _, p := range m.studentParams {
		m.optParams = append(m.optParams, &optim.Param{Name: p.Name, Shape: p.Value.Shape().Clone(), Data: p.Data()})
	}
	for _, p := range student.allParams() {
		m.emaStudent = append(m.emaStudent, &optim.Param{Name: p.Name, Shape: p.Value.Shape().Clone(), Data: p.Data()})
	}
	for _, p := range teacher.allParams() {
		m.emaTeacher = append(m.emaTeacher, &optim.Param{Name: p.Name, Shape: p.Value.Shape().Clone(), Data: p.Data()})
	}
	return m, nil
}

// close releases the machines.
func (m *dinoModel) close() {
	m.svm.Close()
	m.tvm.Close()
}

// forwardBackward runs the teacher and the student on b and leaves the
// student's gradients bound to optParams. It returns the loss.
func (m *dinoModel) forwardBackward(b *Batch) (float32, error) {
	copy(m.xGlobal.Float32s(), b.Global)
	if m.xLocal != nil {
		copy(m.xLocal.Float32s(), b.Local)
	}
	m.tvm.Reset()
	if err := m.tvm.RunAll(); err != nil {
		return 0, fmt.Errorf("teacher forward: %w", err)
	}
	copy(m.teacherIn.Float32s(), m.teacherOut.Value().Data().([]float32))
	m.svm.Reset()
	if err := m.svm.RunAll(); err != nil {
		return 0, fmt.Errorf("student forward/backward: %w", err)
	}
	for i, n := range m.studentNodes {
		gv, err := n.Grad()
		if err != nil {
			return 0, fmt.Errorf("gradient of %s: %w", m.studentParams[i].Name, err)
		}
		m.optParams[i].Grad = gv.Data().([]float32)
	}
	return m.lossNode.Value().Data().(float32), nil
}
