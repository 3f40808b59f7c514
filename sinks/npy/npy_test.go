package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

// header builds a version 1.0 header from its parts as the .npy spec lays
// it out: magic, version, little-endian uint16 length, text. The test cases
// below count the text and padding by hand from the spec (and numpy's
// format.py), independently of AppendHeader.
func header(hlen uint16, dict string, spaces int) string {
	var l [2]byte
	binary.LittleEndian.PutUint16(l[:], hlen)
	return "\x93NUMPY\x01\x00" + string(l[:]) + dict + strings.Repeat(" ", spaces) + "\n"
}

func TestAppendHeaderMatchesSpec(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		want string
	}{
		{
			// dict is 69 chars; 21-1=20 growth spaces -> 89; +1 newline -> 90;
			// 10+90=100, pad 64-36=28 -> header 118, file offset 128.
			name: "global crops uint8 (2,224,224,3)",
			h:    Header{DType: Uint8, Shape: []int{2, 224, 224, 3}},
			want: header(118, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 224, 224, 3), }", 20+28),
		},
		{
			name: "local crops uint8 (6,128,128,3)",
			h:    Header{DType: Uint8, Shape: []int{6, 128, 128, 3}},
			want: header(118, "{'descr': '|u1', 'fortran_order': False, 'shape': (6, 128, 128, 3), }", 20+28),
		},
		{
			// dict 60; growth 21-4=17 -> 77; +1 -> 78; 88 % 64 = 24, pad 40.
			name: "features float32 (1000,)",
			h:    Header{DType: Float32, Shape: []int{1000}},
			want: header(118, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }", 17+40),
		},
		{
			// dict 55, no growth axis; 56+10=66, pad 62.
			name: "scalar",
			h:    Header{DType: Uint8, Shape: []int{}},
			want: header(118, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }", 62),
		},
		{
			// dict 58; growth on the last axis: 21-1=20 -> 78; +1 -> 79; 89 % 64
			// = 25, pad 39.
			name: "fortran order grows the last axis",
			h:    Header{DType: Uint8, FortranOrder: true, Shape: []int{3, 4}},
			want: header(118, "{'descr': '|u1', 'fortran_order': True, 'shape': (3, 4), }", 20+39),
		},
		{
			// dict 97 (the shape tuple is 44 chars); growth
			// 21-1=20 -> 117; +1 -> 118; 10+118 = 128 is already aligned, and
			// numpy then pads a full 64, never 0: header 182, offset 192.
			name: "already aligned pads 64",
			h:    Header{DType: Uint8, Shape: []int{0, 100, 100, 100, 100, 100, 10, 10, 10, 10}},
			want: header(182, "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 100, 100, 100, 100, 100, 10, 10, 10, 10), }", 20+64),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendHeader(nil, tt.h)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("header mismatch\n got %q\nwant %q", got, tt.want)
			}
			if len(got)%64 != 0 {
				t.Errorf("data offset %d is not a multiple of 64", len(got))
			}
			back, n, err := ParseHeader(got)
			if err != nil {
				t.Fatalf("parse own header: %v", err)
			}
			if n != len(got) || !reflect.DeepEqual(back, tt.h) {
				t.Errorf("ParseHeader = %+v, %d; want %+v, %d", back, n, tt.h, len(got))
			}
		})
	}
}

func TestAppendHeaderRejects(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		want error
	}{
		{"unknown dtype", Header{DType: "<i8", Shape: []int{1}}, ErrUnsupported},
		{"negative dim", Header{DType: Uint8, Shape: []int{-1}}, ErrFormat},
		{"overflow", Header{DType: Float32, Shape: []int{math.MaxInt / 2, 3}}, ErrFormat},
		{"too many dims", Header{DType: Uint8, Shape: make([]int, MaxDims+1)}, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := AppendHeader(dst, tt.h)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if string(got) != "keep" {
				t.Errorf("dst modified on error: %q", got)
			}
		})
	}
}

func TestParseHeaderAccepts(t *testing.T) {
	v2 := func(dict string) string {
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], uint32(len(dict)))
		return "\x93NUMPY\x02\x00" + string(l[:]) + dict
	}
	v3 := func(dict string) string {
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], uint32(len(dict)))
		return "\x93NUMPY\x03\x00" + string(l[:]) + dict
	}
	v1 := func(dict string) string {
		var l [2]byte
		binary.LittleEndian.PutUint16(l[:], uint16(len(dict)))
		return "\x93NUMPY\x01\x00" + string(l[:]) + dict
	}
	tests := []struct {
		name string
		in   string
		want Header
	}{
		{"old numpy, 16-byte aligned, no growth spaces",
			v1("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }    \n"),
			Header{DType: Uint8, Shape: []int{2, 3}}},
		{"keys in another order, double quotes, no trailing comma",
			v1(`{"shape": (4,), "descr": "<f4", "fortran_order": True}` + "\n"),
			Header{DType: Float32, FortranOrder: true, Shape: []int{4}}},
		{"trailing comma in a 2-tuple",
			v1("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3,), }\n"),
			Header{DType: Uint8, Shape: []int{2, 3}}},
		{"zero-size dimension",
			v1("{'descr': '|u1', 'fortran_order': False, 'shape': (0, 5), }\n"),
			Header{DType: Uint8, Shape: []int{0, 5}}},
		{"version 2.0",
			v2("{'descr': '|u1', 'fortran_order': False, 'shape': (7,), }\n"),
			Header{DType: Uint8, Shape: []int{7}}},
		{"version 3.0",
			v3("{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n"),
			Header{DType: Float32, Shape: []int{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.in + "DATA")
			h, n, err := ParseHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(tt.in) {
				t.Errorf("header length %d, want %d", n, len(tt.in))
			}
			if !reflect.DeepEqual(h, tt.want) {
				t.Errorf("got %+v, want %+v", h, tt.want)
			}
			rh, rn, err := ReadHeader(bytes.NewReader(b))
			if err != nil || rn != n || !reflect.DeepEqual(rh, h) {
				t.Errorf("ReadHeader = %+v, %d, %v; ParseHeader gave %+v, %d", rh, rn, err, h, n)
			}
		})
	}
}

func TestParseHeaderRejects(t *testing.T) {
	v1 := func(dict string) string {
		var l [2]byte
		binary.LittleEndian.PutUint16(l[:], uint16(len(dict)))
		return "\x93NUMPY\x01\x00" + string(l[:]) + dict
	}
	ok := "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }\n"
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrFormat},
		{"bad magic", "\x93NUMPZ\x01\x00" + v1(ok)[8:], ErrFormat},
		{"version 1.1", "\x93NUMPY\x01\x01" + v1(ok)[8:], ErrUnsupported},
		{"version 4.0", "\x93NUMPY\x04\x00" + v1(ok)[8:], ErrUnsupported},
		{"length field cut", "\x93NUMPY\x01\x00\x10", ErrFormat},
		{"header cut short", v1(ok)[:40], ErrFormat},
		{"no newline", v1(strings.TrimSuffix(ok, "\n") + " "), ErrFormat},
		{"not a dict", v1("['descr', '|u1']\n"), ErrFormat},
		{"missing shape", v1("{'descr': '|u1', 'fortran_order': False, }\n"), ErrFormat},
		{"duplicate descr", v1("{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (1,), }\n"), ErrFormat},
		{"unknown key", v1("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), 'x': 1, }\n"), ErrFormat},
		{"unsupported dtype", v1("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }\n"), ErrUnsupported},
		{"structured dtype", v1("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n"), ErrFormat},
		{"fortran_order not a bool", v1("{'descr': '|u1', 'fortran_order': 0, 'shape': (1,), }\n"), ErrFormat},
		{"one-tuple without comma", v1("{'descr': '|u1', 'fortran_order': False, 'shape': (5), }\n"), ErrFormat},
		{"shape a list", v1("{'descr': '|u1', 'fortran_order': False, 'shape': [5], }\n"), ErrFormat},
		{"negative dim", v1("{'descr': '|u1', 'fortran_order': False, 'shape': (-5,), }\n"), ErrFormat},
		{"leading zero", v1("{'descr': '|u1', 'fortran_order': False, 'shape': (05,), }\n"), ErrFormat},
		{"lone comma", v1("{'descr': '|u1', 'fortran_order': False, 'shape': (,), }\n"), ErrFormat},
		{"dim overflows int", v1("{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999,), }\n"), ErrFormat},
		{"product overflows", v1("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }\n"), ErrFormat},
		{"text after dict", v1("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), } x\n"), ErrFormat},
		{"escape in string", v1("{'descr': '|u\\1', 'fortran_order': False, 'shape': (1,), }\n"), ErrFormat},
		{"python 2 long", v1("{'descr': '|u1', 'fortran_order': False, 'shape': (5L,), }\n"), ErrFormat},
		{"tab whitespace", v1("{'descr':\t'|u1', 'fortran_order': False, 'shape': (1,), }\n"), ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseHeader([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseHeader err = %v, want %v", err, tt.want)
			}
			_, _, err = ReadHeader(strings.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadHeader err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestUint8RoundTrip(t *testing.T) {
	shape := []int{2, 3, 4, 3}
	data := make([]uint8, 2*3*4*3)
	for i := range data {
		data[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := WriteUint8(&buf, shape, data); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 128+len(data) {
		t.Fatalf("file is %d bytes, want 128 header + %d data", buf.Len(), len(data))
	}
	if !bytes.Equal(buf.Bytes()[128:], data) {
		t.Fatal("data bytes differ from the input")
	}
	gotShape, got, err := ReadUint8(&buf, make([]uint8, 0, 1000))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotShape, shape) || !bytes.Equal(got, data) {
		t.Errorf("round trip: shape %v data %v", gotShape, got[:8])
	}
}

func TestFloat32LittleEndian(t *testing.T) {
	// IEEE 754 single encodings, written out by hand.
	data := []float32{1, -2, 0.5, float32(math.Inf(1))}
	want := []byte{
		0x00, 0x00, 0x80, 0x3f, // 1.0 = 0x3f800000
		0x00, 0x00, 0x00, 0xc0, // -2.0 = 0xc0000000
		0x00, 0x00, 0x00, 0x3f, // 0.5 = 0x3f000000
		0x00, 0x00, 0x80, 0x7f, // +Inf = 0x7f800000
	}
	var buf bytes.Buffer
	if err := WriteFloat32(&buf, []int{2, 2}, data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes()[128:], want) {
		t.Fatalf("data = % x, want % x", buf.Bytes()[128:], want)
	}
	shape, got, err := ReadFloat32(bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(shape, []int{2, 2}) || !reflect.DeepEqual(got, data) {
		t.Errorf("got %v %v", shape, got)
	}
}

func TestFloat32LargerThanChunk(t *testing.T) {
	data := make([]float32, 20000) // spans several 16/32 KiB chunks
	for i := range data {
		data[i] = float32(i) / 3
	}
	var buf bytes.Buffer
	if err := WriteFloat32(&buf, []int{100, 200}, data); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()[128:]
	for i, v := range data {
		if math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])) != v {
			t.Fatalf("element %d encoded wrongly", i)
		}
	}
	_, got, err := ReadFloat32(&buf, nil)
	if err != nil || !reflect.DeepEqual(got, data) {
		t.Fatalf("round trip failed: %v", err)
	}
}

func TestWriteLengthMismatch(t *testing.T) {
	if err := WriteUint8(io.Discard, []int{2, 2}, make([]uint8, 3)); err == nil {
		t.Error("WriteUint8 accepted 3 bytes for shape (2, 2)")
	}
	if err := WriteFloat32(io.Discard, []int{5}, make([]float32, 4)); err == nil {
		t.Error("WriteFloat32 accepted 4 values for shape (5,)")
	}
}

func TestReadRejectsWrongKind(t *testing.T) {
	var f32, u8, fortran bytes.Buffer
	WriteFloat32(&f32, []int{1}, []float32{1})
	WriteUint8(&u8, []int{1}, []uint8{1})
	h, _ := AppendHeader(nil, Header{DType: Uint8, FortranOrder: true, Shape: []int{1, 1}})
	fortran.Write(append(h, 0))
	if _, _, err := ReadUint8(&f32, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ReadUint8 of float32: %v", err)
	}
	if _, _, err := ReadFloat32(&u8, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ReadFloat32 of uint8: %v", err)
	}
	if _, _, err := ReadUint8(&fortran, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ReadUint8 of Fortran order: %v", err)
	}
}

func TestReadHugeClaimShortData(t *testing.T) {
	// A header claiming a terabyte followed by 10 bytes must fail as
	// truncated without trying to allocate the terabyte.
	h, err := AppendHeader(nil, Header{DType: Uint8, Shape: []int{1 << 40}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ReadUint8(bytes.NewReader(append(h, make([]byte, 10)...)), nil)
	if !errors.Is(err, ErrFormat) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want truncated ErrFormat", err)
	}
	_, _, err = ReadFloat32(bytes.NewReader(append(h[:0:0], h...)), nil)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("ReadFloat32 of uint8 header: %v", err)
	}
}

func TestReadDataReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	got, err := ReadData(strings.NewReader("abcdef"), buf, 6)
	if err != nil || string(got) != "abcdef" {
		t.Fatalf("got %q, %v", got, err)
	}
	if &got[0] != &buf[:1][0] {
		t.Error("ReadData allocated although the buffer was large enough")
	}
	if _, err := ReadData(strings.NewReader("abc"), nil, 6); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short input: %v", err)
	}
}

// BenchmarkWriteFloat32 measures the little-endian conversion of a feature
// matrix (1000 × 384 float32, a ViT-S feature batch).
func BenchmarkWriteFloat32(b *testing.B) {
	data := make([]float32, 1000*384)
	for i := range data {
		data[i] = float32(i) * 0.25
	}
	b.SetBytes(int64(4 * len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := WriteFloat32(io.Discard, []int{1000, 384}, data); err != nil {
			b.Fatal(err)
		}
	}
}
