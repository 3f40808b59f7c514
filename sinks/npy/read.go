package npy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// ParseHeader parses the .npy header at the start of b and returns it with
// the number of bytes it occupies (the offset of the data). b may hold more
// than the header.
func ParseHeader(b []byte) (Header, int, error) {
	n, err := prefixLen(b)
	if err != nil {
		return Header{}, 0, err
	}
	if len(b) < n {
		return Header{}, 0, fmt.Errorf("%w: header length field truncated", ErrFormat)
	}
	hlen := headerLenField(b)
	if hlen > MaxHeaderLen {
		return Header{}, 0, fmt.Errorf("%w: header length %d exceeds %d", ErrFormat, hlen, MaxHeaderLen)
	}
	if len(b) < n+hlen {
		return Header{}, 0, fmt.Errorf("%w: header truncated: need %d bytes, have %d", ErrFormat, n+hlen, len(b))
	}
	h, err := parseDict(b[n:n+hlen], b[6])
	if err != nil {
		return Header{}, 0, err
	}
	return h, n + hlen, nil
}

// ReadHeader reads a .npy header from r, leaving r at the first data byte.
// It returns the header and the number of bytes read.
func ReadHeader(r io.Reader) (Header, int, error) {
	var pre [12]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return Header{}, 0, fmt.Errorf("%w: reading magic: %w", ErrFormat, eof(err))
	}
	n, err := prefixLen(pre[:8])
	if err != nil {
		return Header{}, 0, err
	}
	if _, err := io.ReadFull(r, pre[8:n]); err != nil {
		return Header{}, 0, fmt.Errorf("%w: reading header length: %w", ErrFormat, eof(err))
	}
	hlen := headerLenField(pre[:n])
	if hlen > MaxHeaderLen {
		return Header{}, 0, fmt.Errorf("%w: header length %d exceeds %d", ErrFormat, hlen, MaxHeaderLen)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Header{}, 0, fmt.Errorf("%w: reading %d-byte header: %w", ErrFormat, hlen, eof(err))
	}
	h, err := parseDict(buf, pre[6])
	if err != nil {
		return Header{}, 0, err
	}
	return h, n + hlen, nil
}

// eof turns a clean io.EOF inside a structure into io.ErrUnexpectedEOF.
func eof(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// prefixLen checks magic and version at the start of b and returns the
// length of magic + version + header-length field.
func prefixLen(b []byte) (int, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("%w: %d bytes is too short for a header", ErrFormat, len(b))
	}
	if string(b[:6]) != magic {
		return 0, fmt.Errorf("%w: bad magic %q", ErrFormat, b[:6])
	}
	major, minor := b[6], b[7]
	switch {
	case minor != 0 || major < 1 || major > 3:
		return 0, fmt.Errorf("%w: format version %d.%d", ErrUnsupported, major, minor)
	case major == 1:
		return 10, nil // uint16 header length
	default:
		return 12, nil // uint32 header length
	}
}

// headerLenField decodes the header length that follows magic and version;
// b holds the whole prefix.
func headerLenField(b []byte) int {
	if b[6] == 1 {
		return int(binary.LittleEndian.Uint16(b[8:10]))
	}
	v := binary.LittleEndian.Uint32(b[8:12])
	if uint64(v) > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(v)
}

// parseDict parses the header text: a Python dict literal with exactly the
// keys descr, fortran_order and shape, then spaces, then a final newline.
func parseDict(b []byte, major byte) (Header, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return Header{}, fmt.Errorf("%w: header does not end in a newline", ErrFormat)
	}
	if major == 3 && !utf8.Valid(b) {
		return Header{}, fmt.Errorf("%w: header is not UTF-8", ErrFormat)
	}
	p := parser{b: b[:len(b)-1]}
	var h Header
	var seen [3]bool
	p.skipSpace()
	if !p.eat('{') {
		return Header{}, p.fail("expected '{'")
	}
	for {
		p.skipSpace()
		if p.eat('}') {
			break
		}
		key, ok := p.str()
		if !ok {
			return Header{}, p.fail("expected a quoted key")
		}
		p.skipSpace()
		if !p.eat(':') {
			return Header{}, p.fail("expected ':' after key")
		}
		p.skipSpace()
		switch key {
		case "descr":
			if seen[0] {
				return Header{}, p.fail("duplicate key 'descr'")
			}
			seen[0] = true
			d, ok := p.str()
			if !ok {
				return Header{}, p.fail("descr must be a quoted string")
			}
			h.DType = DType(d)
		case "fortran_order":
			if seen[1] {
				return Header{}, p.fail("duplicate key 'fortran_order'")
			}
			seen[1] = true
			switch {
			case p.word("True"):
				h.FortranOrder = true
			case p.word("False"):
				h.FortranOrder = false
			default:
				return Header{}, p.fail("fortran_order must be True or False")
			}
		case "shape":
			if seen[2] {
				return Header{}, p.fail("duplicate key 'shape'")
			}
			seen[2] = true
			shape, err := p.tuple()
			if err != nil {
				return Header{}, err
			}
			h.Shape = shape
		default:
			return Header{}, p.fail(fmt.Sprintf("unexpected key %q", key))
		}
		p.skipSpace()
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			return Header{}, p.fail("expected ',' or '}'")
		}
	}
	for p.i < len(p.b) {
		if p.b[p.i] != ' ' {
			return Header{}, p.fail("unexpected text after the dict")
		}
		p.i++
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return Header{}, fmt.Errorf("%w: header needs descr, fortran_order and shape", ErrFormat)
	}
	if h.DType.ItemSize() == 0 {
		return Header{}, fmt.Errorf("%w: dtype %q", ErrUnsupported, string(h.DType))
	}
	if _, err := h.DataLen(); err != nil {
		return Header{}, err
	}
	return h, nil
}

// parser is a cursor over header text.
type parser struct {
	b []byte
	i int
}

func (p *parser) fail(what string) error {
	return fmt.Errorf("%w: header offset %d: %s", ErrFormat, p.i, what)
}

func (p *parser) skipSpace() {
	for p.i < len(p.b) && p.b[p.i] == ' ' {
		p.i++
	}
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) word(w string) bool {
	if len(p.b)-p.i >= len(w) && string(p.b[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return true
	}
	return false
}

// str reads a '…' or "…" string without escapes, which is all numpy writes
// for these keys and dtypes.
func (p *parser) str() (string, bool) {
	if p.i >= len(p.b) || (p.b[p.i] != '\'' && p.b[p.i] != '"') {
		return "", false
	}
	q := p.b[p.i]
	for j := p.i + 1; j < len(p.b); j++ {
		switch p.b[j] {
		case q:
			s := string(p.b[p.i+1 : j])
			p.i = j + 1
			return s, true
		case '\\', '\n':
			return "", false
		}
	}
	return "", false
}

// tuple reads a Python tuple of non-negative decimal ints: (), (5,),
// (2, 3) or (2, 3,).
func (p *parser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, p.fail("shape must be a tuple")
	}
	shape := []int{}
	for {
		p.skipSpace()
		if p.eat(')') {
			// Either "()" or a trailing comma: valid for any length.
			return shape, nil
		}
		if len(shape) == MaxDims {
			return nil, p.fail(fmt.Sprintf("more than %d dimensions", MaxDims))
		}
		d, err := p.int()
		if err != nil {
			return nil, err
		}
		shape = append(shape, d)
		p.skipSpace()
		if p.eat(')') {
			if len(shape) == 1 {
				return nil, p.fail("a one-element shape needs a trailing comma")
			}
			return shape, nil
		}
		if !p.eat(',') {
			return nil, p.fail("expected ',' or ')' in shape")
		}
	}
}

func (p *parser) int() (int, error) {
	start := p.i
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := int(p.b[p.i] - '0')
		if n > (math.MaxInt-d)/10 {
			return 0, p.fail("dimension overflows")
		}
		n = n*10 + d
		p.i++
	}
	switch {
	case p.i == start:
		return 0, p.fail("expected a non-negative integer")
	case p.b[start] == '0' && p.i-start > 1:
		return 0, p.fail("leading zero in integer")
	}
	return n, nil
}

// ReadUint8 reads a C-ordered uint8 .npy array from r and returns its shape
// and data. The data goes into buf when it is large enough, so a caller
// reading many arrays can reuse one buffer. Memory grows with the bytes
// actually read, not with the size a header claims.
func ReadUint8(r io.Reader, buf []uint8) ([]int, []uint8, error) {
	h, _, err := ReadHeader(r)
	if err != nil {
		return nil, nil, err
	}
	n, err := checkArray(h, Uint8)
	if err != nil {
		return nil, nil, err
	}
	data, err := ReadData(r, buf, n)
	if err != nil {
		return nil, nil, err
	}
	return h.Shape, data, nil
}

// ReadFloat32 reads a C-ordered little-endian float32 .npy array from r.
// The data goes into buf when it is large enough.
func ReadFloat32(r io.Reader, buf []float32) ([]int, []float32, error) {
	h, _, err := ReadHeader(r)
	if err != nil {
		return nil, nil, err
	}
	n, err := checkArray(h, Float32)
	if err != nil {
		return nil, nil, err
	}
	count := int(n / 4)
	out := buf[:0]
	var chunk [16 << 10]byte
	for read := 0; read < count; {
		k := min(count-read, len(chunk)/4)
		if _, err := io.ReadFull(r, chunk[:4*k]); err != nil {
			return nil, nil, fmt.Errorf("%w: data truncated after %d of %d elements: %w", ErrFormat, read, count, eof(err))
		}
		for i := 0; i < k; i++ {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(chunk[4*i:])))
		}
		read += k
	}
	return h.Shape, out, nil
}

func checkArray(h Header, want DType) (int64, error) {
	if h.DType != want {
		return 0, fmt.Errorf("%w: dtype %q, want %q", ErrUnsupported, string(h.DType), string(want))
	}
	if h.FortranOrder {
		return 0, fmt.Errorf("%w: Fortran-ordered array", ErrUnsupported)
	}
	return h.DataLen()
}

// ReadData reads exactly n bytes from r into buf (reused when its capacity
// suffices). It allocates as data arrives rather than trusting n up front,
// so a corrupt length cannot make it allocate more than the input holds plus
// a bounded step.
func ReadData(r io.Reader, buf []byte, n int64) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: negative data length %d", ErrFormat, n)
	}
	if int64(cap(buf)) >= n {
		out := buf[:n]
		if _, err := io.ReadFull(r, out); err != nil {
			return nil, fmt.Errorf("%w: data truncated: want %d bytes: %w", ErrFormat, n, eof(err))
		}
		return out, nil
	}
	const step = 4 << 20
	out := buf[:0]
	for int64(len(out)) < n {
		if len(out) == cap(out) {
			grow := int(min(n-int64(len(out)), max(int64(cap(out)), step)))
			out = append(out, make([]byte, grow)...)[:len(out)]
		}
		end := int(min(int64(cap(out)), n))
		m, err := io.ReadFull(r, out[len(out):end])
		out = out[:len(out)+m]
		if err != nil {
			return nil, fmt.Errorf("%w: data truncated after %d of %d bytes: %w", ErrFormat, len(out), n, eof(err))
		}
	}
	return out, nil
}
