package export

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// writeSafetensors writes the backbone under its torchvision/timm names
// (backbone.StateDict: loads with strict=True into the matching torch
// module) and, with the head, the head's tensors under "head." with the
// reference's names; __metadata__ carries the architecture (arch, width,
// small_image_stem, patch_size) so python/sslight_torch.py can build the
// module from the file alone.
func writeSafetensors(ctx context.Context, p *job, nets *networks) (*Summary, error) {
	f := backbone.StateDict(nets.backbone)
	bns := countBN(nets.backbone.Entries())
	if nets.head != nil {
		entries := nets.head.Entries()
		bns += countBN(entries)
		for _, e := range entries {
			t := safetensors.Tensor{DType: safetensors.F32, Shape: append([]int{}, e.Shape...)}
			if e.Count != nil {
				t.DType, t.I64 = safetensors.I64, []int64{*e.Count}
			} else {
				t.F32 = append([]float32(nil), e.F32...)
			}
			if err := f.Add("head."+strings.TrimPrefix(e.Name, nets.headPrefix), t); err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
		}
	}
	for k, v := range metadata(p, nets) {
		f.Metadata[k] = v
	}
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, f); err != nil {
		return nil, fmt.Errorf("export: encode %s: %w", p.o.Out, err)
	}
	if err := storage.WriteFile(ctx, p.o.Out, buf.Bytes()); err != nil {
		return nil, fmt.Errorf("export: write %s: %w", p.o.Out, err)
	}
	return &Summary{Out: p.o.Out, Format: FormatSafetensors, Bytes: int64(buf.Len()), Checkpoint: p.dir, Step: p.meta.Step,
		Method: p.meta.Method, Arch: checkpoint.Describe(p.meta.Arch, p.meta.BackboneOptions()), Weights: p.weights,
		WithHead: nets.head != nil, BatchNorms: bns, Tensors: len(f.Names), Metadata: f.Metadata, Notes: p.notes}, nil
}
