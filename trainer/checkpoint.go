package trainer

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/nn"
	"github.com/sslight-go/sslight/trainer/optim"
)

// prefixOptimizer prefixes the optimiser's state inside
// checkpoint.safetensors (optimizer.<parameter>/<buffer>); the package
// checkpoint documents the whole format.
const prefixOptimizer = "optimizer."

// addEntries copies state-dict entries into f under their names.
func addEntries(f *safetensors.File, entries []nn.Entry, rename func(string) string) error {
	for _, e := range entries {
		t := safetensors.Tensor{DType: safetensors.F32, Shape: append([]int{}, e.Shape...)}
		if e.Count != nil {
			t.DType, t.I64 = safetensors.I64, []int64{*e.Count}
		} else {
			t.F32 = append([]float32(nil), e.F32...)
		}
		if err := f.Add(rename(e.Name), t); err != nil {
			return err
		}
	}
	return nil
}

// loadEntries copies f's tensors into entries, strictly: every entry must
// be present with its shape, and (when strict) f may hold nothing else
// under the entries' prefixes.
func loadEntries(f *safetensors.File, entries []nn.Entry) error {
	var missing, shaped []string
	for _, e := range entries {
		t, ok := f.Tensors[e.Name]
		if !ok {
			missing = append(missing, e.Name)
			continue
		}
		if fmt.Sprint(t.Shape) != fmt.Sprint(e.Shape) || (e.Count != nil) != (t.DType == safetensors.I64) {
			shaped = append(shaped, fmt.Sprintf("%s %s%v (model %v)", e.Name, t.DType, t.Shape, e.Shape))
		}
	}
	if len(missing)+len(shaped) > 0 {
		return fmt.Errorf("checkpoint does not match the model: missing %v, mis-shaped %v", missing, shaped)
	}
	for _, e := range entries {
		t := f.Tensors[e.Name]
		if e.Count != nil {
			*e.Count = t.I64[0]
		} else {
			copy(e.F32, t.F32)
		}
	}
	return nil
}

func identity(s string) string { return s }

// writeSafetensors encodes f to uri atomically.
func writeSafetensors(ctx context.Context, uri string, f *safetensors.File) error {
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, f); err != nil {
		return fmt.Errorf("encode %s: %w", uri, err)
	}
	return storage.WriteFile(ctx, uri, buf.Bytes())
}

// saveCheckpoint writes the networks, the optimiser and loss state, the
// student's and the teacher's backbones and meta.
func saveCheckpoint(ctx context.Context, out string, m method, meta checkpoint.Meta) (string, error) {
	dir := checkpoint.Dir(out, meta.Step)
	ts := m.state()
	f := safetensors.NewFile()
	if err := addEntries(f, ts.entries, identity); err != nil {
		return "", err
	}
	st := ts.opt.State()
	keys := make([]string, 0, len(st.Buffers))
	for k := range st.Buffers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	shapes := map[string][]int{}
	for _, p := range ts.optimised {
		shapes[p.Name] = p.Shape
	}
	for _, k := range keys {
		name, _, _ := optim.SplitStateKey(k)
		if err := f.Add(prefixOptimizer+k, safetensors.Tensor{DType: safetensors.F32, Shape: shapes[name], F32: st.Buffers[k]}); err != nil {
			return "", err
		}
	}
	steps := make([]string, 0, len(st.Steps))
	for name := range st.Steps {
		steps = append(steps, name)
	}
	sort.Strings(steps)
	for _, name := range steps {
		if err := f.Add(prefixOptimizer+optim.StateKey(name, "step"), safetensors.Tensor{DType: safetensors.I64, Shape: []int{}, I64: []int64{st.Steps[name]}}); err != nil {
			return "", err
		}
	}
	if err := m.saveLossState(f); err != nil {
		return "", fmt.Errorf("loss state: %w", err)
	}
	f.Metadata = map[string]string{"format": "pt", "config_hash": meta.ConfigHash, "arch": meta.Arch, "method": meta.Method}
	if err := writeSafetensors(ctx, storage.Join(dir, checkpoint.StateFile), f); err != nil {
		return "", err
	}
	// The backbones under torchvision/timm names, for evaluation and
	// PyTorch: the student's, and the teacher's where the method has one.
	backbones := []struct {
		file    string
		weights checkpoint.Weights
		net     backbone.Backbone
	}{{checkpoint.BackboneFile, checkpoint.Student, ts.backbone}, {checkpoint.TeacherBackboneFile, checkpoint.Teacher, ts.teacher}}
	for _, b := range backbones {
		if b.net == nil {
			continue
		}
		bf := safetensors.NewFile()
		if err := addEntries(bf, b.net.Entries(), identity); err != nil {
			return "", err
		}
		bf.Metadata = map[string]string{"format": "pt", "arch": meta.Arch, "config_hash": meta.ConfigHash, "weights": string(b.weights)}
		if err := writeSafetensors(ctx, storage.Join(dir, b.file), bf); err != nil {
			return "", err
		}
	}
	// meta.json last: its presence marks the checkpoint complete.
	if err := jsonfile.Write(ctx, storage.Join(dir, checkpoint.MetaFile), meta); err != nil {
		return "", err
	}
	return dir, nil
}

// loadCheckpoint restores the networks, the optimiser and loss state from
// dir.
func loadCheckpoint(ctx context.Context, dir string, m method) error {
	raw, err := storage.ReadFile(ctx, storage.Join(dir, checkpoint.StateFile))
	if err != nil {
		return err
	}
	f, err := safetensors.Decode(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if err := loadEntries(f, m.state().entries); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	st := optim.State{Buffers: map[string][]float32{}}
	for _, name := range f.Names {
		if !strings.HasPrefix(name, prefixOptimizer) {
			continue
		}
		k := strings.TrimPrefix(name, prefixOptimizer)
		t := f.Tensors[name]
		if p, b, ok := optim.SplitStateKey(k); ok && b == "step" && t.DType == safetensors.I64 {
			if st.Steps == nil {
				st.Steps = map[string]int64{}
			}
			st.Steps[p] = t.I64[0]
			continue
		}
		st.Buffers[k] = t.F32
	}
	if err := m.state().opt.LoadState(st); err != nil {
		return fmt.Errorf("%s: optimizer state: %w", dir, err)
	}
	if err := m.loadLossState(f); err != nil {
		return fmt.Errorf("%s: loss state: %w", dir, err)
	}
	return nil
}
