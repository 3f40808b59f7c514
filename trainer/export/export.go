// Package export turns a trained checkpoint into a model file for use
// outside sslight: ONNX for on-device inference (any runtime: checked
// against ONNX's own checker and OpenCV's DNN module), or a
// torchvision/timm-named safetensors file for PyTorch
// (python/sslight_torch.py builds the matching module and loads it).
//
// Run reads a checkpoint folder (or a pretrain --out, meaning its newest
// checkpoint) through trainer/checkpoint, loads the student backbone from
// backbone.safetensors or the teacher (DINO's EMA teacher, MoCo's key
// encoder) from teacher_backbone.safetensors (checkpoint.safetensors in
// checkpoints written before that file), optionally with the method's head,
// every load strict, and writes one file through sinks/storage (a local
// path or gs://…). Every option is checked, and the checkpoint's meta.json
// read, before any weights are.
//
// The ONNX model (opset 13, see Opset) takes "input" [N, 3, S, S] float32,
// normalised as the evaluation transform does (ToTensor, then
// Normalize(DATA.MEAN, DATA.STD) of the training config; the metadata
// carries both), and gives "embedding" [N, D], the backbone's
// Output.Embedding in evaluation mode; CNNs also give "feature_map", their
// last feature map, and with the head "head" (and SwAV's "projection").
package export

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// Formats and weights Run accepts.
const (
	FormatONNX        = "onnx"
	FormatSafetensors = "safetensors"

	WeightsStudent = string(checkpoint.Student)
	WeightsTeacher = string(checkpoint.Teacher)
)

// Options are what to export and where. The fields map one to one onto the
// flags of `sslight export`: --checkpoint, --format, --weights,
// --with-head, --batch, --size, --fold-bn, --out.
type Options struct {
	// Checkpoint is a checkpoint folder (…/checkpoints/step-N) or a
	// pretrain --out folder, meaning its newest complete checkpoint.
	// Required. (--checkpoint)
	Checkpoint string
	// Format is FormatONNX or FormatSafetensors ("" means onnx). (--format)
	Format string
	// Weights is WeightsStudent (the trained network, backbone.safetensors)
	// or WeightsTeacher (DINO's EMA teacher, MoCo's key encoder, from
	// teacher_backbone.safetensors or, in older checkpoints,
	// checkpoint.safetensors; SwAV has none) ("" means student). (--weights)
	Weights string
	// WithHead appends the method's head: in ONNX its output becomes the
	// output "head" (DINO: the logits of the weight-normalised last layer;
	// MoCo: the projection, before MoCo's normalisation; SwAV: the
	// prototype scores, with the normalised projection as "projection");
	// in safetensors its tensors are added under "head." with the
	// reference's names. (--with-head)
	WithHead bool
	// Batch fixes the ONNX input's batch size; 0 leaves it dynamic (the
	// dimension is named "N"). ONNX only. (--batch)
	Batch int
	// Size is the ONNX input's height and width; 0 means the training
	// config's MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE. A ViT needs a
	// multiple of its patch size; a CNN any size its layers keep non-empty.
	// ONNX only. (--size)
	Size int
	// FoldBN folds every eval-mode BatchNorm into the convolution (or the
	// head's linear layer) before it; without it each is a
	// BatchNormalization node. A ViT backbone has no BatchNorm, so there
	// it changes nothing (the Summary says so). ONNX only (a safetensors
	// file keeps torchvision's BatchNorm tensors); the command's default
	// is true, as DefaultOptions'. (--fold-bn)
	FoldBN bool
	// Out is the file to write (local path or gs://…). Required. (--out)
	Out string
}

// DefaultOptions are the command's defaults: ONNX, student weights,
// dynamic batch, the training size, BatchNorm folded.
func DefaultOptions() Options {
	return Options{Format: FormatONNX, Weights: WeightsStudent, FoldBN: true}
}

// Summary describes what Run wrote.
type Summary struct {
	// Out is the file written, Format its format, Bytes its size.
	Out    string `json:"out"`
	Format string `json:"format"`
	Bytes  int64  `json:"bytes"`
	// Checkpoint is the checkpoint folder read (resolved), Step its
	// global step, Method its SSL method.
	Checkpoint string `json:"checkpoint"`
	Step       int    `json:"step"`
	Method     string `json:"method"`
	// Arch describes the backbone (with width, stem, patch), Weights which
	// network was exported.
	Arch    string `json:"arch"`
	Weights string `json:"weights"`
	// WithHead says whether the head was included.
	WithHead bool `json:"with_head"`
	// Size and Batch are the ONNX input's (Batch 0: dynamic).
	Size  int `json:"size,omitempty"`
	Batch int `json:"batch,omitempty"`
	// FoldBN says whether BatchNorms were folded; BatchNorms counts those
	// of the exported networks (folded or not).
	FoldBN     bool `json:"fold_bn"`
	BatchNorms int  `json:"batch_norms"`
	// Outputs lists the ONNX outputs with their shapes ("N" for a dynamic
	// batch), Nodes the graph's node count, Opset its operator set.
	Outputs []Output `json:"outputs,omitempty"`
	Nodes   int      `json:"nodes,omitempty"`
	Opset   int64    `json:"opset,omitempty"`
	// Tensors counts the tensors written (safetensors) or the ONNX
	// initializers.
	Tensors int `json:"tensors"`
	// Metadata is what the file carries (ONNX metadata_props, safetensors
	// __metadata__).
	Metadata map[string]string `json:"metadata"`
	// Notes are remarks about the options (an option with no effect).
	Notes []string `json:"notes,omitempty"`
}

// Output is one ONNX output.
type Output struct {
	Name  string   `json:"name"`
	Shape []string `json:"shape"`
}

// ErrOptions is wrapped by every error about the options themselves.
var ErrOptions = errors.New("export: bad options")

// Run exports one checkpoint as o says and reports what it wrote.
func Run(ctx context.Context, o Options) (*Summary, error) {
	p, err := plan(ctx, o)
	if err != nil {
		return nil, err
	}
	nets, err := loadNetworks(ctx, p)
	if err != nil {
		return nil, err
	}
	if p.format == FormatSafetensors {
		return writeSafetensors(ctx, p, nets)
	}
	return writeONNX(ctx, p, nets)
}

// job is a checked Options with the checkpoint's meta.
type job struct {
	o       Options
	format  string
	weights string
	dir     string
	meta    *checkpoint.Meta
	size    int
	mean    [3]float64
	std     [3]float64
	notes   []string
	// arch is a freshly built backbone of the checkpoint's architecture,
	// for the checks that need its shape (no weights loaded).
	arch backbone.Backbone
}

// plan checks the options and reads meta.json (and the config in it):
// everything that can be wrong short of the weights themselves.
func plan(ctx context.Context, o Options) (*job, error) {
	p := &job{o: o, format: strings.ToLower(o.Format), weights: strings.ToLower(o.Weights)}
	if p.format == "" {
		p.format = FormatONNX
	}
	if p.weights == "" {
		p.weights = WeightsStudent
	}
	switch {
	case o.Checkpoint == "":
		return nil, fmt.Errorf("%w: no checkpoint (--checkpoint: a checkpoint folder or a pretrain --out)", ErrOptions)
	case o.Out == "":
		return nil, fmt.Errorf("%w: no output file (--out)", ErrOptions)
	case p.format != FormatONNX && p.format != FormatSafetensors:
		return nil, fmt.Errorf("%w: format %q: want %s or %s", ErrOptions, o.Format, FormatONNX, FormatSafetensors)
	case p.weights != WeightsStudent && p.weights != WeightsTeacher:
		return nil, fmt.Errorf("%w: weights %q: want %s or %s", ErrOptions, o.Weights, WeightsStudent, WeightsTeacher)
	case o.Batch < 0:
		return nil, fmt.Errorf("%w: batch %d: want a positive batch size, or 0 for a dynamic one", ErrOptions, o.Batch)
	case o.Size < 0:
		return nil, fmt.Errorf("%w: size %d: want a positive input size, or 0 for the training size", ErrOptions, o.Size)
	}
	dir, meta, err := checkpoint.Resolve(ctx, o.Checkpoint)
	if err != nil {
		return nil, err
	}
	p.dir, p.meta = dir, meta
	cfg, err := meta.ParseConfig()
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w: %v", dir, checkpoint.ErrUnusable, err)
	}
	if cfg.SSLMethod != meta.Method {
		return nil, fmt.Errorf("checkpoint %s: %w: meta.json says method %s, its config %s", dir, checkpoint.ErrUnusable, meta.Method, cfg.SSLMethod)
	}
	if p.weights == WeightsTeacher && checkpoint.TeacherPrefix(meta.Method) == "" {
		return nil, fmt.Errorf("%w: weights teacher: a %s checkpoint has no teacher (DINO has its EMA teacher, MoCo its key encoder; SwAV trains one network)", ErrOptions, meta.Method)
	}
	if len(cfg.Data.Mean) != 3 || len(cfg.Data.Std) != 3 {
		return nil, fmt.Errorf("checkpoint %s: %w: DATA.MEAN %v / DATA.STD %v are not three values", dir, checkpoint.ErrUnusable, cfg.Data.Mean, cfg.Data.Std)
	}
	copy(p.mean[:], cfg.Data.Mean)
	copy(p.std[:], cfg.Data.Std)
	if p.arch, err = backbone.New(meta.Arch, meta.BackboneOptions()); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w: %s: %v", dir, checkpoint.ErrUnusable, checkpoint.MetaFile, err)
	}
	if o.WithHead {
		if _, err := newHead(cfg, "head.", p.arch.EmbedDim()); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w: the head of its config: %v", dir, checkpoint.ErrUnusable, err)
		}
	}
	isViT := strings.HasPrefix(meta.Arch, "vit")
	if p.format == FormatSafetensors {
		// FoldBN is not noted: it is on by default, and the file keeps the
		// BatchNorms as torchvision's modules hold them.
		for _, n := range []struct {
			set  bool
			flag string
		}{{o.Batch != 0, "--batch"}, {o.Size != 0, "--size"}} {
			if n.set {
				p.notes = append(p.notes, n.flag+" applies to ONNX only: the safetensors file holds the checkpoint's tensors as they are")
			}
		}
		return p, nil
	}
	p.size = o.Size
	if p.size == 0 {
		p.size = cfg.MultiViewsTransforms.GlobalCropSize
	}
	if isViT {
		patch := meta.BackboneOptions().PatchSize
		if patch == 0 {
			patch = 16
		}
		if p.size%patch != 0 {
			return nil, fmt.Errorf("%w: size %d: %s takes inputs whose side is a multiple of its patch size %d (e.g. %d or %d)",
				ErrOptions, p.size, checkpoint.Describe(meta.Arch, meta.BackboneOptions()), patch, p.size/patch*patch, (p.size/patch+1)*patch)
		}
		if o.FoldBN && !(o.WithHead && headHasBN(cfg)) {
			p.notes = append(p.notes, "--fold-bn: "+meta.Arch+" has no BatchNorm, nothing to fold")
		}
	} else if _, err := backbone.CountFLOPs(p.arch, p.size, p.size); err != nil {
		return nil, fmt.Errorf("%w: size %d: %v", ErrOptions, p.size, err)
	}
	return p, nil
}
