// Package safetensors reads and writes the safetensors checkpoint format
// (https://github.com/huggingface/safetensors) for the two element types
// sslight's checkpoints hold: F32 (parameters, BatchNorm running statistics)
// and I64 (BatchNorm num_batches_tracked).
//
// Layout: an 8-byte little-endian header length n, then n bytes of JSON
//
//	{"name": {"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [0, 37632]}, ...,
//	 "__metadata__": {"format": "pt"}}
//
// padded with spaces to a multiple of 8, then the tensors' little-endian
// bytes. Offsets are relative to the end of the header. The writer stores
// tensors contiguously in the order given (PyTorch's state-dict order), so
// files load with strict=True into the matching torch module. The reader is
// strict: overlapping, gapped or out-of-range offsets, unknown dtypes, shapes
// that disagree with the byte count and duplicate names are errors wrapping
// ErrFormat.
package safetensors

import (
	"errors"
	"fmt"
)

// ErrFormat is wrapped by every error about malformed safetensors bytes.
var ErrFormat = errors.New("safetensors: bad format")

// DType names an element type as the header spells it.
type DType string

// The element types this package reads and writes.
const (
	F32 DType = "F32" // little-endian IEEE float32
	I64 DType = "I64" // little-endian int64
)

// ItemSize returns the size of one element in bytes, or 0 for an unsupported
// type.
func (d DType) ItemSize() int {
	switch d {
	case F32:
		return 4
	case I64:
		return 8
	}
	return 0
}

// Tensor is one named array. Exactly one of F32 and I64 holds the data,
// according to DType, in C (row-major) order.
type Tensor struct {
	DType DType
	Shape []int
	F32   []float32
	I64   []int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// len returns the number of stored elements.
func (t Tensor) len() int {
	if t.DType == I64 {
		return len(t.I64)
	}
	return len(t.F32)
}

// File is the content of one .safetensors file. Names keeps the tensors'
// order; Tensors maps every name in Names to its tensor.
type File struct {
	Names    []string
	Tensors  map[string]Tensor
	Metadata map[string]string
}

// NewFile returns an empty file ready for Add.
func NewFile() *File {
	return &File{Tensors: map[string]Tensor{}}
}

// Add appends a tensor under name, keeping insertion order. It fails when the
// name is taken or the data length disagrees with the shape.
func (f *File) Add(name string, t Tensor) error {
	if _, dup := f.Tensors[name]; dup {
		return fmt.Errorf("safetensors: add %q: name already present", name)
	}
	if err := checkTensor(t); err != nil {
		return fmt.Errorf("safetensors: add %q: %w", name, err)
	}
	if f.Tensors == nil {
		f.Tensors = map[string]Tensor{}
	}
	f.Names = append(f.Names, name)
	f.Tensors[name] = t
	return nil
}

func checkTensor(t Tensor) error {
	if t.DType.ItemSize() == 0 {
		return fmt.Errorf("unsupported dtype %q", t.DType)
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in shape %v", t.Shape)
		}
	}
	if t.NumElements() != t.len() {
		return fmt.Errorf("shape %v needs %d elements, have %d", t.Shape, t.NumElements(), t.len())
	}
	return nil
}
