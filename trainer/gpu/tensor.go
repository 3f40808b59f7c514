package gpu

import (
	"fmt"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// Tensor is a float32 array in a backend's memory, row-major (NCHW for
// images, [B, T, D] for tokens).
type Tensor struct {
	Shape []int
	blk   *Block
}

// Len is the number of elements.
func (t *Tensor) Len() int { return numel(t.Shape) }

// Ptr is the tensor's device address (a backend-private handle on the CPU
// backend).
func (t *Tensor) Ptr() cuda.DevPtr { return t.blk.Ptr }

// Bytes is the tensor's size in bytes.
func (t *Tensor) Bytes() int { return 4 * t.Len() }

func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v", t.Shape) }

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// maxElements bounds a tensor's size: the kernels index with 32-bit ints.
const maxElements = 1<<31 - 1

// newTensor allocates a tensor of shape from a on stream s.
func newTensor(a *Allocator, s cuda.Stream, shape []int) (*Tensor, error) {
	n := numel(shape)
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("gpu: tensor shape %v has a negative dimension", shape)
		}
	}
	if n > maxElements {
		return nil, fmt.Errorf("gpu: tensor %v has %d elements, more than 32-bit indexing allows", shape, n)
	}
	b, err := a.Alloc(max(4*n, 4), s)
	if err != nil {
		return nil, fmt.Errorf("gpu: tensor %v: %w", shape, err)
	}
	return &Tensor{Shape: append([]int(nil), shape...), blk: b}, nil
}

func sameShape(a, b []int) bool {
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
