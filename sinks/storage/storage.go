// Package storage reads and atomically writes files through Apache Beam's
// filesystem registry, so the same code serves local paths, gs:// objects and
// the in-memory memfs:// used by tests.
//
// Importing this package registers the local, gcs and memfs filesystems; no
// other sslight package needs to blank-import them.
//
// Beam's gcs filesystem builds a new GCS client for every filesystem.New
// call, so each helper here opens the filesystem, does one job and closes it
// again. That costs a client per file, which is negligible next to the
// shard-sized objects sslight moves.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	gcs "cloud.google.com/go/storage"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"

	// Register every filesystem sslight uses, in one place.
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/memfs"
)

// Scheme returns the URI scheme of uri ("gs", "memfs") or "" for a local
// path. It mirrors how Beam's registry picks a filesystem.
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

// Open opens uri for reading. Closing the reader also releases the
// filesystem. A missing file yields an error matching fs.ErrNotExist.
func Open(ctx context.Context, uri string) (io.ReadCloser, error) {
	fsys, err := filesystem.New(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", uri, err)
	}
	r, err := fsys.OpenRead(ctx, uri)
	if err != nil {
		fsys.Close()
		return nil, fmt.Errorf("open %s: %w", uri, classify(err))
	}
	return &readCloser{ReadCloser: r, fsys: fsys}, nil
}

// readCloser closes the filesystem after the file, so a GCS client lives
// exactly as long as the read that needed it.
type readCloser struct {
	io.ReadCloser
	fsys filesystem.Interface
}

func (r *readCloser) Close() error {
	return errors.Join(r.ReadCloser.Close(), r.fsys.Close())
}

// ReadFile returns the whole content of uri.
func ReadFile(ctx context.Context, uri string) ([]byte, error) {
	r, err := Open(ctx, uri)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	return b, nil
}

// Size returns the size of uri in bytes. A missing file yields an error
// matching fs.ErrNotExist.
func Size(ctx context.Context, uri string) (int64, error) {
	fsys, err := filesystem.New(ctx, uri)
	if err != nil {
		return 0, fmt.Errorf("size %s: %w", uri, err)
	}
	defer fsys.Close()
	n, err := fsys.Size(ctx, uri)
	if err != nil {
		return 0, fmt.Errorf("size %s: %w", uri, classify(err))
	}
	return n, nil
}

// Exists reports whether uri names an existing file.
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

// classify maps each backend's "no such file" onto fs.ErrNotExist so callers
// test one sentinel whatever the scheme.
func classify(err error) error {
	if errors.Is(err, gcs.ErrObjectNotExist) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	return err
}

// List returns the files matching glob (Beam's filesystem glob: local
// paths, gs:// and memfs://), sorted.
func List(ctx context.Context, glob string) ([]string, error) {
	fsys, err := filesystem.New(ctx, glob)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", glob, err)
	}
	defer fsys.Close()
	names, err := fsys.List(ctx, glob)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", glob, classify(err))
	}
	sort.Strings(names)
	return names, nil
}
