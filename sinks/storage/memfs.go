package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"
)

// memFS is the memfs:// scheme: one map per process, keyed by the full URI,
// safe for concurrent use. Like an object store it has no folders: a name
// is any string, and "memfs://a/b" exists only as a whole. Tests use it; it
// also lets Beam pipelines (through transforms/beamfs) and plain code see
// the same files.
type memFS struct{}

type memFile struct {
	data  []byte // never modified once stored
	mtime time.Time
}

var mem struct {
	sync.RWMutex
	files map[string]memFile
}

func memGet(uri string) (memFile, bool) {
	mem.RLock()
	defer mem.RUnlock()
	f, ok := mem.files[uri]
	return f, ok
}

// memPut stores a copy of data at uri.
func memPut(uri string, data []byte) {
	f := memFile{data: bytes.Clone(data), mtime: time.Now()}
	if f.data == nil {
		f.data = []byte{}
	}
	mem.Lock()
	defer mem.Unlock()
	if mem.files == nil {
		mem.files = map[string]memFile{}
	}
	mem.files[uri] = f
}

func notExist(uri string) error { return fmt.Errorf("%s: %w", uri, fs.ErrNotExist) }

func (memFS) open(_ context.Context, uri string) (io.ReadCloser, error) {
	f, ok := memGet(uri)
	if !ok {
		return nil, notExist(uri)
	}
	return io.NopCloser(bytes.NewReader(f.data)), nil
}

func (memFS) readAll(_ context.Context, uri string, sizeHint, limit int64) ([]byte, error) {
	f, ok := memGet(uri)
	if !ok {
		return nil, notExist(uri)
	}
	return readLimited(bytes.NewReader(f.data), int64(len(f.data)), sizeHint, limit)
}

func (memFS) stat(_ context.Context, uri string) (Object, error) {
	f, ok := memGet(uri)
	if !ok {
		return Object{URI: uri}, notExist(uri)
	}
	return Object{URI: uri, Size: int64(len(f.data)), MTime: f.mtime.UnixNano()}, nil
}

func (m memFS) size(ctx context.Context, uri string) (int64, error) {
	o, err := m.stat(ctx, uri)
	return o.Size, err
}

// walk lists the names under root + "/". Nothing there is an error
// matching fs.ErrNotExist: a caller cannot tell a misspelt root from an
// empty one otherwise.
func (memFS) walk(_ context.Context, root string) ([]Object, error) {
	prefix := strings.TrimSuffix(root, "/") + "/"
	mem.RLock()
	var objs []Object
	for uri, f := range mem.files {
		if strings.HasPrefix(uri, prefix) {
			objs = append(objs, Object{URI: uri, Rel: uri[len(prefix):], Size: int64(len(f.data)), MTime: f.mtime.UnixNano()})
		}
	}
	mem.RUnlock()
	if len(objs) == 0 {
		return nil, notExist(root)
	}
	return objs, nil
}

func (memFS) list(_ context.Context, glob string) ([]string, error) {
	if err := validGlob(glob); err != nil {
		return nil, err
	}
	prefix := globPrefix(glob)
	mem.RLock()
	var names []string
	for uri := range mem.files {
		if strings.HasPrefix(uri, prefix) && matchGlob(glob, uri) {
			names = append(names, uri)
		}
	}
	mem.RUnlock()
	sort.Strings(names)
	return names, nil
}

func (memFS) remove(_ context.Context, uri string) error {
	mem.Lock()
	defer mem.Unlock()
	if _, ok := mem.files[uri]; !ok {
		return notExist(uri)
	}
	delete(mem.files, uri)
	return nil
}

func (memFS) rename(_ context.Context, src, dst string) error {
	mem.Lock()
	defer mem.Unlock()
	f, ok := mem.files[src]
	if !ok {
		return notExist(src)
	}
	delete(mem.files, src)
	mem.files[dst] = f
	return nil
}
