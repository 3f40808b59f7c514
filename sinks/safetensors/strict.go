package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// ErrMismatch is wrapped by MismatchError so callers can classify a strict
// load failure without inspecting the lists.
var ErrMismatch = errors.New("safetensors: tensors do not match the model")

// Spec is what a model expects of one tensor.
type Spec struct {
	DType DType
	Shape []int
}

// MismatchError lists everything that keeps a file from loading strictly
// into a model, like torch's load_state_dict(strict=True).
type MismatchError struct {
	Missing    []string // expected by the model, absent from the file
	Unexpected []string // in the file, unknown to the model
	Misshaped  []string // present in both, with a different shape or dtype ("name: file [..] F32, model [..] F32")
}

func (e *MismatchError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("missing %d: %s", len(e.Missing), strings.Join(e.Missing, ", ")))
	}
	if len(e.Unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("unexpected %d: %s", len(e.Unexpected), strings.Join(e.Unexpected, ", ")))
	}
	if len(e.Misshaped) > 0 {
		parts = append(parts, fmt.Sprintf("mis-shaped %d: %s", len(e.Misshaped), strings.Join(e.Misshaped, "; ")))
	}
	return "safetensors: tensors do not match the model: " + strings.Join(parts, "; ")
}

// Unwrap lets errors.Is(err, ErrMismatch) hold.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// CheckStrict compares the file's tensors with what a model expects and
// returns a *MismatchError listing every difference, or nil.
func (f *File) CheckStrict(want map[string]Spec) error {
	var e MismatchError
	for name, s := range want {
		t, ok := f.Tensors[name]
		if !ok {
			e.Missing = append(e.Missing, name)
			continue
		}
		if t.DType != s.DType || !equalShape(t.Shape, s.Shape) {
			e.Misshaped = append(e.Misshaped, fmt.Sprintf("%s: file %v %s, model %v %s", name, t.Shape, t.DType, s.Shape, s.DType))
		}
	}
	for _, name := range f.Names {
		if _, ok := want[name]; !ok {
			e.Unexpected = append(e.Unexpected, name)
		}
	}
	if len(e.Missing)+len(e.Unexpected)+len(e.Misshaped) == 0 {
		return nil
	}
	sort.Strings(e.Missing)
	sort.Strings(e.Misshaped)
	return &e
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// NameMap renames tensors between two naming schemes: Map takes a name in
// the source scheme to the target scheme. Prefix is put in front of every
// mapped name (e.g. "student.backbone." for the reference's DINO checkpoints).
type NameMap struct {
	Map    map[string]string
	Prefix string
}

// LoadNameMap reads a <model>_reference_names.json file ({"map": {torchvision
// name: reference name}}).
func LoadNameMap(path string) (NameMap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return NameMap{}, fmt.Errorf("name map: %w", err)
	}
	var doc struct {
		Map map[string]string `json:"map"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return NameMap{}, fmt.Errorf("name map %s: %w", path, err)
	}
	if len(doc.Map) == 0 {
		return NameMap{}, fmt.Errorf("name map %s: no \"map\" entries", path)
	}
	return NameMap{Map: doc.Map}, nil
}

// Inverse returns the map from target names back to source names, with the
// same prefix, or an error when two source names share a target.
func (m NameMap) Inverse() (NameMap, error) {
	inv := make(map[string]string, len(m.Map))
	for k, v := range m.Map {
		if prev, dup := inv[v]; dup {
			return NameMap{}, fmt.Errorf("name map: %q and %q both map to %q", prev, k, v)
		}
		inv[v] = k
	}
	return NameMap{Map: inv, Prefix: m.Prefix}, nil
}

// ToReference renames a file from the source scheme to the target scheme:
// name -> Prefix + Map[name]. Tensors without an entry (a classifier the
// reference backbone lacks) are dropped and returned in dropped.
func (m NameMap) ToReference(f *File) (out *File, dropped []string) {
	out = &File{Tensors: map[string]Tensor{}, Metadata: f.Metadata}
	for _, name := range f.Names {
		to, ok := m.Map[name]
		if !ok {
			dropped = append(dropped, name)
			continue
		}
		to = m.Prefix + to
		out.Names = append(out.Names, to)
		out.Tensors[to] = f.Tensors[name]
	}
	return out, dropped
}

// FromReference renames a file in the target scheme back to the source
// scheme: tensors whose name starts with Prefix and whose rest is a value of
// Map get the matching key. Other tensors (the projection head, the other
// network of a DINO checkpoint) are left out and listed in skipped, so that
// the strict check afterwards reports only what the backbone misses.
func (m NameMap) FromReference(f *File) (out *File, skipped []string, err error) {
	inv, err := m.Inverse()
	if err != nil {
		return nil, nil, err
	}
	out = &File{Tensors: map[string]Tensor{}, Metadata: f.Metadata}
	for _, name := range f.Names {
		rest, ok := strings.CutPrefix(name, m.Prefix)
		var to string
		if ok {
			to, ok = inv.Map[rest]
		}
		if !ok {
			skipped = append(skipped, name)
			continue
		}
		out.Names = append(out.Names, to)
		out.Tensors[to] = f.Tensors[name]
	}
	return out, skipped, nil
}
