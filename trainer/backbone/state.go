package backbone

import (
	"fmt"

	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/nn"
)

// StateDict copies the backbone's tensors into a safetensors file in
// PyTorch's state-dict order (BatchNorm's num_batches_tracked as I64).
func StateDict(b Backbone) *safetensors.File {
	f := safetensors.NewFile()
	for _, e := range b.Entries() {
		t := safetensors.Tensor{DType: safetensors.F32, Shape: append([]int{}, e.Shape...)}
		if e.Count != nil {
			t.DType, t.I64 = safetensors.I64, []int64{*e.Count}
		} else {
			t.F32 = append([]float32(nil), e.F32...)
		}
		if err := f.Add(e.Name, t); err != nil {
			// Entries come from the model itself: a clash is a bug here.
			panic(fmt.Sprintf("backbone: state dict of %s: %v", b.Arch(), err))
		}
	}
	f.Metadata = map[string]string{"format": "pt", "arch": b.Arch()}
	return f
}

// Specs returns what a strict load expects: every entry's dtype and shape.
func Specs(b Backbone) map[string]safetensors.Spec {
	m := map[string]safetensors.Spec{}
	for _, e := range b.Entries() {
		s := safetensors.Spec{DType: safetensors.F32, Shape: e.Shape}
		if e.Count != nil {
			s.DType = safetensors.I64
		}
		m[e.Name] = s
	}
	return m
}

// LoadStateDict copies a file's tensors into the backbone, strictly like
// torch's load_state_dict(strict=True): missing, unexpected or mis-shaped
// tensors give a *safetensors.MismatchError listing all of them, and the
// backbone is left untouched.
func LoadStateDict(b Backbone, f *safetensors.File) error {
	if err := f.CheckStrict(Specs(b)); err != nil {
		return fmt.Errorf("load %s: %w", b.Arch(), err)
	}
	for _, e := range b.Entries() {
		t := f.Tensors[e.Name]
		if e.Count != nil {
			*e.Count = t.I64[0]
			continue
		}
		copy(e.F32, t.F32)
	}
	return nil
}

// BNBuffers returns the BatchNorm running statistics entries
// (running_mean, running_var, num_batches_tracked) of a backbone.
func BNBuffers(b Backbone) []nn.Entry {
	var out []nn.Entry
	for _, e := range b.Entries() {
		if e.Param == nil {
			out = append(out, e)
		}
	}
	return out
}
