package npy

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzParseHeader: any input either fails with ErrFormat/ErrUnsupported or
// yields a header that AppendHeader re-encodes to something that parses back
// to the same header; ParseHeader and ReadHeader always agree.
func FuzzParseHeader(f *testing.F) {
	for _, h := range []Header{
		{DType: Uint8, Shape: []int{2, 224, 224, 3}},
		{DType: Float32, Shape: []int{1000}},
		{DType: Uint8, FortranOrder: true, Shape: []int{}},
	} {
		b, _ := AppendHeader(nil, h)
		f.Add(b)
	}
	f.Add([]byte("\x93NUMPY\x02\x00\x3c\x00\x00\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4,), }\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		rh, rn, rerr := ReadHeader(bytes.NewReader(b))
		if (err == nil) != (rerr == nil) || n != rn || !reflect.DeepEqual(h, rh) {
			t.Fatalf("ParseHeader = %+v, %d, %v but ReadHeader = %+v, %d, %v", h, n, err, rh, rn, rerr)
		}
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if n > len(b) {
			t.Fatalf("header length %d beyond input %d", n, len(b))
		}
		enc, err := AppendHeader(nil, h)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", h, err)
		}
		back, m, err := ParseHeader(enc)
		if err != nil || m != len(enc) || !reflect.DeepEqual(back, h) {
			t.Fatalf("re-encoded header parses to %+v, %d, %v; want %+v", back, m, err, h)
		}
	})
}

// FuzzReadUint8: reading never panics, and what it returns is consistent:
// the data length matches the shape.
func FuzzReadUint8(f *testing.F) {
	var buf bytes.Buffer
	WriteUint8(&buf, []int{2, 2, 3}, []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		shape, data, err := ReadUint8(bytes.NewReader(b), nil)
		if err != nil {
			return
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		if len(data) != n {
			t.Fatalf("shape %v but %d bytes", shape, len(data))
		}
	})
}
