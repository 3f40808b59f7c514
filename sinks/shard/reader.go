package shard

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sslight-go/sslight/sinks/npy"
	"github.com/sslight-go/sslight/sinks/storage"
)

// Expect is what a reader checks the whole shard against once it reaches
// the end: the size and CRC32C recorded in the manifest.
type Expect struct {
	Bytes  int64
	CRC32C uint32
}

// Reader iterates the samples of one shard, checking its structure as it
// goes. It is not safe for concurrent use.
type Reader struct {
	name    string
	src     io.Closer // nil for NewReader
	tr      *tar.Reader
	digest  storage.Digest // of the bytes the tar reader consumed
	tail    io.Reader      // the same stream, for draining after the archive
	expect  *Expect
	keys    map[string]struct{}
	samples int
	last    int64 // size of the last member read, for its padding
	err     error // sticky, io.EOF included
}

// Open opens the shard at uri. If expect is not nil, the shard must also
// match it; the check happens when Next reaches the end, so only a caller
// that reads until io.EOF has a verified shard.
func Open(ctx context.Context, uri string, expect *Expect) (*Reader, error) {
	rc, err := storage.Open(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	r := NewReader(rc, uri, expect)
	r.src = rc
	return r, nil
}

// NewReader reads a shard from r; name appears in errors.
func NewReader(r io.Reader, name string, expect *Expect) *Reader {
	rd := &Reader{name: name, expect: expect, keys: make(map[string]struct{})}
	// Files and network bodies get a buffer, so the tar reader's 512-byte
	// header reads are not one system call each (large reads bypass it);
	// in-memory readers need none. The digest sits between the buffer and
	// the tar reader so it sees exactly the bytes consumed, in order.
	if _, inMemory := r.(io.ByteScanner); !inMemory {
		r = bufio.NewReaderSize(r, 64<<10)
	}
	rd.tail = io.TeeReader(r, &rd.digest)
	rd.tr = tar.NewReader(rd.tail)
	return rd
}

// Samples returns the number of samples read so far.
func (r *Reader) Samples() int { return r.samples }

// Digest returns the size and CRC32C of the bytes read so far; after Next
// has returned io.EOF they cover the whole shard.
func (r *Reader) Digest() storage.Digest { return r.digest }

// Close releases the underlying file.
func (r *Reader) Close() error {
	if r.src == nil {
		return nil
	}
	return r.src.Close()
}

// Next reads the next sample into s, reusing the capacity of s.Meta,
// s.Global.Pix and s.Local.Pix. It returns io.EOF after the last sample of a
// well-formed (and, with Expect, matching) shard; any other error wraps
// ErrCorrupt or ErrMismatch and names the shard. Errors are final.
func (r *Reader) Next(s *Sample) error {
	if r.err != nil {
		return r.err
	}
	if err := r.next(s); err != nil {
		r.err = err
		return err
	}
	r.samples++
	return nil
}

func (r *Reader) next(s *Sample) error {
	before := r.digest.Size
	hdr, err := r.tr.Next()
	if errors.Is(err, io.EOF) {
		return r.finish(before)
	}
	if err != nil {
		return r.corrupt("after %d samples: %w", r.samples, err)
	}
	key, ext, err := r.member(hdr)
	if err != nil {
		return err
	}
	if ext != extMeta {
		return r.corrupt("expected a <key>.%s member, found %q", extMeta, hdr.Name)
	}
	if _, dup := r.keys[key]; dup {
		return r.corrupt("duplicate key %q", key)
	}
	r.keys[key] = struct{}{}
	if hdr.Size > MaxMetaLen {
		return r.corrupt("%s is %d bytes, at most %d", hdr.Name, hdr.Size, MaxMetaLen)
	}
	if s.Meta, err = npy.ReadData(r.tr, s.Meta[:0], hdr.Size); err != nil {
		return r.corrupt("%s: %w", hdr.Name, err)
	}
	if err := validateMeta(s.Meta); err != nil {
		return r.corrupt("%s: %w", hdr.Name, err)
	}
	r.last = hdr.Size
	// After the metadata comes either the image (an image sample) or the
	// global views.
	hdr, err = r.nextMember(key, extGlobal)
	if err != nil {
		return err
	}
	if hdr.Name == key+"."+extImage {
		shape, err := r.array(hdr, &s.Image.Pix, 3, 1)
		if err != nil {
			return err
		}
		s.Image.Height, s.Image.Width = shape[0], shape[1]
		s.Global = Views{Pix: s.Global.Pix[:0]}
		s.Local = Views{Pix: s.Local.Pix[:0]}
		s.Key = key
		return nil
	}
	if err := r.views(key, extGlobal, hdr, &s.Global, 1); err != nil {
		return err
	}
	if hdr, err = r.nextMember(key, extLocal); err != nil {
		return err
	}
	if err := r.views(key, extLocal, hdr, &s.Local, 0); err != nil {
		return err
	}
	s.Image = Image{Pix: s.Image.Pix[:0]}
	s.Key = key
	return nil
}

// nextMember reads the header of the member after the last one, which
// should be <key>.<ext> (the name is for errors; the caller checks it).
func (r *Reader) nextMember(key, ext string) (*tar.Header, error) {
	hdr, err := r.tr.Next()
	if errors.Is(err, io.EOF) {
		return nil, r.corrupt("sample %s: missing %s", key, key+"."+ext)
	}
	if err != nil {
		return nil, r.corrupt("sample %s: reading %s: %w", key, key+"."+ext, err)
	}
	return hdr, nil
}

// views reads the member hdr, which must be <key>.<ext>, into v.
func (r *Reader) views(key, ext string, hdr *tar.Header, v *Views, minCount int) error {
	want := key + "." + ext
	if hdr.Name != want {
		return r.corrupt("sample %s: expected %s, found %q", key, want, hdr.Name)
	}
	shape, err := r.array(hdr, &v.Pix, 4, minCount)
	if err != nil {
		return err
	}
	v.Count, v.Height, v.Width = shape[0], shape[1], shape[2]
	return nil
}

// array reads the .npy member hdr into *pix: a C-ordered uint8 array of
// dims dimensions, the last one 3 (RGB), the first at least minFirst and
// the others at least 1. It returns the shape.
func (r *Reader) array(hdr *tar.Header, pix *[]uint8, dims, minFirst int) ([]int, error) {
	if _, _, err := r.member(hdr); err != nil {
		return nil, err
	}
	h, n, err := npy.ReadHeader(r.tr)
	if err != nil {
		return nil, r.corrupt("%s: %w", hdr.Name, err)
	}
	ok := h.DType == npy.Uint8 && !h.FortranOrder && len(h.Shape) == dims && h.Shape[dims-1] == Channels && h.Shape[0] >= minFirst
	for i := 1; ok && i < dims-1; i++ {
		ok = h.Shape[i] >= 1
	}
	if !ok {
		want := "[N≥%d, H≥1, W≥1, 3]"
		if dims == 3 {
			want = "[H≥%d, W≥1, 3]"
		}
		return nil, r.corrupt("%s: array %s fortran=%v shape %v, want uint8 "+want+" in C order",
			hdr.Name, h.DType, h.FortranOrder, h.Shape, minFirst)
	}
	size, _ := h.DataLen() // ReadHeader checked it fits
	if int64(n)+size != hdr.Size {
		return nil, r.corrupt("%s: member is %d bytes, a %v array needs %d", hdr.Name, hdr.Size, h.Shape, int64(n)+size)
	}
	if *pix, err = npy.ReadData(r.tr, (*pix)[:0], size); err != nil {
		return nil, r.corrupt("%s: %w", hdr.Name, err)
	}
	r.last = hdr.Size
	return h.Shape, nil
}

// member checks the header of a member and splits its name at the first dot
// into key and extension.
func (r *Reader) member(hdr *tar.Header) (key, ext string, err error) {
	if hdr.Typeflag != tar.TypeReg {
		return "", "", r.corrupt("member %q has type %q, want a regular file", hdr.Name, hdr.Typeflag)
	}
	key, ext, ok := strings.Cut(hdr.Name, ".")
	if !ok {
		return "", "", r.corrupt("member %q has no extension", hdr.Name)
	}
	if err := ValidateKey(key); err != nil {
		return "", "", r.corrupt("member %q: %w", hdr.Name, err)
	}
	return key, ext, nil
}

// finish checks the end of the archive: a complete end-of-archive marker
// (two zero blocks right after the last member, so a shard cut at a member
// boundary is caught), nothing but zero padding after it, and the expected
// size and CRC32C.
func (r *Reader) finish(before int64) error {
	if r.samples == 0 {
		return r.corrupt("no samples")
	}
	const block = 512
	pad := (block - r.last%block) % block
	if got := r.digest.Size - before; got != pad+2*block {
		return r.corrupt("truncated: end-of-archive marker missing after %d samples", r.samples)
	}
	if _, err := io.Copy(zeroChecker{}, r.tail); err != nil {
		return r.corrupt("after the end of the archive: %w", err)
	}
	if e := r.expect; e != nil && (e.Bytes != r.digest.Size || e.CRC32C != r.digest.CRC32C) {
		return fmt.Errorf("shard %s: %w: have %d bytes crc32c %s, want %d bytes crc32c %s",
			r.name, ErrMismatch, r.digest.Size, storage.CRC32CBase64(r.digest.CRC32C),
			e.Bytes, storage.CRC32CBase64(e.CRC32C))
	}
	return io.EOF
}

func (r *Reader) corrupt(format string, args ...any) error {
	return fmt.Errorf("shard %s: %w: %w", r.name, ErrCorrupt, fmt.Errorf(format, args...))
}

// zeroChecker accepts only zero bytes: tar writers may pad the archive to a
// record size after the end marker, and anything else is not a shard.
type zeroChecker struct{}

func (zeroChecker) Write(p []byte) (int, error) {
	for i, c := range p {
		if c != 0 {
			return i, errors.New("non-zero data")
		}
	}
	return len(p), nil
}
