package export

import (
	"context"
	"fmt"
	"strings"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/nn"
	"github.com/sslight-go/sslight/trainer/ssl"
)

// networks are the loaded networks of one export.
type networks struct {
	backbone backbone.Backbone
	// head is a *ssl.DINOHead, *ssl.MoCoHead or *ssl.SwAVHead (nil without
	// WithHead); headPrefix the checkpoint prefix its names carry
	// ("student.head.", "teacher.head.", "key.head.").
	head       headNet
	headPrefix string
}

// headNet is what the three heads have in common here.
type headNet interface {
	Entries() []nn.Entry
}

// loadNetworks loads the backbone (and the head) the job asks for,
// strictly: a missing, unexpected or mis-shaped tensor is an error naming
// it.
func loadNetworks(ctx context.Context, p *job) (*networks, error) {
	n := &networks{}
	var state *safetensors.File
	if p.o.WithHead {
		uri := storage.Join(p.dir, checkpoint.StateFile)
		raw, err := storage.ReadFile(ctx, uri)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w: %v", p.dir, checkpoint.ErrUnusable, err)
		}
		if state, err = safetensors.Decode(raw); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w: %s: %v", p.dir, checkpoint.ErrUnusable, checkpoint.StateFile, err)
		}
	}
	// The teacher's backbone comes from teacher_backbone.safetensors, or
	// from checkpoint.safetensors in checkpoints written before that file.
	prefix := "student."
	if p.weights == WeightsTeacher {
		prefix = checkpoint.TeacherPrefix(p.meta.Method)
	}
	ck, err := checkpoint.LoadBackbone(ctx, p.dir, checkpoint.Weights(p.weights))
	if err != nil {
		return nil, err
	}
	n.backbone = ck.Net
	if !p.o.WithHead {
		return n, nil
	}
	cfg, err := p.meta.ParseConfig()
	if err != nil {
		return nil, err
	}
	h, err := newHead(cfg, prefix+"head.", n.backbone.EmbedDim())
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w: the head of its config: %v", p.dir, checkpoint.ErrUnusable, err)
	}
	if err := loadEntries(h.Entries(), state, prefix+"head."); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w: %s %shead.*: %v", p.dir, checkpoint.ErrUnusable, checkpoint.StateFile, prefix, err)
	}
	n.head, n.headPrefix = h, prefix+"head."
	return n, nil
}

// newHead builds the head of cfg's method under prefix, shaped as the
// trainer builds it (trainer/dino.go, moco.go, swav.go): the weights are
// loaded over it.
func newHead(cfg *configs.Config, prefix string, inDim int) (headNet, error) {
	switch cfg.SSLMethod {
	case "DINO":
		h := cfg.DINOHead
		return ssl.NewDINOHead(prefix, ssl.DINOHeadConfig{InDim: inDim, HiddenDim: h.HiddenSize, BottleneckDim: h.BottleneckDim,
			OutDim: h.OutputDim, Layers: h.NumLayers, UseBN: h.UseBNInHead, NormLastLayer: h.NormLastLayer}, 0)
	case "MOCO":
		h := cfg.MoCo
		return ssl.NewMoCoHead(prefix, ssl.MoCoHeadConfig{InDim: inDim, HiddenDim: h.HiddenSize, OutDim: h.OutputDim,
			Layers: h.NumLayers, UseBN: h.UseBNInHead}, 0)
	case "SWAV":
		s := cfg.SwAV
		return ssl.NewSwAVHead(prefix, ssl.SwAVHeadConfig{InDim: inDim, HiddenDim: s.HiddenSize, OutDim: s.OutputDim,
			Layers: s.NumLayers, UseBN: s.UseBNInHead, Prototypes: s.NmbPrototypes}, 0)
	}
	return nil, fmt.Errorf("SSL_METHOD %q has no head here", cfg.SSLMethod)
}

// headHasBN says whether cfg's head has BatchNorm layers.
func headHasBN(cfg *configs.Config) bool {
	switch cfg.SSLMethod {
	case "DINO":
		return cfg.DINOHead.UseBNInHead && cfg.DINOHead.NumLayers > 1
	case "MOCO":
		return cfg.MoCo.UseBNInHead && cfg.MoCo.NumLayers > 1
	case "SWAV":
		return cfg.SwAV.UseBNInHead && cfg.SwAV.NumLayers > 1
	}
	return false
}

// under returns the tensors of f whose names start with prefix, without
// it.
func under(f *safetensors.File, prefix string) *safetensors.File {
	out := safetensors.NewFile()
	for _, name := range f.Names {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			out.Names = append(out.Names, rest)
			out.Tensors[rest] = f.Tensors[name]
		}
	}
	return out
}

// loadEntries copies the tensors under prefix in f into entries (whose
// names carry the prefix), strictly: every entry present with its shape
// and dtype, nothing else under the prefix.
func loadEntries(entries []nn.Entry, f *safetensors.File, prefix string) error {
	want := map[string]safetensors.Spec{}
	for _, e := range entries {
		s := safetensors.Spec{DType: safetensors.F32, Shape: e.Shape}
		if e.Count != nil {
			s.DType = safetensors.I64
		}
		want[strings.TrimPrefix(e.Name, prefix)] = s
	}
	sub := under(f, prefix)
	if err := sub.CheckStrict(want); err != nil {
		return err
	}
	for _, e := range entries {
		t := sub.Tensors[strings.TrimPrefix(e.Name, prefix)]
		if e.Count != nil {
			*e.Count = t.I64[0]
			continue
		}
		copy(e.F32, t.F32)
	}
	return nil
}

// countBN counts the BatchNorm layers among state-dict entries (one
// running_mean each).
func countBN(entries []nn.Entry) int {
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name, ".running_mean") {
			n++
		}
	}
	return n
}
