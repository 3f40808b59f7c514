// Package storage is sslight's one storage layer: it opens, reads, stats,
// lists, globs, removes, renames and atomically writes files on local
// paths, gs:// (Google Cloud Storage, through cloud.google.com/go/storage,
// which honours STORAGE_EMULATOR_HOST) and memfs:// (an in-memory store,
// process-wide, used by tests).
//
// Everything on gs:// is retried under one Policy (DefaultPolicy, the
// environment, or SetPolicy): HTTP 408, 429 and 5xx and broken connections
// are retried with jittered exponential backoff, a bounded number of times
// within a bounded time, and an object that stays unreadable ends in an
// error that says so (ErrGaveUp) with the last error, never in a hang.
// Writes are retried too: sslight's objects are idempotent by design (the
// same name always gets the same bytes), and every write is checked against
// the CRC32C and size the store reports. Retrying returns a process-wide
// status (Retrying) for progress lines.
//
// Beam pipelines reach the same code through transforms/beamfs, which
// adapts this package to Beam's filesystem registry; this package knows
// nothing of Beam.
//
// Globs: local globs are filepath.Glob's; on gs:// and memfs:// a pattern
// matches '/'-separated segments, each as path.Match does ('*', '?', '[…]'
// within a segment), and a segment "**" matches any number of segments.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Scheme returns the URI scheme of uri ("gs", "memfs") or "" for a local
// path.
func Scheme(uri string) string {
	if i := strings.Index(uri, "://"); i > 0 {
		return uri[:i]
	}
	return ""
}

// IsLocal reports whether uri names a file on the local filesystem.
func IsLocal(uri string) bool { return Scheme(uri) == "" }

// Join appends path elements to base, keeping its scheme intact: local paths
// use the OS separator, URIs use '/'. Join("gs://b/out", "epoch-0000", "x")
// is "gs://b/out/epoch-0000/x".
func Join(base string, elem ...string) string {
	scheme := Scheme(base)
	if scheme == "" {
		return filepath.Join(append([]string{base}, elem...)...)
	}
	rest := base[len(scheme)+len("://"):]
	joined := path.Join(append([]string{rest}, elem...)...)
	if strings.HasPrefix(rest, "/") && !strings.HasPrefix(joined, "/") {
		joined = "/" + joined
	}
	return scheme + "://" + joined
}

// ErrUnsupportedScheme: a URI whose scheme is none of local paths, gs://
// and memfs://.
var ErrUnsupportedScheme = errors.New("storage: scheme not supported (want a local path, gs:// or memfs://)")

// ErrTooLarge is returned (wrapped) by ReadAll for an object over its limit.
var ErrTooLarge = errors.New("object too large")

// Object is one file found by Walk or Stat.
type Object struct {
	URI string
	// Rel is the slash path relative to the walked root ("" from Stat).
	Rel  string
	Size int64
	// MTime is the last modification, unix nanoseconds (0 when unknown).
	MTime int64
	// Generation is the GCS object generation (0 elsewhere): unlike MTime
	// it changes on every overwrite, so it identifies the exact bytes.
	Generation int64
	// Err is set when the file was found but cannot be used: a local
	// folder that cannot be read (its files cannot be listed), or a file
	// that cannot be stat'ed.
	Err error

	crc32c uint32 // gs:// Stat only: the object's CRC32C
}

// backend is one scheme's implementation.
type backend interface {
	open(ctx context.Context, uri string) (io.ReadCloser, error)
	readAll(ctx context.Context, uri string, sizeHint, limit int64) ([]byte, error)
	stat(ctx context.Context, uri string) (Object, error)
	size(ctx context.Context, uri string) (int64, error)
	walk(ctx context.Context, root string) ([]Object, error)
	list(ctx context.Context, glob string) ([]string, error)
	remove(ctx context.Context, uri string) error
	rename(ctx context.Context, src, dst string) error
}

func backendFor(uri string) (backend, error) {
	switch Scheme(uri) {
	case "":
		return localFS{}, nil
	case "gs":
		return gcsFS{}, nil
	case "memfs":
		return memFS{}, nil
	}
	return nil, ErrUnsupportedScheme
}

// Open opens uri for reading. On gs:// a stream that breaks is reopened
// where it broke (the same object generation) under the policy. A missing
// file yields an error matching fs.ErrNotExist.
func Open(ctx context.Context, uri string) (io.ReadCloser, error) {
	b, err := backendFor(uri)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", uri, err)
	}
	r, err := b.open(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", uri, err)
	}
	return r, nil
}

// ReadFile returns the whole content of uri.
func ReadFile(ctx context.Context, uri string) ([]byte, error) {
	return ReadAll(ctx, uri, 0, 0)
}

// ReadAll returns the whole content of uri, refusing an object over limit
// bytes with ErrTooLarge (limit ≤ 0: no limit); where the store tells the
// size before the body, the refusal costs no download. sizeHint (≤ 0:
// unknown), typically the size a listing gave, sizes the buffer so the
// read fills one allocation. On gs:// the whole read is retried under the
// policy.
func ReadAll(ctx context.Context, uri string, sizeHint, limit int64) ([]byte, error) {
	b, err := backendFor(uri)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	data, err := b.readAll(ctx, uri, sizeHint, limit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	return data, nil
}

// readLimited reads r whole into a buffer sized from size (the object's,
// -1 unknown) or sizeHint, refusing more than limit bytes (limit ≤ 0: no
// limit).
func readLimited(r io.Reader, size, sizeHint, limit int64) ([]byte, error) {
	if limit > 0 && size > limit {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrTooLarge, size, limit)
	}
	want := sizeHint
	if size >= 0 {
		want = size
	}
	if limit > 0 {
		want = min(want, limit)
		r = io.LimitReader(r, limit+1)
	}
	// One byte over the expected size lets io.ReadAll see EOF without
	// growing the buffer.
	buf := make([]byte, 0, max(0, want)+1)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(len(buf), 512))
		}
	}
	if limit > 0 && int64(len(buf)) > limit {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, limit)
	}
	return buf, nil
}

// Stat describes the regular file uri (local symbolic links are followed).
// A missing file yields an error matching fs.ErrNotExist.
func Stat(ctx context.Context, uri string) (Object, error) {
	b, err := backendFor(uri)
	if err != nil {
		return Object{URI: uri}, fmt.Errorf("stat %s: %w", uri, err)
	}
	o, err := b.stat(ctx, uri)
	if err != nil {
		return o, fmt.Errorf("stat %s: %w", uri, err)
	}
	return o, nil
}

// Size returns the size of uri in bytes. A missing file yields an error
// matching fs.ErrNotExist.
func Size(ctx context.Context, uri string) (int64, error) {
	b, err := backendFor(uri)
	if err != nil {
		return 0, fmt.Errorf("size %s: %w", uri, err)
	}
	n, err := b.size(ctx, uri)
	if err != nil {
		return 0, fmt.Errorf("size %s: %w", uri, err)
	}
	return n, nil
}

// Exists reports whether uri names an existing file (locally: any existing
// path).
func Exists(ctx context.Context, uri string) (bool, error) {
	_, err := Size(ctx, uri)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// WriteFile atomically replaces uri with data (see Create).
func WriteFile(ctx context.Context, uri string, data []byte) error {
	w, err := Create(ctx, uri)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// List returns the files matching glob, sorted (see the package comment
// for the glob syntax of each scheme). No match is an empty list.
func List(ctx context.Context, glob string) ([]string, error) {
	b, err := backendFor(glob)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", glob, err)
	}
	names, err := b.list(ctx, glob)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", glob, err)
	}
	return names, nil
}

// Walk returns every file under root, recursively, sorted by Rel. Locally
// only regular files count, found as ImageFolder's os.walk(followlinks=True)
// finds them (links to folders followed, loops reported; links to files
// followed only into the root, a link out of it reported in Object.Err
// and never read; see Object.Err for unreadable folders too) and a missing root, or a
// root that is a file, is an error. On gs:// it is one paged prefix
// listing that carries sizes, times and generations, and an empty prefix is
// an empty listing. On memfs:// a root holding nothing is an error matching
// fs.ErrNotExist.
func Walk(ctx context.Context, root string) ([]Object, error) {
	b, err := backendFor(root)
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	objs, err := b.walk(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Rel, b.Rel) })
	return objs, nil
}

// Remove deletes the file uri. A missing file yields an error matching
// fs.ErrNotExist.
func Remove(ctx context.Context, uri string) error {
	b, err := backendFor(uri)
	if err != nil {
		return fmt.Errorf("remove %s: %w", uri, err)
	}
	if err := beforeChange(uri); err != nil {
		return fmt.Errorf("remove %s: %w", uri, err)
	}
	if err := b.remove(ctx, uri); err != nil {
		return fmt.Errorf("remove %s: %w", uri, err)
	}
	return nil
}

// Rename moves src to dst (same scheme), replacing dst. Locally it is
// os.Rename; on gs:// a server-side copy, checked against the source's
// size and CRC32C, then a delete of the source.
func Rename(ctx context.Context, src, dst string) error {
	if Scheme(src) != Scheme(dst) {
		return fmt.Errorf("rename %s to %s: not the same scheme", src, dst)
	}
	b, err := backendFor(src)
	if err != nil {
		return fmt.Errorf("rename %s: %w", src, err)
	}
	if err := beforeChange(dst); err != nil {
		return fmt.Errorf("rename %s to %s: %w", src, dst, err)
	}
	if err := b.rename(ctx, src, dst); err != nil {
		return fmt.Errorf("rename %s to %s: %w", src, dst, err)
	}
	return nil
}
