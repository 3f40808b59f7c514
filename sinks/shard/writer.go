package shard

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sslight-go/sslight/sinks/npy"
	"github.com/sslight-go/sslight/sinks/storage"
)

// epoch0 is every member's modification time: fixed so the tar bytes depend
// on the samples only.
var epoch0 = time.Unix(0, 0)

// encoder streams samples into a tar. Pixels go from the caller's slices to
// the underlying writer without being copied or held.
type encoder struct {
	tw   *tar.Writer
	npy  []byte              // scratch for .npy headers
	keys map[string]struct{} // keys written so far, to refuse duplicates
}

func newEncoder(w io.Writer) *encoder {
	return &encoder{tw: tar.NewWriter(w), npy: make([]byte, 0, 256), keys: make(map[string]struct{})}
}

// add validates s and appends its three members. Validation errors leave
// the tar untouched; write errors leave it unusable.
func (e *encoder) add(s *Sample) (invalid bool, err error) {
	if err := s.Validate(); err != nil {
		return true, err
	}
	if _, dup := e.keys[s.Key]; dup {
		return true, fmt.Errorf("%w: duplicate key %q in shard", ErrInvalidSample, s.Key)
	}
	if err := e.member(s.Key+"."+extMeta, s.Meta, nil); err != nil {
		return false, err
	}
	if s.IsImage() {
		if err := e.array(s.Key+"."+extImage, s.Image.Shape(), s.Image.Pix); err != nil {
			return false, err
		}
		e.keys[s.Key] = struct{}{}
		return false, nil
	}
	if err := e.views(s.Key+"."+extGlobal, &s.Global); err != nil {
		return false, err
	}
	if err := e.views(s.Key+"."+extLocal, &s.Local); err != nil {
		return false, err
	}
	e.keys[s.Key] = struct{}{}
	return false, nil
}

func (e *encoder) views(name string, v *Views) error {
	return e.array(name, v.Shape(), v.Pix)
}

// array writes one uint8 .npy member of the given shape.
func (e *encoder) array(name string, shape []int, pix []uint8) error {
	var err error
	e.npy, err = npy.AppendHeader(e.npy[:0], npy.Header{DType: npy.Uint8, Shape: shape})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err) // unreachable after Validate
	}
	return e.member(name, e.npy, pix)
}

// member writes one regular file whose content is head followed by body.
func (e *encoder) member(name string, head, body []byte) error {
	hdr := tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     int64(len(head) + len(body)),
		Mode:     0o644,
		ModTime:  epoch0,
		// Uid, Gid 0 and Uname, Gname "" are the zero values. Format is
		// left open so archive/tar picks USTAR and falls back to PAX only
		// for names USTAR cannot hold.
	}
	if err := e.tw.WriteHeader(&hdr); err != nil {
		return fmt.Errorf("tar header %s: %w", name, err)
	}
	if _, err := e.tw.Write(head); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := e.tw.Write(body); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// close writes the end-of-archive marker.
func (e *encoder) close() error { return e.tw.Close() }

// Writer streams samples into one shard and publishes it atomically on
// Close. It holds only the sample being written, never the whole shard. It
// is not safe for concurrent use.
type Writer struct {
	out  *storage.Writer
	enc  *encoder
	info Info
	err  error // sticky write error
}

// Create starts shard index of epoch under out (a local folder, gs://bucket/
// prefix or memfs:// prefix) at URI(out, configHash, epoch, index). Nothing
// is visible there until Close succeeds.
func Create(ctx context.Context, out, configHash string, epoch, index int) (*Writer, error) {
	if err := ValidateConfigHash(configHash); err != nil {
		return nil, err
	}
	if epoch < 0 || index < 0 {
		return nil, fmt.Errorf("shard: negative epoch %d or index %d", epoch, index)
	}
	uri := URI(out, configHash, epoch, index)
	w, err := storage.Create(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	return &Writer{
		out: w,
		enc: newEncoder(w),
		info: Info{
			URI:        uri,
			Name:       Name(configHash, epoch, index),
			Epoch:      epoch,
			Index:      index,
			ConfigHash: configHash,
		},
	}, nil
}

// URI returns where the shard will appear.
func (w *Writer) URI() string { return w.info.URI }

// Samples returns the number of samples added so far.
func (w *Writer) Samples() int { return w.info.Samples }

// Add appends s. An invalid sample (error wrapping ErrInvalidSample) is
// refused without writing anything, so the caller can dead-letter it and go
// on; any other error is final and the writer must be aborted.
func (w *Writer) Add(s *Sample) error {
	if w.err != nil {
		return w.err
	}
	invalid, err := w.enc.add(s)
	if err != nil {
		err = fmt.Errorf("shard %s: %w", w.info.URI, err)
		if !invalid {
			w.err = err
		}
		return err
	}
	w.info.Samples++
	return nil
}

// Close finishes the tar, publishes the shard and returns its Info. On any
// error nothing is published. A shard without samples is an error
// (ErrEmpty).
func (w *Writer) Close() (Info, error) {
	if w.err != nil {
		w.out.Abort()
		return Info{}, w.err
	}
	if w.info.Samples == 0 {
		w.out.Abort()
		w.err = fmt.Errorf("shard %s: %w", w.info.URI, ErrEmpty)
		return Info{}, w.err
	}
	if err := w.enc.close(); err != nil {
		w.out.Abort()
		w.err = fmt.Errorf("shard %s: finish tar: %w", w.info.URI, err)
		return Info{}, w.err
	}
	if err := w.out.Commit(); err != nil {
		w.err = fmt.Errorf("shard %s: %w", w.info.URI, err)
		return Info{}, w.err
	}
	w.info.Bytes = w.out.Size()
	w.info.CRC32C = w.out.CRC32C()
	w.info.CRC32CBase64 = storage.CRC32CBase64(w.info.CRC32C)
	w.err = errClosed
	return w.info, nil
}

var errClosed = errors.New("shard: writer closed")

// Abort abandons the shard: nothing is published and temporary files are
// removed. It is a no-op after Close, so it is safe to defer.
func (w *Writer) Abort() error {
	if w.err == nil {
		w.err = errClosed
	}
	return w.out.Abort()
}
