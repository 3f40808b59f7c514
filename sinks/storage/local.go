package storage

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// localFS is the local filesystem. Local errors are not retried: a failing
// disk or a missing permission does not heal in seconds.
type localFS struct{}

func (localFS) open(_ context.Context, uri string) (io.ReadCloser, error) {
	return os.Open(uri)
}

func (localFS) readAll(_ context.Context, uri string, sizeHint, limit int64) ([]byte, error) {
	f, err := os.Open(uri)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return readLimited(f, size, sizeHint, limit)
}

// stat follows symbolic links and refuses anything but a regular file.
func (localFS) stat(_ context.Context, uri string) (Object, error) {
	st, err := os.Stat(uri)
	if err != nil {
		return Object{URI: uri}, err
	}
	if !st.Mode().IsRegular() {
		return Object{URI: uri}, fmt.Errorf("%s is not a regular file", uri)
	}
	return Object{URI: uri, Size: st.Size(), MTime: st.ModTime().UnixNano()}, nil
}

// size accepts any existing path, folders included, as Beam's local
// filesystem did: Exists(dir) is true.
func (localFS) size(_ context.Context, uri string) (int64, error) {
	st, err := os.Stat(uri)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// walk lists every regular file under root. Symbolic links to files are
// followed, links to folders are not (a loop cannot trap the walk), and
// sockets, devices and pipes are skipped (reading a pipe would block). An
// unreadable subfolder becomes one Object with Err set: its files cannot
// be listed, so the folder itself stands for them.
func (localFS) walk(_ context.Context, root string) ([]Object, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is a file, not a folder", root)
	}
	var objs []Object
	// The trailing separator makes WalkDir follow a root that is itself a
	// symbolic link (/data/imagenet -> /mnt/disk/imagenet); links below the
	// root are still not followed.
	top := root + string(filepath.Separator)
	err = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == top {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			objs = append(objs, Object{URI: p, Rel: filepath.ToSlash(rel), Err: err})
			return fs.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err == nil && info.Mode()&fs.ModeSymlink != 0 {
			info, err = os.Stat(p)
			if err == nil && info.IsDir() {
				return nil // links to folders are not followed
			}
		}
		if err == nil && !info.Mode().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		o := Object{URI: p, Rel: filepath.ToSlash(rel), Err: err}
		if err == nil {
			o.Size, o.MTime = info.Size(), info.ModTime().UnixNano()
		}
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return objs, nil
}

// list is filepath.Glob, sorted: folders match too.
func (localFS) list(_ context.Context, glob string) ([]string, error) {
	names, err := filepath.Glob(glob)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func (localFS) remove(_ context.Context, uri string) error { return os.Remove(uri) }

func (localFS) rename(_ context.Context, src, dst string) error { return os.Rename(src, dst) }
