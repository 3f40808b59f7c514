// Package idx reads the IDX format of MNIST-style data sets (MNIST,
// Fashion-MNIST, KMNIST, EMNIST): a 4-byte magic (two zero bytes, an element
// type code, the number of dimensions), one big-endian uint32 per dimension,
// then the elements in row-major order. Images are 0x00000803 (uint8
// [N,H,W]) and labels 0x00000801 (uint8 [N]).
//
// Files are read raw or gzip-compressed; the compression is sniffed from the
// first two bytes (1f 8b), not taken from the file name.
//
// The readers never trust the header's sizes for allocation: a header may
// declare gigabytes while the stream holds a few bytes, so the body buffer
// grows with the bytes that actually arrive, and a declared body over
// MaxBody is refused outright. A body that ends early is reported as a
// *TruncatedError that comes back together with every complete record read
// before the end, so callers can keep those and account for the rest.
package idx

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxBody is the largest element body, in bytes, the readers accept (4 GiB:
// EMNIST ByClass, the largest common IDX file, is 0.55 GB).
const MaxBody = 4 << 30

// maxDims bounds the dimension count: real files use 1 to 4, and the count
// byte would otherwise let a header claim 255 dimensions.
const maxDims = 8

// ElemType is the element type code, the third byte of the magic.
type ElemType byte

// Element types defined by the IDX format.
const (
	Uint8   ElemType = 0x08
	Int8    ElemType = 0x09
	Int16   ElemType = 0x0B
	Int32   ElemType = 0x0C
	Float32 ElemType = 0x0D
	Float64 ElemType = 0x0E
)

// Size returns the element size in bytes, or 0 for an unknown code.
func (t ElemType) Size() int {
	switch t {
	case Uint8, Int8:
		return 1
	case Int16:
		return 2
	case Int32, Float32:
		return 4
	case Float64:
		return 8
	}
	return 0
}

// String names the type as numpy would.
func (t ElemType) String() string {
	switch t {
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int16:
		return "int16"
	case Int32:
		return "int32"
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	}
	return fmt.Sprintf("unknown(0x%02x)", byte(t))
}

// Header is the part of an IDX file before the elements.
type Header struct {
	Type ElemType
	Dims []int // each fits a uint32
}

// Magic returns the header's 32-bit magic number (0x00000803 for images).
func (h Header) Magic() uint32 {
	return uint32(h.Type)<<8 | uint32(len(h.Dims))
}

// Len returns the header's size in bytes: the magic plus 4 bytes per dimension.
func (h Header) Len() int { return 4 + 4*len(h.Dims) }

// BodySize returns the declared body size in bytes (the product of the
// dimensions times the element size), or an error when it exceeds MaxBody.
func (h Header) BodySize() (int64, error) {
	n := int64(h.Type.Size())
	for _, d := range h.Dims {
		if d == 0 {
			return 0, nil
		}
		// Checking against the limit before multiplying keeps n in range.
		if int64(d) > MaxBody/n {
			return 0, fmt.Errorf("dimensions %v of %s declare more than %d bytes (the limit)", h.Dims, h.Type, int64(MaxBody))
		}
		n *= int64(d)
	}
	return n, nil
}

// FormatError reports a file that is not valid IDX or not the kind expected
// (images vs labels). Name is the file the caller named.
type FormatError struct {
	Name string
	Msg  string
}

// Error names the file and what is wrong with it.
func (e *FormatError) Error() string { return "idx: " + e.Name + ": " + e.Msg }

// TruncatedError reports a body that ended before the size its header
// declares. The reader that returns it also returns every complete record
// that arrived before the end.
type TruncatedError struct {
	Name     string
	Declared int   // records the header declares
	Complete int   // complete records read
	Got      int64 // body bytes read
	Want     int64 // body bytes declared
}

// Error says how much of the body and how many records arrived.
func (e *TruncatedError) Error() string {
	return fmt.Sprintf("idx: %s: truncated body: %d of %d bytes, %d of %d records complete",
		e.Name, e.Got, e.Want, e.Complete, e.Declared)
}

// Decompress returns a reader of r's IDX bytes: r itself when it is raw, or a
// gzip reader when r starts with the gzip magic 1f 8b. An IDX file always
// starts with two zero bytes, so the sniff cannot be ambiguous.
func Decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip header: %w", err)
		}
		return zr, nil
	}
	return br, nil
}

// ReadHeader reads and checks the magic and dimensions from r, which must be
// decompressed already.
func ReadHeader(r io.Reader, name string) (Header, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return Header{}, &FormatError{name, fmt.Sprintf("reading the 4-byte magic: %v", eofAsShort(err))}
	}
	if magic[0] != 0 || magic[1] != 0 {
		return Header{}, &FormatError{name, fmt.Sprintf("magic %02x %02x %02x %02x is not IDX (want 00 00 <type> <dims>)",
			magic[0], magic[1], magic[2], magic[3])}
	}
	h := Header{Type: ElemType(magic[2])}
	if h.Type.Size() == 0 {
		return Header{}, &FormatError{name, fmt.Sprintf("magic 0x%08x: unknown element type 0x%02x", binary.BigEndian.Uint32(magic[:]), magic[2])}
	}
	nd := int(magic[3])
	if nd == 0 || nd > maxDims {
		return Header{}, &FormatError{name, fmt.Sprintf("magic 0x%08x: %d dimensions (want 1 to %d)", binary.BigEndian.Uint32(magic[:]), nd, maxDims)}
	}
	var dims [4 * maxDims]byte
	if _, err := io.ReadFull(r, dims[:4*nd]); err != nil {
		return Header{}, &FormatError{name, fmt.Sprintf("reading %d dimensions: %v", nd, eofAsShort(err))}
	}
	h.Dims = make([]int, nd)
	for i := range h.Dims {
		h.Dims[i] = int(binary.BigEndian.Uint32(dims[4*i:]))
	}
	return h, nil
}

// eofAsShort makes a clean EOF inside a fixed-size field read as what it is.
func eofAsShort(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Images is a uint8 image file's content: N records of H×W gray pixels.
type Images struct {
	N, H, W int
	Pix     []uint8 // N*H*W bytes, record i at [i*H*W : (i+1)*H*W]
}

// Record returns the H*W pixels of record i, row-major. It shares Pix.
func (m *Images) Record(i int) []uint8 {
	n := m.H * m.W
	return m.Pix[i*n : (i+1)*n : (i+1)*n]
}

// ImagesInfo summarises an images file without keeping its pixels.
type ImagesInfo struct {
	N, H, W  int // declared record count and record size
	Complete int // records fully present (N unless the body is truncated)
}

// imagesHeader reads r's header and checks it is a uint8 [N,H,W] images file.
func imagesHeader(r io.Reader, name string) (Header, int64, error) {
	h, err := ReadHeader(r, name)
	if err != nil {
		return h, 0, err
	}
	if h.Type != Uint8 || len(h.Dims) != 3 {
		return h, 0, &FormatError{name, fmt.Sprintf("magic 0x%08x is %s %v, want images: uint8 [N,H,W] (0x00000803)", h.Magic(), h.Type, h.Dims)}
	}
	if h.Dims[0] > 0 && (h.Dims[1] == 0 || h.Dims[2] == 0) {
		return h, 0, &FormatError{name, fmt.Sprintf("%d records of empty size %dx%d", h.Dims[0], h.Dims[1], h.Dims[2])}
	}
	size, err := h.BodySize()
	if err != nil {
		return h, 0, &FormatError{name, err.Error()}
	}
	return h, size, nil
}

// ReadImages reads a raw or gzip images file. On a truncated body it returns
// the complete records (N set to their count) with a *TruncatedError.
func ReadImages(r io.Reader, name string) (*Images, error) {
	dr, err := Decompress(r)
	if err != nil {
		return nil, &FormatError{name, err.Error()}
	}
	h, size, err := imagesHeader(dr, name)
	if err != nil {
		return nil, err
	}
	rec := int64(h.Dims[1]) * int64(h.Dims[2])
	body, err := readBody(dr, name, size, rec, true)
	m := &Images{N: h.Dims[0], H: h.Dims[1], W: h.Dims[2]}
	if err != nil {
		var te *TruncatedError
		if !errors.As(err, &te) {
			return nil, err
		}
		m.N = te.Complete
		m.Pix = body[:int64(te.Complete)*rec]
		return m, err
	}
	m.Pix = body
	return m, nil
}

// ScanImages checks an images file end to end (header, body length, gzip
// checksum, no trailing bytes) without keeping its pixels. A truncated body
// is reported as a *TruncatedError, with the info filled in.
func ScanImages(r io.Reader, name string) (ImagesInfo, error) {
	dr, err := Decompress(r)
	if err != nil {
		return ImagesInfo{}, &FormatError{name, err.Error()}
	}
	h, size, err := imagesHeader(dr, name)
	if err != nil {
		return ImagesInfo{}, err
	}
	info := ImagesInfo{N: h.Dims[0], H: h.Dims[1], W: h.Dims[2], Complete: h.Dims[0]}
	_, err = readBody(dr, name, size, int64(info.H)*int64(info.W), false)
	var te *TruncatedError
	if errors.As(err, &te) {
		info.Complete = te.Complete
	}
	return info, err
}

// ReadLabels reads a raw or gzip uint8 [N] labels file (0x00000801). On a
// truncated body it returns the labels that arrived with a *TruncatedError.
func ReadLabels(r io.Reader, name string) ([]uint8, error) {
	dr, err := Decompress(r)
	if err != nil {
		return nil, &FormatError{name, err.Error()}
	}
	h, err := ReadHeader(dr, name)
	if err != nil {
		return nil, err
	}
	if h.Type != Uint8 || len(h.Dims) != 1 {
		return nil, &FormatError{name, fmt.Sprintf("magic 0x%08x is %s %v, want labels: uint8 [N] (0x00000801)", h.Magic(), h.Type, h.Dims)}
	}
	body, err := readBody(dr, name, int64(h.Dims[0]), 1, true)
	return body, err
}

// chunk is the initial body buffer and the unit of discarding reads; the
// buffer then doubles as bytes arrive, so a lying header costs at most this.
const chunk = 1 << 20

// readBody reads exactly want bytes of records of recSize bytes from r, then
// makes sure r is at its end (which also makes gzip verify its checksum).
// With keep it returns the bytes read; on a short body the error is a
// *TruncatedError and the returned bytes are all that arrived.
func readBody(r io.Reader, name string, want, recSize int64, keep bool) ([]byte, error) {
	var buf []byte
	var scratch []byte
	if keep {
		buf = make([]byte, 0, min(want, chunk))
	} else {
		scratch = make([]byte, min(want, chunk)+1)
	}
	var got int64
	for got < want {
		var dst []byte
		if keep {
			if len(buf) == cap(buf) {
				grown := make([]byte, len(buf), min(want, 2*int64(cap(buf))))
				copy(grown, buf)
				buf = grown
			}
			dst = buf[len(buf):cap(buf)]
		} else {
			dst = scratch[:min(want-got, int64(len(scratch)))]
		}
		n, err := io.ReadFull(r, dst)
		got += int64(n)
		if keep {
			buf = buf[:len(buf)+n]
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				declared := want
				if recSize > 0 {
					declared = want / recSize
				}
				return buf, &TruncatedError{Name: name, Declared: int(declared), Complete: int(got / max(recSize, 1)), Got: got, Want: want}
			}
			return buf, fmt.Errorf("idx: %s: reading body at byte %d: %w", name, got, err)
		}
	}
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	if n > 0 {
		extra, _ := io.Copy(io.Discard, io.LimitReader(r, chunk))
		return buf, &FormatError{name, fmt.Sprintf("at least %d bytes after the declared %d-byte body (dimensions do not match the data)", 1+extra, want)}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return buf, fmt.Errorf("idx: %s: after the body: %w", name, err)
	}
	return buf, nil
}
