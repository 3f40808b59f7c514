// Package checkpoint is the trainer's checkpoint format seen from outside
// the training loop: the files of a checkpoint folder, its meta.json, how
// to find the newest one under a training output, and the one strict way
// to load a trained backbone from it, the student's or the teacher's. The
// trainer writes checkpoints; evaluation, export and embedding read them
// through this package, so none of them depends on the training loop.
//
// A checkpoint is a folder <out>/checkpoints/step-NNNNNNNN holding
//
//	checkpoint.safetensors          everything needed to resume
//	backbone.safetensors            the student backbone under torchvision/timm names,
//	                                what evaluation and PyTorch users load
//	teacher_backbone.safetensors    the teacher's backbone under the same names, for a
//	                                method that has one (DINO's EMA teacher, MoCo's key
//	                                encoder; SwAV has none)
//	meta.json                       written last: a folder without it is an interrupted
//	                                write and is ignored
//
// Checkpoints written before teacher_backbone.safetensors existed still
// give their teacher: LoadBackbone then reads it from checkpoint.safetensors
// (teacher.backbone.* or key.backbone.*).
//
// Tensor names in checkpoint.safetensors, by SSL_METHOD; "student." is
// always the network being trained, each under "backbone." (torchvision/
// timm names) and "head." (the reference's head names):
//
//	DINO  student.…, teacher.… (the EMA teacher), loss.dino.center
//	SWAV  student.… (head.projection.mlp.…, head.prototypes.weight),
//	      swav.queue [crops for assign, length, dim] once the queue exists,
//	      swav.use_the_queue (int64 0/1)
//	MOCO  student.… (the query encoder), key.… (the key encoder),
//	      moco.queue [dim, length], moco.queue_ptr [1] (int64)
//
// and, for all, optimizer.<parameter>/<buffer> (torch's buffer names) and
// optimizer.<parameter>/step where the optimiser counts steps.
package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
)

// The files of a checkpoint folder, and the folder under a training output
// that holds the checkpoints.
const (
	StateFile           = "checkpoint.safetensors"
	BackboneFile        = "backbone.safetensors"
	TeacherBackboneFile = "teacher_backbone.safetensors"
	MetaFile            = "meta.json"
	Folder              = "checkpoints"
)

// Meta is a checkpoint's meta.json.
type Meta struct {
	// Method is the SSL method (DINO, SWAV or MOCO).
	Method string `json:"method"`
	// Arch is the backbone architecture; Width and SmallImageStem its
	// sslight extensions, so a reader can rebuild the network.
	Arch           string  `json:"arch"`
	Width          float64 `json:"width"`
	SmallImageStem bool    `json:"small_image_stem"`
	PatchSize      int     `json:"patch_size,omitempty"`
	EmbedDim       int     `json:"embed_dim"`
	// Epoch is the training epoch the next step belongs to and
	// StepInEpoch how many of its iterations are done; Step is the global
	// step (the schedules' position).
	Epoch       int `json:"epoch"`
	StepInEpoch int `json:"step_in_epoch"`
	Step        int `json:"step"`
	// Epochs and ItersPerEpoch fix the schedules' length.
	Epochs        int `json:"epochs"`
	ItersPerEpoch int `json:"iters_per_epoch"`
	BatchSize     int `json:"batch_size"`
	Seed          int `json:"seed"`
	// ConfigHash is the training config's hash, AugmentationHash that of
	// its augmentation settings, ShardsConfigHash the prepare run's.
	ConfigHash       string `json:"config_hash"`
	AugmentationHash string `json:"augmentation_hash"`
	ShardsConfigHash string `json:"shards_config_hash"`
	Shards           string `json:"shards"`
	// InitFrom is the checkpoint this run started from ("" for a fresh
	// initialisation).
	InitFrom string `json:"init_from,omitempty"`
	// ConfigSource is the preset name or file the config was loaded from,
	// when the caller said (reports name it).
	ConfigSource string `json:"config_source,omitempty"`
	// Config is the training config as JSON (canonical, the config hash's
	// input), stored as a JSON object people can read.
	Config ConfigJSON `json:"config"`
	// ImagesSeen counts training samples consumed so far.
	ImagesSeen int64 `json:"images_seen"`
	// StepsPerEpoch are the iterations each finished epoch ran:
	// ItersPerEpoch, or fewer where --skip-bad-shards left shards out.
	// Checkpoints written before it existed lack it.
	StepsPerEpoch []int `json:"steps_per_epoch,omitempty"`
	// LastLoss is the loss of the last step before the checkpoint.
	LastLoss float64 `json:"last_loss"`
	// Reason says why the checkpoint was written: period, final, signal,
	// max-steps, non-finite-loss.
	Reason string `json:"reason"`
}

// ConfigJSON is a config's JSON text, written into meta.json as the JSON
// object itself. Checkpoints of earlier releases stored it base64-encoded
// (encoding/json's form of []byte); those still read.
type ConfigJSON []byte

// MarshalJSON writes the config as a JSON object (null when empty).
func (c ConfigJSON) MarshalJSON() ([]byte, error) {
	if len(c) == 0 {
		return []byte("null"), nil
	}
	if !json.Valid(c) {
		return nil, fmt.Errorf("checkpoint meta: the config is not JSON: %.40q", c)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UnmarshalJSON reads a JSON object, or the base64 string of earlier
// releases.
func (c *ConfigJSON) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = nil
	case len(b) > 0 && b[0] == '"':
		var raw []byte // base64 in a JSON string
		if err := json.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("checkpoint meta: config: %w", err)
		}
		*c = raw
	default:
		*c = append((*c)[:0], b...)
	}
	return nil
}

// ParseConfig returns the training config the checkpoint recorded.
func (m *Meta) ParseConfig() (*configs.Config, error) {
	cfg, err := configs.Parse(m.Config, "checkpoint config")
	if err != nil {
		return nil, fmt.Errorf("checkpoint config: %w", err)
	}
	return cfg, nil
}

// BackboneOptions are the backbone.Options that shape the checkpoint's tensors.
func (m *Meta) BackboneOptions() backbone.Options {
	return backbone.Options{Width: m.Width, SmallImageStem: m.SmallImageStem, PatchSize: m.PatchSize}
}

// Dir returns the folder of the checkpoint after global step step under
// the training output out.
func Dir(out string, step int) string {
	return storage.Join(out, Folder, fmt.Sprintf("step-%08d", step))
}

// Latest returns the newest complete checkpoint folder under the training
// output out and its meta, or "" and nil when there is none.
func Latest(ctx context.Context, out string) (string, *Meta, error) {
	metas, err := storage.List(ctx, storage.Join(out, Folder, "step-*", MetaFile))
	if err != nil {
		return "", nil, err
	}
	if len(metas) == 0 {
		return "", nil, nil
	}
	last := metas[len(metas)-1] // step-%08d sorts by step
	var meta Meta
	if err := jsonfile.Read(ctx, last, &meta); err != nil {
		return "", nil, fmt.Errorf("checkpoint %s: %w", last, err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(last, MetaFile), "/"), &meta, nil
}

// ErrUnusable is wrapped by every error about a checkpoint that cannot
// serve as a backbone (missing files, unknown architecture, tensors that do
// not match).
var ErrUnusable = errors.New("unusable checkpoint")

// Resolve accepts a checkpoint folder, or a training output folder (its
// newest complete checkpoint), and returns the checkpoint folder and its
// meta.
func Resolve(ctx context.Context, dir string) (string, *Meta, error) {
	dir = strings.TrimSuffix(dir, "/")
	metaURI := storage.Join(dir, MetaFile)
	ok, err := storage.Exists(ctx, metaURI)
	if err != nil {
		return "", nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if !ok {
		d, m, err := Latest(ctx, dir)
		if err != nil {
			return "", nil, fmt.Errorf("checkpoint %s: %w: %v", dir, ErrUnusable, err)
		}
		if m == nil {
			return "", nil, fmt.Errorf("checkpoint %s: %w: no %s there (nor %s/step-*/%s): pass a checkpoint folder or a pretrain --out",
				dir, ErrUnusable, MetaFile, Folder, MetaFile)
		}
		return d, m, nil
	}
	var meta Meta
	if err := jsonfile.Read(ctx, metaURI, &meta); err != nil {
		return "", nil, fmt.Errorf("checkpoint %s: %w: %v", dir, ErrUnusable, err)
	}
	return dir, &meta, nil
}

// Backbone is a trained backbone loaded from a checkpoint.
type Backbone struct {
	// Dir is the checkpoint folder it came from (resolved).
	Dir  string
	Meta *Meta
	Net  backbone.Backbone
	// Weights says which network it is (Student or Teacher) and From where
	// its tensors were read: a file of Dir ("backbone.safetensors"), or
	// the teacher's entries in checkpoint.safetensors of an older
	// checkpoint ("checkpoint.safetensors teacher.backbone.*").
	Weights Weights
	From    string
}

// LoadBackbone loads a backbone of a checkpoint folder or of a training
// output folder (its newest complete checkpoint): the student
// (backbone.safetensors) or the teacher (teacher_backbone.safetensors,
// or, in checkpoints written before that file existed, the
// teacher.backbone.* / key.backbone.* entries of checkpoint.safetensors);
// w "" means Student. A SwAV checkpoint has no teacher: asking for it is
// an error wrapping ErrNoTeacher. The load is strict: an unknown
// architecture, a backbone file of another architecture, missing,
// unexpected or mis-shaped tensors are errors naming the problem (wrapping
// ErrUnusable). Every reader of trained backbones (evaluation,
// fine-tuning, detection, export, embedding) loads them here.
func LoadBackbone(ctx context.Context, dir string, w Weights) (*Backbone, error) {
	w = w.OrStudent()
	if w != Student && w != Teacher {
		return nil, fmt.Errorf("checkpoint %s: weights %q: want %s or %s", dir, w, Student, Teacher)
	}
	dir, meta, err := Resolve(ctx, dir)
	if err != nil {
		return nil, err
	}
	prefix := TeacherPrefix(meta.Method)
	if w == Teacher && prefix == "" {
		return nil, noTeacher(dir, meta.Method)
	}
	bb, err := backbone.New(meta.Arch, meta.BackboneOptions())
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w: %s: %v", dir, ErrUnusable, MetaFile, err)
	}
	if meta.EmbedDim != 0 && meta.EmbedDim != bb.EmbedDim() {
		return nil, fmt.Errorf("checkpoint %s: %w: %s says embed_dim %d, but %s has %d",
			dir, ErrUnusable, MetaFile, meta.EmbedDim, Describe(meta.Arch, meta.BackboneOptions()), bb.EmbedDim())
	}
	file := BackboneFile
	if w == Teacher {
		file = TeacherBackboneFile
		ok, err := storage.Exists(ctx, storage.Join(dir, file))
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w: %v", dir, ErrUnusable, err)
		}
		if !ok {
			return loadTeacherFromState(ctx, dir, meta, bb, prefix)
		}
	}
	f, err := readSafetensors(ctx, dir, file)
	if err != nil {
		return nil, err
	}
	if a := f.Metadata["arch"]; a != "" && a != meta.Arch {
		return nil, fmt.Errorf("checkpoint %s: %w: %s holds a %s backbone, %s says %s",
			dir, ErrUnusable, file, a, MetaFile, meta.Arch)
	}
	if err := backbone.LoadStateDict(bb, f); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w: %s does not fit %s: %v", dir, ErrUnusable, file, Describe(meta.Arch, meta.BackboneOptions()), err)
	}
	return &Backbone{Dir: dir, Meta: meta, Net: bb, Weights: w, From: file}, nil
}

// loadTeacherFromState loads the teacher of a checkpoint without
// teacher_backbone.safetensors from its entries under prefix+"backbone."
// in checkpoint.safetensors.
func loadTeacherFromState(ctx context.Context, dir string, meta *Meta, bb backbone.Backbone, prefix string) (*Backbone, error) {
	f, err := readSafetensors(ctx, dir, StateFile)
	if err != nil {
		return nil, fmt.Errorf("%w (the teacher is read from there when %s is absent)", err, TeacherBackboneFile)
	}
	from := StateFile + " " + prefix + "backbone.*"
	sub := safetensors.NewFile()
	for _, name := range f.Names {
		if rest, ok := strings.CutPrefix(name, prefix+"backbone."); ok {
			sub.Names = append(sub.Names, rest)
			sub.Tensors[rest] = f.Tensors[name]
		}
	}
	if len(sub.Names) == 0 {
		return nil, fmt.Errorf("checkpoint %s: %w: no %s and no %sbackbone.* entries in %s: the %s of this %s checkpoint is not there",
			dir, ErrUnusable, TeacherBackboneFile, prefix, StateFile, TeacherName(meta.Method), meta.Method)
	}
	if err := backbone.LoadStateDict(bb, sub); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w: %s does not fit %s: %v", dir, ErrUnusable, from, Describe(meta.Arch, meta.BackboneOptions()), err)
	}
	return &Backbone{Dir: dir, Meta: meta, Net: bb, Weights: Teacher, From: from}, nil
}

// readSafetensors reads and decodes one safetensors file of a checkpoint.
func readSafetensors(ctx context.Context, dir, name string) (*safetensors.File, error) {
	raw, err := storage.ReadFile(ctx, storage.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w: %v", dir, ErrUnusable, err)
	}
	f, err := safetensors.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w: %s: %v", dir, ErrUnusable, name, err)
	}
	return f, nil
}

// Describe spells an architecture with its options, for messages.
func Describe(arch string, o backbone.Options) string {
	s := arch
	if o.Width != 0 && o.Width != 1 {
		s += fmt.Sprintf(" width %g", o.Width)
	}
	if o.SmallImageStem {
		s += " small-image stem"
	}
	if o.PatchSize != 0 && strings.HasPrefix(arch, "vit") {
		s += fmt.Sprintf(" patch %d", o.PatchSize)
	}
	return s
}
