package npy

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
)

const (
	magic = "\x93NUMPY"
	// align is the data alignment numpy uses since 1.9 (ARRAY_ALIGN).
	align = 64
	// growthAxisMaxDigits is numpy's GROWTH_AXIS_MAX_DIGITS: the header keeps
	// room for the growth axis (the first, in C order) to reach 21 digits,
	// so a file can be appended to in place. We match it byte for byte.
	growthAxisMaxDigits = 21
	// prefixLenV1 is magic + version (2) + uint16 header length.
	prefixLenV1 = len(magic) + 2 + 2
)

// AppendHeader appends the version 1.0 header numpy.save would write for h
// to dst. The data that follows must be DataLen bytes in C (or, if
// h.FortranOrder, Fortran) order.
func AppendHeader(dst []byte, h Header) ([]byte, error) {
	if h.DType.ItemSize() == 0 {
		return dst, fmt.Errorf("%w: dtype %q", ErrUnsupported, string(h.DType))
	}
	if len(h.Shape) > MaxDims {
		return dst, fmt.Errorf("%w: %d dimensions, at most %d", ErrUnsupported, len(h.Shape), MaxDims)
	}
	if _, err := h.DataLen(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, magic...)
	dst = append(dst, 1, 0, 0, 0) // version 1.0; length patched below
	dict := len(dst)
	dst = append(dst, "{'descr': '"...)
	dst = append(dst, h.DType...)
	dst = append(dst, "', 'fortran_order': "...)
	if h.FortranOrder {
		dst = append(dst, "True"...)
	} else {
		dst = append(dst, "False"...)
	}
	dst = append(dst, ", 'shape': ("...)
	for i, d := range h.Shape {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = strconv.AppendInt(dst, int64(d), 10)
	}
	if len(h.Shape) == 1 {
		dst = append(dst, ',') // a Python 1-tuple
	}
	dst = append(dst, "), }"...)
	if len(h.Shape) > 0 {
		axis := 0
		if h.FortranOrder {
			axis = len(h.Shape) - 1
		}
		dst = appendSpaces(dst, growthAxisMaxDigits-digits(h.Shape[axis]))
	}
	// numpy: padlen = 64 - (prefix + len(dict) + 1) % 64, which is never 0.
	used := prefixLenV1 + (len(dst) - dict) + 1
	dst = appendSpaces(dst, align-used%align)
	dst = append(dst, '\n')
	hlen := len(dst) - dict
	if hlen > math.MaxUint16 {
		return dst[:start], fmt.Errorf("%w: header of %d bytes needs format 2.0", ErrUnsupported, hlen)
	}
	binary.LittleEndian.PutUint16(dst[dict-2:dict], uint16(hlen))
	return dst, nil
}

func appendSpaces(dst []byte, n int) []byte {
	for ; n > 0; n-- {
		dst = append(dst, ' ')
	}
	return dst
}

// digits returns len(repr(d)) for a non-negative int.
func digits(d int) int {
	n := 1
	for d >= 10 {
		d /= 10
		n++
	}
	return n
}

// WriteUint8 writes a C-ordered uint8 array of the given shape as a .npy
// file. len(data) must equal the product of shape.
func WriteUint8(w io.Writer, shape []int, data []uint8) error {
	h := Header{DType: Uint8, Shape: shape}
	if err := checkLen(h, len(data)); err != nil {
		return err
	}
	hdr, err := AppendHeader(make([]byte, 0, 128), h)
	if err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// WriteFloat32 writes a C-ordered float32 array of the given shape as a
// little-endian '<f4' .npy file. len(data) must equal the product of shape.
func WriteFloat32(w io.Writer, shape []int, data []float32) error {
	h := Header{DType: Float32, Shape: shape}
	if err := checkLen(h, len(data)); err != nil {
		return err
	}
	// Header and data share one fixed buffer, flushed when full, so the
	// conversion to little-endian bytes allocates nothing per element.
	buf := make([]byte, 0, 32<<10)
	buf, err := AppendHeader(buf, h)
	if err != nil {
		return err
	}
	for _, v := range data {
		if len(buf)+4 > cap(buf) {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	_, err = w.Write(buf)
	return err
}

func checkLen(h Header, n int) error {
	want, err := h.NumElements()
	if err != nil {
		return err
	}
	if want != n {
		return fmt.Errorf("npy: shape %v holds %d elements, data has %d", h.Shape, want, n)
	}
	return nil
}
