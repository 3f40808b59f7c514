package source

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sslight-go/sslight/sinks/storage"
)

// listImageNet lists <root>/<class>/... as torchvision's ImageFolder does:
// classes are the sorted names of the top-level folders, and every file
// beneath a class folder (at any depth, as ImageFolder's os.walk) is an
// item of that class. Files directly under root belong to no class and are
// rejected. Decoding happens later, by content, so a README inside a class
// folder is an item that the decoder dead-letters.
func listImageNet(ctx context.Context, root string, opts Options) (*Listing, error) {
	objs, err := walk(ctx, root)
	if err != nil {
		return nil, err
	}
	l := &Listing{}
	classSet := map[string]bool{}
	for _, o := range objs {
		if i := strings.IndexByte(o.Rel, '/'); i > 0 {
			classSet[o.Rel[:i]] = true
		}
	}
	if err := checkEmptyClasses(root, classSet); err != nil {
		return nil, err
	}
	if len(classSet) == 0 {
		return nil, fmt.Errorf("source: %w: no class folders under %s: expected <root>/<class>/<image> (ImageNet layout)", ErrLayout, root)
	}
	for c := range classSet {
		l.Classes = append(l.Classes, c)
	}
	// Byte order of UTF-8 is code point order: the order of Python's sorted().
	slices.Sort(l.Classes)
	label := make(map[string]int, len(l.Classes))
	for i, c := range l.Classes {
		label[c] = i
	}

	var keep func(o storage.Object) bool
	var sub *subset
	if opts.SubsetFile != "" {
		if sub, err = readSubset(ctx, opts.SubsetFile); err != nil {
			return nil, err
		}
		keep = sub.take
	}
	for _, o := range objs {
		if keep != nil && !keep(o) {
			continue
		}
		if o.Err != nil {
			l.Rejected = append(l.Rejected, Rejection{URI: o.URI, Key: o.Rel, Stage: StageList, Error: o.Err.Error(), IsItem: true})
			continue
		}
		i := strings.IndexByte(o.Rel, '/')
		if i <= 0 {
			l.Rejected = append(l.Rejected, Rejection{URI: o.URI, Key: o.Rel, Stage: StageList, IsItem: true,
				Error: "not inside a class folder: expected <root>/<class>/<image> (ImageNet layout)"})
			continue
		}
		l.Items = append(l.Items, Item{URI: o.URI, Key: o.Rel, Index: -1, Label: label[o.Rel[:i]],
			Size: o.Size, MTime: o.MTime, Generation: o.Generation})
	}
	if sub != nil {
		for _, e := range sub.missing() {
			r := Rejection{Key: e.key(), Stage: StageSubset, IsItem: true,
				Error: fmt.Sprintf("%s line %d: %s names no file under %s", opts.SubsetFile, e.line, e.key(), root)}
			if e.class != "" {
				r.URI = join(root, e.key())
			}
			l.Rejected = append(l.Rejected, r)
		}
	}
	return l, nil
}

// subsetEntry is one line of a subset file.
type subsetEntry struct {
	class string // "" for a bare file name
	name  string
	line  int
	found bool
}

func (e *subsetEntry) key() string {
	if e.class == "" {
		return e.name
	}
	return e.class + "/" + e.name
}

// subset is a parsed subset file: entries by class/name and by bare name.
type subset struct {
	entries []*subsetEntry
	byKey   map[string]*subsetEntry // "class/name" entries
	byName  map[string]*subsetEntry // bare-name entries
}

// take reports whether the subset selects o, marking the entry found. A
// bare name selects every file of that name in any class folder (ImageNet
// file names carry their wnid, so there is one).
func (s *subset) take(o storage.Object) bool {
	if e := s.byKey[o.Rel]; e != nil {
		e.found = true
		return true
	}
	if e := s.byName[path.Base(o.Rel)]; e != nil {
		e.found = true
		return true
	}
	return false
}

// missing returns the entries that selected nothing, in file order.
func (s *subset) missing() []*subsetEntry {
	var out []*subsetEntry
	for _, e := range s.entries {
		if !e.found {
			out = append(out, e)
		}
	}
	return out
}

// readSubset reads a subset file (local, gs:// or memfs://). Repeated
// entries are kept once: the subset is a set of files.
func readSubset(ctx context.Context, uri string) (*subset, error) {
	data, err := storage.ReadAll(ctx, uri, 0, MaxObjectBytes)
	if err != nil {
		return nil, fmt.Errorf("source: subset file %s: %w", uri, err)
	}
	s := &subset{byKey: map[string]*subsetEntry{}, byName: map[string]*subsetEntry{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		e := &subsetEntry{line: n}
		switch f := strings.Split(line, ","); len(f) {
		case 1:
			e.name = f[0]
		case 4:
			e.class, e.name = strings.TrimSpace(f[2]), strings.TrimSpace(f[3])
		default:
			return nil, fmt.Errorf("source: subset file %s line %d: %q: want a file name or \"index,label,wnid,file name\"", uri, n, line)
		}
		if e.name == "" || strings.ContainsAny(e.name, "/\\") || strings.Contains(e.class, "/") || e.name == "." || e.name == ".." {
			return nil, fmt.Errorf("source: subset file %s line %d: %q: want a bare file name", uri, n, line)
		}
		m := s.byName
		if e.class != "" {
			m = s.byKey
		}
		if m[e.key()] != nil {
			continue
		}
		m[e.key()] = e
		s.entries = append(s.entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("source: subset file %s: %w", uri, err)
	}
	if len(s.entries) == 0 {
		return nil, fmt.Errorf("source: subset file %s lists no files", uri)
	}
	return s, nil
}

// listFolder lists every file under root, unlabeled.
func listFolder(ctx context.Context, root string) (*Listing, error) {
	objs, err := walk(ctx, root)
	if err != nil {
		return nil, err
	}
	l := &Listing{}
	for _, o := range objs {
		if o.Err != nil {
			l.Rejected = append(l.Rejected, Rejection{URI: o.URI, Key: o.Rel, Stage: StageList, Error: o.Err.Error(), IsItem: true})
			continue
		}
		l.Items = append(l.Items, Item{URI: o.URI, Key: o.Rel, Index: -1, Label: -1, Size: o.Size, MTime: o.MTime, Generation: o.Generation})
	}
	if len(l.Items) == 0 && len(l.Rejected) == 0 {
		return nil, fmt.Errorf("source: %w: no files under %s", ErrLayout, root)
	}
	return l, nil
}

// checkEmptyClasses refuses a local root with a class folder (a folder, or
// a link to one, at the top) holding no file: ImageFolder raises on one
// rather than number the classes without it, and quietly dropping it would
// shift every later class's label. On object stores a folder is a name
// prefix, so an empty one does not exist.
func checkEmptyClasses(root string, classes map[string]bool) error {
	if !storage.IsLocal(root) {
		return nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	var empty []string
	for _, e := range entries {
		if classes[e.Name()] {
			continue
		}
		st, err := os.Stat(filepath.Join(root, e.Name())) // follows a link
		if err == nil && st.IsDir() {
			empty = append(empty, e.Name())
		}
	}
	if len(empty) > 0 {
		return fmt.Errorf("source: %w: class folder(s) %s under %s hold no file; torchvision's ImageFolder refuses an empty class too (the labels would shift): add images or remove the folder",
			ErrLayout, strings.Join(empty, ", "), root)
	}
	return nil
}
