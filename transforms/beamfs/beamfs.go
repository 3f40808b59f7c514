// Package beamfs adapts sinks/storage to Beam's filesystem registry, so
// Beam's own I/O (textio.Read of listing.jsonl, fileio) reads and writes
// through sslight's one storage layer, with its retry policy, instead of
// Beam's filesystems. Importing the package registers it; pipelines pass
// every path they give Beam through Path.
//
// Which scheme goes where, and why:
//
//	memfs://…   registered as "memfs": Beam's own memfs is no longer linked
//	            (nothing imports it), and sslight's memfs is the one the
//	            rest of the code reads and writes.
//	gs://…      Path rewrites it to "sslight-gs://…", registered here. The
//	            "gs" scheme itself is taken: Beam's gcs filesystem registers
//	            it from init, and beamx and the worker harness import it,
//	            so it is in every pipeline binary; filesystem.Register
//	            panics on a second registration of a scheme.
//	local paths stay with Beam's local filesystem ("default", also imported
//	            by beamx): the same os calls, no retrying to gain.
package beamfs

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"

	"github.com/sslight-go/sslight/sinks/storage"
)

// GCSScheme is the scheme under which Beam reaches gs:// objects through
// sinks/storage.
const GCSScheme = "sslight-gs"

func init() {
	filesystem.Register("memfs", newFS)
	filesystem.Register(GCSScheme, newFS)
}

// Path returns the path under which Beam's registry reaches uri through
// sinks/storage: gs://b/o becomes sslight-gs://b/o; other paths are
// unchanged.
func Path(uri string) string {
	if rest, ok := strings.CutPrefix(uri, "gs://"); ok {
		return GCSScheme + "://" + rest
	}
	return uri
}

// storageURI is Path's inverse.
func storageURI(p string) string {
	if rest, ok := strings.CutPrefix(p, GCSScheme+"://"); ok {
		return "gs://" + rest
	}
	return p
}

// fsys implements filesystem.Interface (and LastModifiedGetter, Remover,
// Renamer) over sinks/storage. It holds nothing: storage keeps one client
// per process.
type fsys struct{}

func newFS(context.Context) filesystem.Interface { return fsys{} }

var (
	_ filesystem.Interface          = fsys{}
	_ filesystem.LastModifiedGetter = fsys{}
	_ filesystem.Remover            = fsys{}
	_ filesystem.Renamer            = fsys{}
)

// Close does nothing: there is no per-filesystem state to release.
func (fsys) Close() error { return nil }

// List expands glob (storage's glob syntax) into Beam paths.
func (fsys) List(ctx context.Context, glob string) ([]string, error) {
	names, err := storage.List(ctx, storageURI(glob))
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		names[i] = Path(n)
	}
	return names, nil
}

// OpenRead opens a file for reading.
func (fsys) OpenRead(ctx context.Context, name string) (io.ReadCloser, error) {
	return storage.Open(ctx, storageURI(name))
}

// OpenWrite starts an atomic write: the file appears when the returned
// writer is closed without an earlier write error.
func (fsys) OpenWrite(ctx context.Context, name string) (io.WriteCloser, error) {
	w, err := storage.Create(ctx, storageURI(name))
	if err != nil {
		return nil, err
	}
	return committer{w}, nil
}

// committer commits on Close, as Beam's OpenWrite contract says.
type committer struct{ w *storage.Writer }

func (c committer) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c committer) Close() error                { return c.w.Commit() }

// Size returns a file's size in bytes.
func (fsys) Size(ctx context.Context, name string) (int64, error) {
	return storage.Size(ctx, storageURI(name))
}

// LastModified returns a file's modification time.
func (fsys) LastModified(ctx context.Context, name string) (time.Time, error) {
	o, err := storage.Stat(ctx, storageURI(name))
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, o.MTime), nil
}

// Remove deletes a file.
func (fsys) Remove(ctx context.Context, name string) error {
	return storage.Remove(ctx, storageURI(name))
}

// Rename moves a file within one scheme.
func (fsys) Rename(ctx context.Context, oldpath, newpath string) error {
	return storage.Rename(ctx, storageURI(oldpath), storageURI(newpath))
}
