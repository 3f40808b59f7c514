// Package features turns evaluation views into feature vectors: the model
// side of the evaluation pipeline's feature extraction, in plain Go (no
// Beam).
//
// A Model is one of three extractors:
//
//   - a trained backbone loaded from a checkpoint folder (LoadCheckpoint):
//     the student, or the teacher (DINO's EMA teacher, MoCo's key
//     encoder), checked strictly against its meta.json before anything
//     runs;
//   - a freshly initialised backbone (NewRandomInit), the random-init
//     baseline of the paper's comparisons;
//   - the raw pixels (NewRawPixels): the flattened normalised view itself,
//     the raw-pixel baseline.
//
// Extract runs the backbone in evaluation mode (BatchNorm with its running
// statistics, no stochastic depth) on CHW float32 views normalised as the
// evaluation transform does, in batches, and returns Output.Embedding: the
// global average of the last feature map for CNNs, the final-norm class
// token for ViTs.
package features

import (
	"context"
	"fmt"
	"math/bits"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/sinks/featurefile"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/nn"
)

// Arch names a backbone and the options that shape its tensors.
type Arch struct {
	// Name is a backbone.Archs() name ("resnet18", "mobilenet_v2", ...).
	Name string
	// Width, SmallImageStem and PatchSize are backbone.Options' fields
	// (MODEL.WIDTH, MODEL.SMALL_IMAGE_STEM, VIT.PATCH_SIZE).
	Width          float64
	SmallImageStem bool
	PatchSize      int
}

// ArchOf returns the architecture a checkpoint's meta.json describes.
func ArchOf(m checkpoint.Meta) Arch {
	return Arch{Name: m.Arch, Width: m.Width, SmallImageStem: m.SmallImageStem, PatchSize: m.PatchSize}
}

func (a Arch) options() backbone.Options {
	return backbone.Options{Width: a.Width, SmallImageStem: a.SmallImageStem, PatchSize: a.PatchSize}
}

func (a Arch) build(seed uint64) (backbone.Backbone, error) {
	o := a.options()
	o.Seed = seed
	return backbone.New(a.Name, o)
}

// ErrCheckpoint is wrapped by every error about a checkpoint that cannot
// serve as a feature extractor (missing files, unknown architecture,
// tensors that do not match).
var ErrCheckpoint = checkpoint.ErrUnusable

// Model extracts feature vectors. A Model is not safe for concurrent use:
// its graphs keep their buffers between calls. Give each goroutine its own
// (Clone) or serialise the calls; one Model already spreads a batch over
// every CPU.
type Model struct {
	// BatchSize is the largest batch one forward pass takes (0:
	// DefaultBatchSize for the view size).
	BatchSize int

	mode    string
	arch    Arch
	seed    uint64
	dir     string
	meta    *checkpoint.Meta
	weights checkpoint.Weights
	bb      backbone.Backbone
	runs    map[runKey]*run
}

// runKey identifies one compiled forward pass.
type runKey struct{ n, h, w int }

// run is one graph with its machine, its input and its output node.
type run struct {
	vm  gorgonia.VM
	x   *tensor.Dense
	out *gorgonia.Node
}

// maxRuns bounds the compiled graphs a Model keeps: one per view size and
// batch size used (the full batch; powers of two for short calls).
const maxRuns = 16

// LoadCheckpoint loads a backbone of a checkpoint folder (trainer's
// <out>/checkpoints/step-NNNNNNNN, holding meta.json and
// backbone.safetensors): the student, or with w = checkpoint.Teacher the
// teacher (checkpoint.LoadBackbone says from where; a SwAV checkpoint has
// none). dir may also be a training output folder, in which case its
// newest complete checkpoint is used. The load is strict: an unknown
// architecture, a backbone file of another architecture, missing,
// unexpected or mis-shaped tensors are errors naming the problem (wrapping
// ErrCheckpoint), found before any extraction starts.
func LoadCheckpoint(ctx context.Context, dir string, w checkpoint.Weights) (*Model, error) {
	ck, err := checkpoint.LoadBackbone(ctx, dir, w)
	if err != nil {
		return nil, err
	}
	return &Model{mode: featurefile.ModeCheckpoint, arch: ArchOf(*ck.Meta), dir: ck.Dir, meta: ck.Meta, weights: ck.Weights, bb: ck.Net}, nil
}

// NewRandomInit builds arch with the initialisation that seed draws (the
// trainer's, backbone.Options.Seed) and its BatchNorm running statistics at
// their initial values (mean 0, variance 1).
func NewRandomInit(arch Arch, seed uint64) (*Model, error) {
	bb, err := arch.build(seed)
	if err != nil {
		return nil, fmt.Errorf("random-init features: %w", err)
	}
	return &Model{mode: featurefile.ModeRandomInit, arch: arch, seed: seed, bb: bb}, nil
}

// NewRawPixels returns the extractor whose features are the views
// themselves, flattened (dimension 3·H·W).
func NewRawPixels() *Model { return &Model{mode: featurefile.ModeRawPixels} }

// Clone returns an independent Model with the same weights, for another
// goroutine.
func (m *Model) Clone() (*Model, error) {
	c := &Model{BatchSize: m.BatchSize, mode: m.mode, arch: m.arch, seed: m.seed, dir: m.dir, meta: m.meta, weights: m.weights}
	if m.bb == nil {
		return c, nil
	}
	bb, err := m.arch.build(m.seed)
	if err != nil {
		return nil, err
	}
	if err := backbone.LoadStateDict(bb, backbone.StateDict(m.bb)); err != nil {
		return nil, fmt.Errorf("clone %s: %w", m.arch.Name, err) // same architecture: a bug
	}
	c.bb = bb
	return c, nil
}

// Mode returns the sinks/featurefile mode: checkpoint, random_init or
// raw_pixels.
func (m *Model) Mode() string { return m.mode }

// Meta returns the checkpoint's meta.json (nil for the other modes).
func (m *Model) Meta() *checkpoint.Meta { return m.meta }

// Dir returns the checkpoint folder loaded ("" for the other modes).
func (m *Model) Dir() string { return m.dir }

// Weights returns which network of the checkpoint was loaded (Student or
// Teacher; "" for the other modes).
func (m *Model) Weights() checkpoint.Weights { return m.weights }

// Info describes the model for a features index.
func (m *Model) Info() featurefile.ModelInfo {
	mi := featurefile.ModelInfo{Mode: m.mode}
	if m.bb != nil {
		mi.Arch, mi.Width, mi.SmallImageStem, mi.PatchSize = m.arch.Name, m.arch.Width, m.arch.SmallImageStem, m.arch.PatchSize
	}
	switch m.mode {
	case featurefile.ModeCheckpoint:
		mi.Checkpoint, mi.ConfigHash, mi.Step, mi.Weights = m.dir, m.meta.ConfigHash, m.meta.Step, string(m.weights)
	case featurefile.ModeRandomInit:
		mi.Seed = m.seed
	}
	return mi
}

// Dim returns the feature dimension for h×w views.
func (m *Model) Dim(h, w int) int {
	if m.bb == nil {
		return 3 * h * w
	}
	return m.bb.EmbedDim()
}

// DefaultBatchSize is the batch size used for h×w views when BatchSize is
// 0: 16 at 224×224, scaled inversely with the pixel count (the graph keeps
// every activation of the batch), between 1 and 64. Larger batches did not
// extract faster (an op already spreads 64 images over the CPUs) and cost
// memory per graph and padding per short batch.
func DefaultBatchSize(h, w int) int {
	return max(1, min(64, 16*224*224/max(1, h*w)))
}

// Extract returns the features of images, row-major [len(images), Dim]:
// each image a 3×h×w float32 CHW view, normalised. Batches run in
// evaluation mode; a batch's rows do not depend on each other, so the
// result does not depend on the batch size.
func (m *Model) Extract(images [][]float32, h, w int) ([]float32, error) {
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("features: view size %d×%d: want positive", h, w)
	}
	for i, im := range images {
		if len(im) != 3*h*w {
			return nil, fmt.Errorf("features: image %d has %d values, want 3×%d×%d = %d", i, len(im), h, w, 3*h*w)
		}
	}
	d := m.Dim(h, w)
	out := make([]float32, len(images)*d)
	if m.bb == nil {
		for i, im := range images {
			copy(out[i*d:], im)
		}
		return out, nil
	}
	bs := m.BatchSize
	if bs <= 0 {
		bs = DefaultBatchSize(h, w)
	}
	// Every batch runs through one graph of bs images per view size: a
	// graph keeps all its activations (bs×1.6 MB for the Fashion-MNIST
	// ResNet-18 at 28 px), so one graph per remainder size multiplied the
	// memory, while zero-padding a short batch costs at most one batch
	// of compute per call. A call with fewer than bs images in all, when
	// no full-batch graph exists yet, gets a graph of the next power of
	// two instead (a one-image probe would otherwise run a full batch).
	g := bs
	if _, ok := m.runs[runKey{bs, h, w}]; !ok && len(images) < bs {
		g = 1 << bits.Len(uint(len(images)-1))
	}
	for i := 0; i < len(images); {
		n := min(g, len(images)-i)
		r, err := m.run(g, h, w)
		if err != nil {
			return nil, err
		}
		x := r.x.Float32s()
		for j := 0; j < n; j++ {
			copy(x[j*3*h*w:], images[i+j])
		}
		clear(x[n*3*h*w:]) // padding rows: their features are dropped
		r.vm.Reset()
		if err := r.vm.RunAll(); err != nil {
			return nil, fmt.Errorf("features: %s forward on %d images of %d×%d: %w", m.arch.Name, n, h, w, err)
		}
		copy(out[i*d:(i+n)*d], r.out.Value().Data().([]float32))
		i += n
	}
	return out, nil
}

// run returns the compiled forward pass for n h×w views, building it on
// first use.
func (m *Model) run(n, h, w int) (*run, error) {
	k := runKey{n, h, w}
	if r, ok := m.runs[k]; ok {
		return r, nil
	}
	if len(m.runs) >= maxRuns {
		m.Close() // view sizes changed: start over rather than grow
	}
	g := gorgonia.NewGraph()
	x := tensor.New(tensor.WithShape(n, 3, h, w), tensor.Of(tensor.Float32))
	in := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(n, 3, h, w), gorgonia.WithName("x"), gorgonia.WithValue(x))
	o, err := m.bb.Forward(in, false)
	if err != nil {
		return nil, fmt.Errorf("features: %s on %d×%d views: %w", checkpoint.Describe(m.arch.Name, m.arch.options()), h, w, err)
	}
	// Only the embedding is read after a run: the activations share buffers.
	if _, err := nn.ShareBuffers(g, o.Embedding); err != nil {
		return nil, fmt.Errorf("features: %s on %d×%d views: %w", checkpoint.Describe(m.arch.Name, m.arch.options()), h, w, err)
	}
	r := &run{vm: gorgonia.NewTapeMachine(g), x: x, out: o.Embedding}
	if m.runs == nil {
		m.runs = map[runKey]*run{}
	}
	m.runs[k] = r
	return r, nil
}

// Close releases the compiled graphs and the ops' pooled scratch buffers;
// the Model stays usable (they are rebuilt on demand).
func (m *Model) Close() {
	for _, r := range m.runs {
		nn.CloseMachine(r.vm)
	}
	m.runs = nil
	nn.ReleaseScratch()
}

// Backbone is the model's network (nil for raw pixels), for running it on
// another executor (the GPU's) with the same weights.
func (m *Model) Backbone() backbone.Backbone { return m.bb }
