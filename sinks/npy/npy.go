// Package npy writes and reads NumPy's .npy array format
// (https://numpy.org/devdocs/reference/generated/numpy.lib.format.html).
//
// The writer produces exactly the bytes numpy.save writes for a C-ordered
// array: version 1.0, the header dict
//
//	{'descr': '|u1', 'fortran_order': False, 'shape': (2, 224, 224, 3), }
//
// followed by the spare spaces numpy leaves for growing the first axis, then
// space padding and a newline so the data starts at a multiple of 64 bytes.
// Two element types are supported: uint8 ('|u1', image crops) and
// little-endian float32 ('<f4', features).
//
// The reader is strict: it accepts versions 1.0, 2.0 and 3.0 with a header
// dict holding exactly the keys descr, fortran_order and shape, written as a
// Python literal the way numpy writes it, and rejects everything else with an
// error wrapping ErrFormat or ErrUnsupported.
package npy

import (
	"errors"
	"fmt"
	"math"
)

// DType is a numpy type descriptor string ('descr' in the header).
type DType string

// The element types this package reads and writes.
const (
	Uint8   DType = "|u1" // numpy.uint8
	Float32 DType = "<f4" // little-endian numpy.float32
)

// ItemSize returns the size of one element in bytes, or 0 for an unsupported
// type.
func (d DType) ItemSize() int {
	switch d {
	case Uint8:
		return 1
	case Float32:
		return 4
	}
	return 0
}

// Errors returned by this package; match them with errors.Is.
var (
	// ErrFormat: the bytes are not a well-formed .npy file.
	ErrFormat = errors.New("npy: malformed")
	// ErrUnsupported: a well-formed file this package does not handle
	// (another dtype, Fortran order where C order is needed).
	ErrUnsupported = errors.New("npy: unsupported")
)

// Limits that keep a hostile header from costing much: numpy itself refuses
// headers above 10000 bytes by default, and NPY_MAXDIMS is 64.
const (
	MaxHeaderLen = 1 << 16
	MaxDims      = 64
)

// Header describes the array stored after the header.
type Header struct {
	DType        DType
	FortranOrder bool
	Shape        []int
}

// NumElements returns the product of the shape (1 for a scalar), or an error
// if it overflows an int or a dimension is negative.
func (h Header) NumElements() (int, error) {
	n := 1
	for _, d := range h.Shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d in shape %v", ErrFormat, d, h.Shape)
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, fmt.Errorf("%w: shape %v overflows", ErrFormat, h.Shape)
		}
		n *= d
	}
	return n, nil
}

// DataLen returns the number of data bytes that follow the header.
func (h Header) DataLen() (int64, error) {
	size := h.DType.ItemSize()
	if size == 0 {
		return 0, fmt.Errorf("%w: dtype %q", ErrUnsupported, string(h.DType))
	}
	n, err := h.NumElements()
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64/size {
		return 0, fmt.Errorf("%w: shape %v overflows", ErrFormat, h.Shape)
	}
	return int64(n) * int64(size), nil
}
