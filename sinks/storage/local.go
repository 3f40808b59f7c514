package storage

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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

// walk lists every regular file under root, as torchvision's ImageFolder
// walks (os.walk with followlinks=True): symbolic links to folders are
// followed (a link back to a folder being walked, a loop, is reported and
// not followed). A symbolic link to a file is followed only when its
// target lies inside the root or inside a linked folder being walked: a
// link out of the source (x.JPEG -> /etc/passwd) is reported, never read.
// Sockets, devices and pipes are skipped (reading a pipe would block). An
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
	// A root that is itself a link (/data/imagenet -> /mnt/disk/imagenet)
	// is walked under the given name.
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	w := &localWalk{root: root, inside: []string{real}}
	if err := w.dir(root, real, ""); err != nil {
		return nil, err
	}
	return w.objs, nil
}

// localWalk is one walk's state: what it found and the real folders a
// file link may point into.
type localWalk struct {
	root   string
	inside []string
	objs   []Object
}

func (w *localWalk) add(p, rel string, err error) {
	w.objs = append(w.objs, Object{URI: p, Rel: rel, Err: err})
}

// dir walks path, whose real location is real, as rel under the root.
func (w *localWalk) dir(path, real, rel string) error {
	entries, err := os.ReadDir(path)
	if err != nil {
		if rel == "" {
			return err
		}
		w.add(path, rel, err)
		return nil
	}
	for _, e := range entries {
		p, r := filepath.Join(path, e.Name()), e.Name()
		if rel != "" {
			r = rel + "/" + e.Name()
		}
		if e.Type()&fs.ModeSymlink != 0 {
			w.link(p, real, r)
			continue
		}
		if e.IsDir() {
			if err := w.dir(p, filepath.Join(real, e.Name()), r); err != nil {
				return err
			}
			continue
		}
		info, err := e.Info()
		if err == nil && !info.Mode().IsRegular() {
			continue
		}
		w.file(p, r, info, err)
	}
	return nil
}

// link follows the symbolic link p found in the folder whose real path is
// parent.
func (w *localWalk) link(p, parent, rel string) {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		w.add(p, rel, fmt.Errorf("broken symbolic link: %w", err))
		return
	}
	info, err := os.Stat(target)
	if err != nil {
		w.add(p, rel, err)
		return
	}
	if info.IsDir() {
		if within(parent, target) {
			w.add(p, rel, fmt.Errorf("symbolic link to %s, a folder that holds it (a loop): not followed", target))
			return
		}
		w.inside = append(w.inside, target)
		if err := w.dir(p, target, rel); err != nil {
			w.add(p, rel, err)
		}
		w.inside = w.inside[:len(w.inside)-1]
		return
	}
	if !info.Mode().IsRegular() {
		return
	}
	for _, in := range w.inside {
		if within(target, in) {
			w.file(p, rel, info, nil)
			return
		}
	}
	w.add(p, rel, fmt.Errorf("symbolic link to %s, outside the source root %s: not read", target, w.root))
}

func (w *localWalk) file(p, rel string, info fs.FileInfo, err error) {
	o := Object{URI: p, Rel: rel, Err: err}
	if err == nil {
		o.Size, o.MTime = info.Size(), info.ModTime().UnixNano()
	}
	w.objs = append(w.objs, o)
}

// within reports whether path is dir or lies below it (both real paths).
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
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
