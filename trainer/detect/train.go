package detect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/sinks/coco"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/eval/cocoeval"
	"github.com/sslight-go/sslight/trainer/nn"
	"github.com/sslight-go/sslight/trainer/optim"
)

// ErrInput marks invalid arguments.
var ErrInput = errors.New("detect: invalid input")

// Object is one ground-truth object of an input image.
type Object struct {
	Class int        // index into Set.CategoryIDs
	Box   [4]float64 // x, y, width, height in input pixels
}

// Image is one input image, already resized to the set's Size.
type Image struct {
	ID  int64   // the COCO image id its detections are reported under
	Pix []uint8 // Size×Size RGB, interleaved, row-major
	// ScaleX and ScaleY convert input pixels back to the original image's
	// pixels (original size / Size), for the COCO results.
	ScaleX, ScaleY float64
	Objects        []Object
}

// Set is a detection data set at one fixed input size.
type Set struct {
	Size int
	// CategoryIDs maps class indices to COCO category ids.
	CategoryIDs []int64
	Mean, Std   [3]float32 // per-channel normalisation of Pix/255
	Images      []Image
}

func (s *Set) check(what string) error {
	if s.Size <= 0 || len(s.CategoryIDs) == 0 || len(s.Images) == 0 {
		return fmt.Errorf("%w: %s set: %d images at %d px with %d categories", ErrInput, what, len(s.Images), s.Size, len(s.CategoryIDs))
	}
	for c, v := range s.Std {
		if !(v > 0) {
			return fmt.Errorf("%w: %s set: std %v of channel %d", ErrInput, what, v, c)
		}
	}
	for i, im := range s.Images {
		if len(im.Pix) != 3*s.Size*s.Size {
			return fmt.Errorf("%w: %s set: image %d (id %d) has %d values, want %d", ErrInput, what, i, im.ID, len(im.Pix), 3*s.Size*s.Size)
		}
		for j, o := range im.Objects {
			if o.Class < 0 || o.Class >= len(s.CategoryIDs) || !(o.Box[2] >= 0 && o.Box[3] >= 0) {
				return fmt.Errorf("%w: %s set: image id %d object %d: class %d box %v", ErrInput, what, im.ID, j, o.Class, o.Box)
			}
		}
	}
	return nil
}

// normalizeInto writes image im as a normalised CHW tensor, mirrored
// left-right when flip is set.
func (s *Set) normalizeInto(dst []float32, im *Image, flip bool) {
	n := s.Size
	var lut [3][256]float32
	for c := range lut {
		for v := range lut[c] {
			lut[c][v] = (float32(v)/255 - s.Mean[c]) / s.Std[c]
		}
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			sx := x
			if flip {
				sx = n - 1 - x
			}
			p := im.Pix[3*(y*n+sx):]
			for c := 0; c < 3; c++ {
				dst[(c*n+y)*n+x] = lut[c][p[c]]
			}
		}
	}
}

// Config sets the detector and its fine-tuning.
type Config struct {
	Epochs    int
	BatchSize int
	// Optimizer is optim.MethodAdamW or optim.MethodSGD (momentum
	// Momentum); LR decays to FinalLR by a cosine after WarmupIters of
	// linear warm-up.
	Optimizer   string
	LR, FinalLR float64
	WarmupIters int
	Momentum    float64
	WeightDecay float64
	// HeadChannels is the width of the head's 3x3 layer; Upsample doubles
	// the feature map's resolution before it.
	HeadChannels int
	Upsample     bool
	Flip         bool // random horizontal flips of the training images
	// SizeWeight and OffsetWeight weight the regression losses against the
	// heatmap's (CenterNet: 0.1 and 1).
	SizeWeight, OffsetWeight float64
	MaxDets                  int // detections kept per image (COCO's 100)
	Seed                     uint64
	Progress                 io.Writer
}

// DefaultConfig is a short schedule for the small synthetic sets: 12
// epochs of AdamW (lr 5e-3 → 5e-5 by a cosine after 20 warm-up
// iterations, weight decay 1e-4 on weights only, batch 16), a 64-channel
// head after one upsampling, flips, and CenterNet's loss weights. The
// rate is high for fine-tuning because the head starts from scratch and
// the backbones are tiny: on 128 generated images (width-0.125 ResNet-18,
// 64 px, 8 epochs) lr 1e-3 / 2e-3 / 5e-3 / 1e-2 gave val AP 2.9 / 9.6 /
// 20.1 / 17.9.
func DefaultConfig() Config {
	return Config{Epochs: 12, BatchSize: 16, Optimizer: optim.MethodAdamW, LR: 5e-3, FinalLR: 5e-5, WarmupIters: 20,
		Momentum: 0.9, WeightDecay: 1e-4, HeadChannels: 64, Upsample: true, Flip: true,
		SizeWeight: 0.1, OffsetWeight: 1, MaxDets: 100}
}

func (c Config) check() error {
	if c.Epochs < 0 || c.BatchSize < 2 || !(c.LR > 0) || c.FinalLR < 0 || c.HeadChannels <= 0 || c.MaxDets <= 0 ||
		c.SizeWeight < 0 || c.OffsetWeight < 0 || c.WarmupIters < 0 {
		return fmt.Errorf("%w: config %+v: epochs ≥ 0, batch size ≥ 2, positive lr, head channels and max dets, non-negative weights", ErrInput, c)
	}
	if c.Optimizer != optim.MethodAdamW && c.Optimizer != optim.MethodSGD {
		return fmt.Errorf("%w: optimizer %q: want %s or %s", ErrInput, c.Optimizer, optim.MethodAdamW, optim.MethodSGD)
	}
	return nil
}

// Model is a backbone with a detection head.
type Model struct {
	Backbone backbone.Backbone
	Head     *Head
	Classes  int
}

// NewModel puts a fresh head for classes categories on bb (a CNN: the
// head reads Output.FeatureMap), sized by cfg, initialised from cfg.Seed.
func NewModel(bb backbone.Backbone, classes int, cfg Config) (*Model, error) {
	if classes < 1 || cfg.HeadChannels <= 0 {
		return nil, fmt.Errorf("%w: %d classes, head width %d", ErrInput, classes, cfg.HeadChannels)
	}
	// The feature map's width is found by a tiny forward pass, which
	// also rejects backbones without one (ViTs).
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 3, 32, 32), gorgonia.WithName("probe"))
	out, err := bb.Forward(x, false)
	if err != nil {
		return nil, err
	}
	if out.FeatureMap == nil {
		return nil, fmt.Errorf("%w: %s has no convolutional feature map for a detection head", ErrInput, bb.Arch())
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xde7))
	return &Model{Backbone: bb, Head: NewHead(out.FeatureMap.Shape()[1], cfg.HeadChannels, classes, cfg.Upsample, rng), Classes: classes}, nil
}

// Params lists backbone and head parameters.
func (m *Model) Params() []*nn.Param { return append(m.Backbone.Params(), m.Head.Params()...) }

// graph is one forward pass of the model over a fixed batch.
type graph struct {
	g         *gorgonia.ExprGraph
	x         *tensor.Dense
	heat, reg *gorgonia.Node
	gh, gw    int
	stride    float64
}

func (m *Model) build(n, size int, train bool) (*graph, error) {
	g := gorgonia.NewGraph()
	xt := tensor.New(tensor.WithShape(n, 3, size, size), tensor.Of(tensor.Float32))
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(n, 3, size, size), gorgonia.WithName("x"), gorgonia.WithValue(xt))
	out, err := m.Backbone.Forward(x, train)
	if err != nil {
		return nil, err
	}
	heat, reg, err := m.Head.Forward(out.FeatureMap)
	if err != nil {
		return nil, err
	}
	s := heat.Shape()
	if size%s[3] != 0 || size%s[2] != 0 {
		return nil, fmt.Errorf("%w: input %d px does not divide into the %dx%d output grid", ErrInput, size, s[3], s[2])
	}
	return &graph{g: g, x: xt, heat: heat, reg: reg, gh: s[2], gw: s[3], stride: float64(size / s[3])}, nil
}

// TrainResult summarises a fine-tuning run.
type TrainResult struct {
	Steps     int
	Loss      float64 // mean total loss of the last epoch
	HeatLoss  float64 // its heatmap part
	Seconds   float64
	Stride    float64
	GridW     int
	TrainSize int
}

// Train fine-tunes the whole model (backbone and head) on set. Epochs 0
// leaves it untouched.
func Train(m *Model, set *Set, cfg Config) (*TrainResult, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := set.check("train"); err != nil {
		return nil, err
	}
	if len(set.CategoryIDs) != m.Classes {
		return nil, fmt.Errorf("%w: the model has %d classes, the set %d categories", ErrInput, m.Classes, len(set.CategoryIDs))
	}
	start := time.Now()
	batch := min(cfg.BatchSize, len(set.Images))
	if batch < 2 {
		return nil, fmt.Errorf("%w: %d training images: BatchNorm needs at least 2", ErrInput, len(set.Images))
	}
	gr, err := m.build(batch, set.Size, true)
	if err != nil {
		return nil, err
	}
	res := &TrainResult{Stride: gr.stride, GridW: gr.gw, TrainSize: len(set.Images)}
	if cfg.Epochs == 0 {
		return res, nil
	}
	t := &Targets{}
	t.Reset(batch, m.Classes, gr.gh, gr.gw)
	hm, err := FocalLossOp(gr.heat, t)
	if err != nil {
		return nil, err
	}
	wh, err := RegL1LossOp(gr.reg, t, FieldSize)
	if err != nil {
		return nil, err
	}
	off, err := RegL1LossOp(gr.reg, t, FieldOffset)
	if err != nil {
		return nil, err
	}
	loss := hm
	for _, term := range []struct {
		n *gorgonia.Node
		w float64
	}{{wh, cfg.SizeWeight}, {off, cfg.OffsetWeight}} {
		wn := gorgonia.NewScalar(gr.g, tensor.Float32, gorgonia.WithValue(float32(term.w)), gorgonia.WithName(fmt.Sprintf("w%p", term.n)))
		p, err := gorgonia.Mul(term.n, wn)
		if err != nil {
			return nil, err
		}
		if loss, err = gorgonia.Add(loss, p); err != nil {
			return nil, err
		}
	}
	params := m.Params()
	nodes := make(gorgonia.Nodes, len(params))
	ops := make([]*optim.Param, len(params))
	for i, p := range params {
		nodes[i] = p.Node(gr.g)
		ops[i] = &optim.Param{Name: p.Name, Shape: p.Value.Shape().Clone(), Data: p.Data()}
	}
	if _, err := gorgonia.Grad(loss, nodes...); err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	vm := gorgonia.NewTapeMachine(gr.g)
	defer nn.CloseMachine(vm)
	opt, err := optim.New(cfg.Optimizer, optim.GroupParams(ops, optim.GroupConfig{WDFactorForBias: 0, WDFactorForDW: 1}), cfg.Momentum)
	if err != nil {
		return nil, err
	}
	ipe := len(set.Images) / batch
	lr, err := optim.CosineScheduleIters(cfg.LR, cfg.FinalLR, cfg.Epochs*ipe, min(cfg.WarmupIters, cfg.Epochs*ipe), 0)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xf11b))
	order := make([]int, len(set.Images))
	for i := range order {
		order[i] = i
	}
	img := 3 * set.Size * set.Size
	inv := 1 / gr.stride
	for e := 0; e < cfg.Epochs; e++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var sum, sumHeat float64
		for it := 0; it < ipe; it++ {
			t.Reset(batch, m.Classes, gr.gh, gr.gw)
			dst := gr.x.Float32s()
			for k := 0; k < batch; k++ {
				im := &set.Images[order[it*batch+k]]
				flip := cfg.Flip && rng.IntN(2) == 1
				set.normalizeInto(dst[k*img:(k+1)*img], im, flip)
				for _, o := range im.Objects {
					b := o.Box
					if flip {
						b[0] = float64(set.Size) - b[0] - b[2]
					}
					t.Add(k, o.Class, [4]float64{b[0] * inv, b[1] * inv, b[2] * inv, b[3] * inv})
				}
			}
			vm.Reset()
			if err := vm.RunAll(); err != nil {
				return nil, fmt.Errorf("step %d: %w", res.Steps, err)
			}
			for i, n := range nodes {
				gv, err := n.Grad()
				if err != nil {
					return nil, err
				}
				ops[i].Grad = gv.Data().([]float32)
			}
			l := float64(loss.Value().Data().(float32))
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return nil, fmt.Errorf("detection training diverged at step %d (loss %v); lower the learning rate", res.Steps, l)
			}
			if err := opt.Step(lr[res.Steps], cfg.WeightDecay); err != nil {
				return nil, err
			}
			sum += l
			sumHeat += float64(hm.Value().Data().(float32))
			res.Steps++
		}
		res.Loss, res.HeatLoss = sum/float64(ipe), sumHeat/float64(ipe)
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "\rdetection epoch %d/%d  loss %.4f (heatmap %.4f)  %s ", e+1, cfg.Epochs, res.Loss, res.HeatLoss, time.Since(start).Round(time.Second))
		}
	}
	if cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// Predict runs the model in evaluation mode over set and returns every
// image's detections as COCO results (boxes in original image pixels,
// category ids from set.CategoryIDs), images in set order, each image's
// best first.
func Predict(m *Model, set *Set, maxDets int) ([]coco.Result, error) {
	if err := set.check("prediction"); err != nil {
		return nil, err
	}
	if maxDets <= 0 {
		return nil, fmt.Errorf("%w: max detections %d", ErrInput, maxDets)
	}
	const evalBatch = 32
	img := 3 * set.Size * set.Size
	graphs := map[int]gorgonia.VM{}
	built := map[int]*graph{}
	defer func() {
		for _, vm := range graphs {
			nn.CloseMachine(vm)
		}
	}()
	var out []coco.Result
	for lo := 0; lo < len(set.Images); lo += evalBatch {
		n := min(evalBatch, len(set.Images)-lo)
		gr, ok := built[n]
		if !ok {
			var err error
			if gr, err = m.build(n, set.Size, false); err != nil {
				return nil, err
			}
			built[n], graphs[n] = gr, gorgonia.NewTapeMachine(gr.g)
		}
		dst := gr.x.Float32s()
		for k := 0; k < n; k++ {
			set.normalizeInto(dst[k*img:(k+1)*img], &set.Images[lo+k], false)
		}
		vm := graphs[n]
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			return nil, err
		}
		heat := gr.heat.Value().Data().([]float32)
		reg := gr.reg.Value().Data().([]float32)
		cells := gr.gh * gr.gw
		for k := 0; k < n; k++ {
			im := &set.Images[lo+k]
			dets := Decode(heat[k*m.Classes*cells:(k+1)*m.Classes*cells], reg[k*4*cells:(k+1)*4*cells], m.Classes, gr.gh, gr.gw, gr.stride, maxDets)
			for _, d := range dets {
				b := coco.BBox{d.Box[0] * im.ScaleX, d.Box[1] * im.ScaleY, d.Box[2] * im.ScaleX, d.Box[3] * im.ScaleY}
				out = append(out, coco.Result{ImageID: im.ID, CategoryID: set.CategoryIDs[d.Class], BBox: &b, Score: d.Score})
			}
		}
	}
	return out, nil
}

// Metrics are COCO's box AP numbers (fractions in [0, 1]; −1 where
// nothing is defined, e.g. APs without small objects).
type Metrics struct {
	AP, AP50, AP75, APs, APm, APl float64
	// Stats are all 12 of COCOeval.summarize's numbers.
	Stats []float64
}

// Score evaluates results against the ground truth gt with pycocotools'
// bbox COCOeval (trainer/eval/cocoeval).
func Score(ctx context.Context, gt *coco.Dataset, results []coco.Result) (*Metrics, error) {
	g, err := cocoeval.NewGroundTruth(gt, "ground truth")
	if err != nil {
		return nil, err
	}
	dt, err := cocoeval.LoadResults(results, "detections", g, cocoeval.IoUBBox)
	if err != nil {
		return nil, err
	}
	ev, err := cocoeval.Evaluate(ctx, g, dt, cocoeval.DefaultParams(cocoeval.IoUBBox))
	if err != nil {
		return nil, err
	}
	s := ev.Stats
	return &Metrics{AP: s[0], AP50: s[1], AP75: s[2], APs: s[3], APm: s[4], APl: s[5], Stats: s}, nil
}
