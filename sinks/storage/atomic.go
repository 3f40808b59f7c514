package storage

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	gcs "cloud.google.com/go/storage"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
)

// Errors a Writer reports; match them with errors.Is.
var (
	// ErrClosed: Write, Commit or Abort after the writer was committed or
	// aborted.
	ErrClosed = errors.New("storage: writer already committed or aborted")
	// ErrChecksum: the object store holds different bytes than were written.
	ErrChecksum = errors.New("storage: checksum mismatch")
	// ErrUnsupportedScheme: atomic writes are implemented for local paths,
	// gs:// and memfs:// only.
	ErrUnsupportedScheme = errors.New("storage: scheme not supported for atomic writes")
)

// bufferSize batches the small writes of tar headers and JSON lines into
// large backend writes; big pixel writes bypass the buffer.
const bufferSize = 1 << 20

// tempPrefix starts the name of every in-progress local file. The leading dot
// hides it from `ls` and from globs such as "*.tar"; the random suffix keeps
// it from ending in the final name's extension.
const tempPrefix = ".tmp-"

// Writer writes one file that becomes visible at its URI only when Commit
// succeeds, and never if Abort is called or the process dies first:
//
//   - local paths: the bytes go to "<dir>/.tmp-<name>-<random>", which is
//     fsynced and renamed over the final name on Commit (parent folders are
//     created);
//   - gs://: a GCS object is created only when its upload is closed, so the
//     writer streams straight to the final name and Abort cancels the upload.
//     After Commit the CRC32C GCS computed is compared with the local one;
//   - memfs://: Beam's in-memory filesystem stores a file on Close only, so
//     the same holds.
//
// Writer keeps a running CRC32C and byte count of what it wrote. It is not
// safe for concurrent use. A typical use:
//
//	w, err := storage.Create(ctx, uri)
//	if err != nil { return err }
//	defer w.Abort() // no-op after a successful Commit
//	... write ...
//	return w.Commit()
type Writer struct {
	uri    string
	scheme string
	fsys   filesystem.Interface
	dst    io.WriteCloser // the backend's writer (temp file for local paths)
	buf    *bufio.Writer
	tmp    string             // local temp path; "" for object stores
	cancel context.CancelFunc // aborts a gs:// upload
	ctx    context.Context
	digest Digest
	err    error // first write error; sticky
	done   bool
}

// Create starts an atomic write of uri. Nothing appears at uri until Commit.
func Create(ctx context.Context, uri string) (*Writer, error) {
	scheme := Scheme(uri)
	if scheme != "" && scheme != "gs" && scheme != "memfs" {
		return nil, fmt.Errorf("create %s: %w", uri, ErrUnsupportedScheme)
	}
	if uri == "" || strings.HasSuffix(uri, "/") || strings.HasSuffix(uri, "://") {
		return nil, fmt.Errorf("create %q: not a file name", uri)
	}
	fsys, err := filesystem.New(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", uri, err)
	}
	w := &Writer{uri: uri, scheme: scheme, fsys: fsys, ctx: ctx}
	target := uri
	if scheme == "" {
		suffix, err := randomSuffix()
		if err != nil {
			fsys.Close()
			return nil, fmt.Errorf("create %s: %w", uri, err)
		}
		dir, name := filepath.Split(uri)
		w.tmp = filepath.Join(dir, tempPrefix+name+"-"+suffix)
		target = w.tmp
	} else {
		// The upload lives as long as this context; cancelling it is the
		// documented way to abandon a GCS write without creating the object.
		ctx, w.cancel = context.WithCancel(ctx)
	}
	// Beam's local OpenWrite creates the parent folders (MkdirAll 0755).
	dst, err := fsys.OpenWrite(ctx, target)
	if err != nil {
		if w.cancel != nil {
			w.cancel()
		}
		fsys.Close()
		return nil, fmt.Errorf("create %s: %w", uri, err)
	}
	w.dst = dst
	w.buf = bufio.NewWriterSize(dst, bufferSize)
	return w, nil
}

// URI returns the final name of the file being written.
func (w *Writer) URI() string { return w.uri }

// Size returns the number of bytes written so far.
func (w *Writer) Size() int64 { return w.digest.Size }

// CRC32C returns the CRC32C (Castagnoli) of the bytes written so far.
func (w *Writer) CRC32C() uint32 { return w.digest.CRC32C }

// Write appends p. After a failed write every later call fails too.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: %w", w.uri, ErrClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.buf.Write(p)
	w.digest.Write(p[:n])
	if err != nil {
		w.err = fmt.Errorf("write %s: %w", w.uri, err)
		return n, w.err
	}
	return n, nil
}

// Commit makes the file visible at its URI with everything written so far.
// If it fails, nothing is visible and temporary files are gone.
func (w *Writer) Commit() error {
	if w.done {
		return fmt.Errorf("commit %s: %w", w.uri, ErrClosed)
	}
	if w.err != nil {
		err := w.err
		w.Abort()
		return err
	}
	if err := w.buf.Flush(); err != nil {
		w.Abort()
		return fmt.Errorf("commit %s: %w", w.uri, err)
	}
	if w.scheme == "" {
		return w.commitLocal()
	}
	return w.commitObject()
}

func (w *Writer) commitLocal() error {
	// fsync before rename: otherwise a crash can leave the new name pointing
	// at a file whose data never reached the disk.
	if s, ok := w.dst.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			w.Abort()
			return fmt.Errorf("commit %s: sync: %w", w.uri, err)
		}
	}
	err := w.dst.Close()
	w.dst = nil
	if err != nil {
		w.Abort()
		return fmt.Errorf("commit %s: close: %w", w.uri, err)
	}
	if err := filesystem.Rename(w.ctx, w.fsys, w.tmp, w.uri); err != nil {
		w.Abort()
		return fmt.Errorf("commit %s: rename: %w", w.uri, err)
	}
	syncDir(filepath.Dir(w.uri))
	w.finish()
	return nil
}

func (w *Writer) commitObject() error {
	gw, _ := w.dst.(*gcs.Writer)
	err := w.dst.Close()
	w.dst = nil
	if err != nil {
		w.Abort()
		return fmt.Errorf("commit %s: %w", w.uri, err)
	}
	if gw != nil {
		err = w.checkObject(gw.Attrs())
	}
	w.finish()
	return err
}

// checkObject compares the CRC32C GCS computed for the new object with ours
// and deletes the object when they differ: the bytes were damaged on the way,
// and a visible object must be a complete, correct one.
func (w *Writer) checkObject(attrs *gcs.ObjectAttrs) error {
	if attrs == nil || attrs.CRC32C == w.digest.CRC32C && attrs.Size == w.digest.Size {
		return nil
	}
	err := fmt.Errorf("commit %s: %w: wrote %d bytes crc32c %s, object has %d bytes crc32c %s",
		w.uri, ErrChecksum, w.digest.Size, CRC32CBase64(w.digest.CRC32C), attrs.Size, CRC32CBase64(attrs.CRC32C))
	if rm, ok := w.fsys.(filesystem.Remover); ok {
		if rerr := rm.Remove(w.ctx, w.uri); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove damaged %s: %w", w.uri, rerr))
		}
	}
	return err
}

// Abort abandons the write: nothing becomes visible and temporary files are
// removed. It is a no-op after Commit or an earlier Abort, so it is safe to
// defer.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	var errs []error
	switch {
	case w.scheme == "":
		if w.dst != nil {
			w.dst.Close()
		}
		if rm, ok := w.fsys.(filesystem.Remover); ok {
			if err := rm.Remove(w.ctx, w.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("abort %s: remove %s: %w", w.uri, w.tmp, err))
			}
		}
	case w.cancel != nil:
		w.cancel()
		if w.dst != nil && w.scheme != "memfs" {
			// Closing a cancelled GCS upload fails by design; it only
			// releases the upload goroutine. memfs would store the file on
			// Close, so it is simply dropped.
			w.dst.Close()
		}
	}
	w.dst = nil
	w.finish()
	return errors.Join(errs...)
}

func (w *Writer) finish() {
	w.done = true
	if w.cancel != nil {
		w.cancel()
	}
	w.fsys.Close()
}

// syncDir makes a rename durable. It is best effort: some filesystems refuse
// to fsync a directory, and the rename itself has already succeeded.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}

func randomSuffix() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random temp suffix: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
