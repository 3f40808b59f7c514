// Package features is the on-disk format of extracted feature vectors: the
// output of the evaluation pipeline's feature extraction and the input of
// the evaluation protocols.
//
// A run's output folder holds
//
//	<out>/features/part-00003-of-00008.safetensors   one file per group of images
//	<out>/features.json                              the index: files, counts, model, transform
//	<out>/dead-letter.jsonl                          inputs that gave no feature (sinks/deadletter)
//
// Each part is a safetensors file (sinks/safetensors) with exactly two
// tensors and the sample keys in its metadata:
//
//	"features"  F32 [n, D]   row i is the feature vector of sample i
//	"labels"    I64 [n]      class index of sample i, -1 when unlabelled
//	__metadata__ {"format": "sslight-features/v1",
//	              "keys": "[\"n01440764/x.JPEG\", …]"}   JSON array of the n source keys
//
// plus any further metadata strings the writer adds. Rows are sorted by key
// inside a part. safetensors was chosen over a pair of .npy files so that a
// part is one object that appears atomically, and because PyTorch users
// read it with safetensors.numpy.load_file (the keys come from
// safe_open(...).metadata()["keys"]).
//
// The index (Index, written last) lists every part with its sample count,
// byte size and CRC32C, so a reader never picks up a part of another run
// that happens to lie in the same folder, and can tell a damaged file.
package featurefile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/sinks/storage"
)

// Names inside a part.
const (
	FeaturesTensor = "features"
	LabelsTensor   = "labels"
	// KeysMetadata is the metadata entry holding the JSON array of keys.
	KeysMetadata = "keys"
	// FormatMetadata is the metadata entry naming the format; its value is
	// FormatName.
	FormatMetadata = "format"
	FormatName     = "sslight-features/v1"
)

// FilesDir is the folder of the parts under a run's output root.
const FilesDir = "features"

// ErrFormat is wrapped by every error about a malformed part or index.
var ErrFormat = errors.New("features: bad format")

// Part is the content of one feature file: Len() samples of dimension Dim.
type Part struct {
	// Dim is the feature dimension D (≥ 1).
	Dim int
	// X holds the features row-major: sample i is X[i*Dim : (i+1)*Dim].
	X []float32
	// Labels holds one class index per sample (-1: unlabelled).
	Labels []int64
	// Keys holds one source key per sample, unique within the part.
	Keys []string
	// Metadata holds extra strings stored with the part (the config hash,
	// the checkpoint); "format" and "keys" are reserved.
	Metadata map[string]string
}

// Len returns the number of samples.
func (p *Part) Len() int { return len(p.Keys) }

// Validate checks that the lengths agree, the keys are unique and every
// value is finite and every label ≥ -1.
func (p *Part) Validate() error {
	n := len(p.Keys)
	switch {
	case p.Dim < 1:
		return fmt.Errorf("%w: dimension %d, want at least 1", ErrFormat, p.Dim)
	case len(p.Labels) != n:
		return fmt.Errorf("%w: %d labels for %d keys", ErrFormat, len(p.Labels), n)
	case len(p.X) != n*p.Dim:
		return fmt.Errorf("%w: %d feature values for %d keys × dimension %d", ErrFormat, len(p.X), n, p.Dim)
	}
	for k := range p.Metadata {
		if k == KeysMetadata || k == FormatMetadata {
			return fmt.Errorf("%w: metadata entry %q is reserved", ErrFormat, k)
		}
	}
	seen := make(map[string]struct{}, n)
	for i, k := range p.Keys {
		if _, dup := seen[k]; dup {
			return fmt.Errorf("%w: key %q appears twice", ErrFormat, k)
		}
		seen[k] = struct{}{}
		if p.Labels[i] < -1 {
			return fmt.Errorf("%w: sample %q has label %d, want ≥ -1", ErrFormat, k, p.Labels[i])
		}
	}
	for i, v := range p.X {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: sample %q, component %d is %v", ErrFormat, p.Keys[i/p.Dim], i%p.Dim, v)
		}
	}
	return nil
}

// Encode writes p to w as a safetensors file.
func Encode(w io.Writer, p *Part) error {
	if err := p.Validate(); err != nil {
		return err
	}
	f := safetensors.NewFile()
	if err := f.Add(FeaturesTensor, safetensors.Tensor{DType: safetensors.F32, Shape: []int{p.Len(), p.Dim}, F32: p.X}); err != nil {
		return err
	}
	if err := f.Add(LabelsTensor, safetensors.Tensor{DType: safetensors.I64, Shape: []int{p.Len()}, I64: p.Labels}); err != nil {
		return err
	}
	keys, err := json.Marshal(p.Keys)
	if err != nil {
		return fmt.Errorf("features: encode keys: %w", err)
	}
	f.Metadata = map[string]string{FormatMetadata: FormatName, KeysMetadata: string(keys)}
	for k, v := range p.Metadata {
		f.Metadata[k] = v
	}
	return safetensors.Encode(w, f)
}

// Decode parses a part held in memory, strictly: exactly the two tensors
// with matching shapes, the format name and a keys array of the right
// length. name appears in errors.
func Decode(data []byte, name string) (*Part, error) {
	f, err := safetensors.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	bad := func(format string, args ...any) (*Part, error) {
		return nil, fmt.Errorf("%s: %w: %s", name, ErrFormat, fmt.Sprintf(format, args...))
	}
	if got := f.Metadata[FormatMetadata]; got != FormatName {
		return bad("metadata format %q, want %q", got, FormatName)
	}
	if len(f.Names) != 2 {
		return bad("%d tensors %v, want exactly %q and %q", len(f.Names), f.Names, FeaturesTensor, LabelsTensor)
	}
	x, ok := f.Tensors[FeaturesTensor]
	if !ok || x.DType != safetensors.F32 || len(x.Shape) != 2 || x.Shape[1] < 1 {
		return bad("want tensor %q F32 [n, D] with D ≥ 1, have %s %v", FeaturesTensor, x.DType, x.Shape)
	}
	l, ok := f.Tensors[LabelsTensor]
	if !ok || l.DType != safetensors.I64 || len(l.Shape) != 1 || l.Shape[0] != x.Shape[0] {
		return bad("want tensor %q I64 [%d], have %s %v", LabelsTensor, x.Shape[0], l.DType, l.Shape)
	}
	var keys []string
	if err := json.Unmarshal([]byte(f.Metadata[KeysMetadata]), &keys); err != nil {
		return bad("metadata %q is not a JSON array of strings: %v", KeysMetadata, err)
	}
	if len(keys) != x.Shape[0] {
		return bad("%d keys for %d feature rows", len(keys), x.Shape[0])
	}
	p := &Part{Dim: x.Shape[1], X: x.F32, Labels: l.I64, Keys: keys}
	for k, v := range f.Metadata {
		if k == FormatMetadata || k == KeysMetadata {
			continue
		}
		if p.Metadata == nil {
			p.Metadata = map[string]string{}
		}
		p.Metadata[k] = v
	}
	if p.X == nil {
		p.X = []float32{}
	}
	if p.Labels == nil {
		p.Labels = []int64{}
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// FileInfo describes one written part in the index.
type FileInfo struct {
	// Name is the part's file name under FilesDir.
	Name    string `json:"name"`
	Samples int    `json:"samples"`
	Bytes   int64  `json:"bytes"`
	// CRC32C is the base64 big-endian CRC32C of the file, as GCS reports it.
	CRC32C string `json:"crc32c"`
}

// PartName is the file name of part index of count: stable under retries
// and distinct for runs with another number of parts.
func PartName(index, count int) string {
	return fmt.Sprintf("part-%05d-of-%05d.safetensors", index, count)
}

// WritePart writes p atomically as part name under out's FilesDir and
// returns its FileInfo.
func WritePart(ctx context.Context, out, name string, p *Part) (FileInfo, error) {
	var buf bytes.Buffer
	if err := Encode(&buf, p); err != nil {
		return FileInfo{}, fmt.Errorf("features part %s: %w", name, err)
	}
	uri := storage.Join(out, FilesDir, name)
	if err := storage.WriteFile(ctx, uri, buf.Bytes()); err != nil {
		return FileInfo{}, fmt.Errorf("features part %s: %w", uri, err)
	}
	return FileInfo{Name: name, Samples: p.Len(), Bytes: int64(buf.Len()),
		CRC32C: storage.CRC32CBase64(storage.UpdateCRC32C(0, buf.Bytes()))}, nil
}

// ReadPart reads the part described by fi under out, checking its size and
// CRC32C against the index before decoding it.
func ReadPart(ctx context.Context, out string, fi FileInfo) (*Part, error) {
	uri := storage.Join(out, FilesDir, fi.Name)
	b, err := storage.ReadFile(ctx, uri)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != fi.Bytes {
		return nil, fmt.Errorf("%s: %w: %d bytes, the index says %d", uri, ErrFormat, len(b), fi.Bytes)
	}
	if crc := storage.CRC32CBase64(storage.UpdateCRC32C(0, b)); crc != fi.CRC32C {
		return nil, fmt.Errorf("%s: %w: CRC32C %s, the index says %s", uri, ErrFormat, crc, fi.CRC32C)
	}
	p, err := Decode(b, uri)
	if err != nil {
		return nil, err
	}
	if p.Len() != fi.Samples {
		return nil, fmt.Errorf("%s: %w: %d samples, the index says %d", uri, ErrFormat, p.Len(), fi.Samples)
	}
	return p, nil
}
