package source

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// imagenetTree is a small ImageNet-layout tree of real photos: two classes
// given out of order, a nested file, a README in a class folder and a stray
// file at the root.
func imagenetTree(t *testing.T) map[string][]byte {
	return map[string][]byte{
		"n02/n02_7.JPEG":     photo(t, 1),
		"n01/n01_10.JPEG":    photo(t, 0),
		"n01/sub/n01_3.JPEG": photo(t, 2),
		"n01/README.txt":     []byte("not an image\n"),
		"stray.jpg":          photo(t, 0),
	}
}

func TestListImageNet(t *testing.T) {
	local := t.TempDir()
	writeTree(t, local, imagenetTree(t))
	// (An empty class folder is an error: TestListImageNetMatchesImageFolder.)
	mem := memRoot(t)
	writeTree(t, mem, imagenetTree(t))

	for _, root := range []string{local, mem + "/"} {
		t.Run(root[:min(len(root), 8)], func(t *testing.T) {
			l, err := List(context.Background(), FormatImageNet, root, Options{})
			if err != nil {
				t.Fatal(err)
			}
			wantRoot := strings.TrimSuffix(root, "/")
			if l.Root != wantRoot || l.Format != FormatImageNet {
				t.Fatalf("root %q format %q", l.Root, l.Format)
			}
			if !slices.Equal(l.Classes, []string{"n01", "n02"}) {
				t.Fatalf("classes %v", l.Classes)
			}
			wantKeys := []string{"n01/README.txt", "n01/n01_10.JPEG", "n01/sub/n01_3.JPEG", "n02/n02_7.JPEG"}
			if !slices.Equal(keys(l.Items), wantKeys) || !slices.Equal(labels(l.Items), []int{0, 0, 0, 1}) {
				t.Fatalf("items %v labels %v", keys(l.Items), labels(l.Items))
			}
			files := imagenetTree(t)
			for _, it := range l.Items {
				if it.Index != -1 || it.Size != int64(len(files[it.Key])) || it.MTime == 0 {
					t.Fatalf("item %+v: want index -1, size %d, an mtime", it, len(files[it.Key]))
				}
				if want := join(wantRoot, it.Key); it.URI != want {
					t.Fatalf("uri %q, want %q", it.URI, want)
				}
				got, err := ReadItem(context.Background(), it)
				if err != nil || !bytes.Equal(got, files[it.Key]) {
					t.Fatalf("ReadItem(%s): %d bytes, %v", it.Key, len(got), err)
				}
			}
			if len(l.Rejected) != 1 {
				t.Fatalf("rejected %+v", l.Rejected)
			}
			r := l.Rejected[0]
			if r.Key != "stray.jpg" || !r.IsItem || r.Stage != StageList || !strings.Contains(r.Error, "not inside a class folder") || r.URI != join(wantRoot, "stray.jpg") {
				t.Fatalf("rejection %+v", r)
			}
			if l.Inputs() != 5 {
				t.Fatalf("Inputs() = %d, want 5", l.Inputs())
			}
		})
	}
}

func TestListImageNetLocalStat(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, imagenetTree(t))
	l, err := List(context.Background(), FormatImageNet, root, Options{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 2 || l.Items[0].Key != "n01/README.txt" {
		t.Fatalf("limit 2: %v", keys(l.Items))
	}
	for _, it := range l.Items {
		st, err := os.Stat(it.URI)
		if err != nil {
			t.Fatal(err)
		}
		if it.Size != st.Size() || it.MTime != st.ModTime().UnixNano() || !filepath.IsAbs(it.URI) {
			t.Fatalf("item %+v, stat size %d mtime %d", it, st.Size(), st.ModTime().UnixNano())
		}
	}
}

func TestListImageNetSymlinkedRoot(t *testing.T) {
	target := t.TempDir()
	writeTree(t, target, imagenetTree(t))
	link := filepath.Join(t.TempDir(), "imagenet")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	l, err := List(context.Background(), FormatImageNet, link, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 4 || l.Items[0].URI != filepath.Join(link, "n01", "README.txt") {
		t.Fatalf("items %+v: want 4 under the link's path", l.Items)
	}
}

func TestListImageNetRelativeRoot(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, imagenetTree(t))
	t.Chdir(root)
	l, err := List(context.Background(), FormatImageNet, ".", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Root != root || l.Items[0].URI != filepath.Join(root, "n01", "README.txt") {
		t.Fatalf("root %q, first uri %q: want absolute paths under %q", l.Root, l.Items[0].URI, root)
	}
}

func TestSubset(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, imagenetTree(t))
	tests := []struct {
		name     string
		subset   string
		wantKeys []string
		wantRej  []string // keys of rejections
		wantErr  string
	}{
		{
			name:     "bare names (SimCLR/DINO style), blank lines, a repeat",
			subset:   "n01_10.JPEG\n\nn02_7.JPEG\nn01_10.JPEG\n",
			wantKeys: []string{"n01/n01_10.JPEG", "n02/n02_7.JPEG"},
		},
		{
			name:     "SSLight index,label,wnid,file lines",
			subset:   "1021436,797,n01,n01_3.JPEG\r\n7,1,n02,n02_7.JPEG\r\n",
			wantKeys: []string{"n02/n02_7.JPEG"}, // the file is at n01/sub/, not n01/
			wantRej:  []string{"n01/n01_3.JPEG"},
		},
		{
			name:     "names that do not exist",
			subset:   "n01_10.JPEG\nn09_1.JPEG\n5,9,n09,n09_2.JPEG\n",
			wantKeys: []string{"n01/n01_10.JPEG"},
			wantRej:  []string{"n09_1.JPEG", "n09/n09_2.JPEG"},
		},
		{
			name:     "a stray root file named in the subset is still rejected",
			subset:   "stray.jpg\n",
			wantKeys: []string{},
			wantRej:  []string{"stray.jpg"},
		},
		{name: "bad line", subset: "a,b\n", wantErr: `line 1: "a,b": want a file name or "index,label,wnid,file name"`},
		{name: "path in line", subset: "n01/n01_10.JPEG\n", wantErr: "want a bare file name"},
		{name: "empty", subset: "\n\n", wantErr: "lists no files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := filepath.Join(t.TempDir(), "subset.txt")
			if err := os.WriteFile(sub, []byte(tc.subset), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := List(context.Background(), FormatImageNet, root, Options{SubsetFile: sub})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), sub) {
					t.Fatalf("error %v, want one naming %s containing %q", err, sub, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keys(l.Items), tc.wantKeys) {
				t.Fatalf("items %v, want %v", keys(l.Items), tc.wantKeys)
			}
			var rej []string
			for _, r := range l.Rejected {
				rej = append(rej, r.Key)
				if !r.IsItem {
					t.Fatalf("rejection %+v should count as an input", r)
				}
				if r.Stage == StageSubset && !strings.Contains(r.Error, "names no file") {
					t.Fatalf("rejection %+v", r)
				}
			}
			if !slices.Equal(rej, tc.wantRej) {
				t.Fatalf("rejected %v, want %v", rej, tc.wantRej)
			}
			// Classes come from the folders, not the subset: labels stay
			// those of the full data set.
			if !slices.Equal(l.Classes, []string{"n01", "n02"}) {
				t.Fatalf("classes %v", l.Classes)
			}
		})
	}
}

func TestListErrors(t *testing.T) {
	strayOnly := t.TempDir()
	writeTree(t, strayOnly, map[string][]byte{"a.jpg": photo(t, 0)})
	empty := t.TempDir()
	file := filepath.Join(strayOnly, "a.jpg")
	good := t.TempDir()
	writeTree(t, good, imagenetTree(t))
	tests := []struct {
		name, format, root string
		opts               Options
		want               string
		is                 error
	}{
		{"no class folders", FormatImageNet, strayOnly, Options{}, "no class folders under " + strayOnly + ": expected <root>/<class>/<image> (ImageNet layout)", ErrLayout},
		{"empty root", FormatImageNet, empty, Options{}, "no class folders under " + empty, ErrLayout},
		{"missing root", FormatImageNet, filepath.Join(empty, "nope"), Options{}, "no such file or directory", os.ErrNotExist},
		{"root is a file", FormatFolder, file, Options{}, "is a file, not a folder", nil},
		{"empty folder", FormatFolder, empty, Options{}, "no files under", ErrLayout},
		{"empty memfs", FormatFolder, "memfs://nothing-here", Options{}, "memfs://nothing-here", os.ErrNotExist},
		{"unknown format", "tfrecord", empty, Options{}, `unknown source format "tfrecord"`, ErrFormat},
		{"subset with coco", FormatCOCO, empty, Options{SubsetFile: "x"}, "a subset file applies to the imagenet format", nil},
		{"negative limit", FormatFolder, empty, Options{Limit: -1}, "limit -1", nil},
		{"glob in gs root", FormatFolder, "gs://b/train*", Options{}, "contains a glob character", nil},
		{"bucketless", FormatFolder, "gs://", Options{}, "names no bucket", nil},
		{"empty root string", FormatFolder, "", Options{}, "empty root", nil},
		{"subset missing", FormatImageNet, good, Options{SubsetFile: filepath.Join(empty, "none.txt")}, "subset file " + filepath.Join(empty, "none.txt"), os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := List(context.Background(), tc.format, tc.root, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
		})
	}
}

func TestListFolder(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string][]byte{
		"a.jpg":          photo(t, 0),
		"x/y/z/deep.jpg": photo(t, 1),
		"x/b.png":        []byte("png?"),
	})
	outside := t.TempDir()
	writeTree(t, outside, map[string][]byte{"linked.jpg": photo(t, 2), "dir/in.jpg": photo(t, 2)})
	if err := os.Symlink(filepath.Join(outside, "linked.jpg"), filepath.Join(root, "link.jpg")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "dir"), filepath.Join(root, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "x", "y", "z", "deep.jpg"), filepath.Join(root, "inlink.jpg")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(root, "x", "loop")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := List(context.Background(), FormatFolder, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// As ImageFolder (os.walk followlinks=True), a linked folder is
	// walked; a file link is followed only into the source (inlink.jpg),
	// never out of it (link.jpg: reported, not read); a link back up is a
	// loop, reported.
	want := []string{"a.jpg", "inlink.jpg", "linkdir/in.jpg", "x/b.png", "x/y/z/deep.jpg"}
	if !slices.Equal(keys(l.Items), want) || l.Classes != nil {
		t.Fatalf("items %v classes %v; want %v", keys(l.Items), l.Classes, want)
	}
	var rej []string
	for _, r := range l.Rejected {
		rej = append(rej, r.Key+": "+r.Error)
	}
	if len(rej) != 2 || !strings.HasPrefix(rej[0], "link.jpg: symbolic link to "+filepath.Join(outside, "linked.jpg")+", outside the source root") ||
		!strings.HasPrefix(rej[1], "x/loop: symbolic link to "+root+", a folder that holds it (a loop)") {
		t.Fatalf("rejected %q", rej)
	}
	for _, it := range l.Items {
		if it.Label != -1 || it.Index != -1 {
			t.Fatalf("item %+v: want label and index -1", it)
		}
	}
	if l.Items[1].Size != int64(len(photo(t, 1))) {
		t.Fatalf("symlinked file size %d, want the target's %d", l.Items[1].Size, len(photo(t, 1)))
	}

	mem := memRoot(t)
	writeTree(t, mem, map[string][]byte{"a.jpg": photo(t, 0), "x/y/z/deep.jpg": photo(t, 1)})
	l, err = List(context.Background(), FormatFolder, mem, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys(l.Items), []string{"a.jpg", "x/y/z/deep.jpg"}) {
		t.Fatalf("memfs items %v", keys(l.Items))
	}
}

func TestReadItemErrors(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string][]byte{"c/a.jpg": photo(t, 0)})
	l, err := List(context.Background(), FormatImageNet, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	it := l.Items[0]
	// Replace the file after listing: the read must not pass it off as the
	// listed object.
	if err := os.WriteFile(it.URI, photo(t, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadItem(context.Background(), it); !errors.Is(err, ErrChanged) {
		t.Fatalf("changed file: error %v, want ErrChanged", err)
	}
	if err := os.Remove(it.URI); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadItem(context.Background(), it); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), it.URI) {
		t.Fatalf("deleted file: error %v", err)
	}
	if _, err := ReadItem(context.Background(), Item{URI: it.URI, Key: "f#000001", Index: 1}); !errors.Is(err, ErrRecordItem) {
		t.Fatalf("record item: error %v, want ErrRecordItem", err)
	}
}

// TestListImageNetMatchesImageFolder: a symbolic link to a class folder is
// a class (ImageFolder follows it), an empty class folder is an error (as
// ImageFolder raises), and a file link out of the source root is a
// rejection whose target is never read.
func TestListImageNetMatchesImageFolder(t *testing.T) {
	root, elsewhere := t.TempDir(), t.TempDir()
	writeTree(t, root, map[string][]byte{"a/1.jpg": photo(t, 0), "c/2.jpg": photo(t, 1)})
	writeTree(t, elsewhere, map[string][]byte{"b/3.jpg": photo(t, 2), "secret": []byte("root:x:0:0")})
	if err := os.Symlink(filepath.Join(elsewhere, "b"), filepath.Join(root, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "secret"), filepath.Join(root, "c", "x.JPEG")); err != nil {
		t.Fatal(err)
	}
	l, err := List(context.Background(), FormatImageNet, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.Classes, []string{"a", "b", "c"}) || !slices.Equal(keys(l.Items), []string{"a/1.jpg", "b/3.jpg", "c/2.jpg"}) {
		t.Fatalf("classes %v items %v: want the linked class b between a and c", l.Classes, keys(l.Items))
	}
	if l.Items[1].Label != 1 || l.Items[2].Label != 2 {
		t.Errorf("labels %d %d, want 1 2 (ImageFolder's)", l.Items[1].Label, l.Items[2].Label)
	}
	if len(l.Rejected) != 1 || l.Rejected[0].Key != "c/x.JPEG" || !strings.Contains(l.Rejected[0].Error, "outside the source root") || strings.Contains(l.Rejected[0].Error, "root:x") {
		t.Fatalf("rejected %+v: want c/x.JPEG refused without its bytes", l.Rejected)
	}
	if err := os.Mkdir(filepath.Join(root, "d-empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := List(context.Background(), FormatImageNet, root, Options{}); err == nil || !strings.Contains(err.Error(), "class folder(s) d-empty") {
		t.Errorf("an empty class folder: err %v", err)
	}
}
