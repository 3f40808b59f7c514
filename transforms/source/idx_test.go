package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sslight-go/sslight/augment"
)

// idxBytes writes an IDX file by hand: 00 00 08 <ndims>, big-endian dims, body.
func idxBytes(dims []uint32, body []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(body)
	return b.Bytes()
}

func gzipBytes(t testing.TB, raw []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fourImages is 4 records of 2x3 pixels; pixel values are 10*record + offset.
func fourImages() []byte {
	body := make([]byte, 4*6)
	for i := range body {
		body[i] = byte(10*(i/6) + i%6)
	}
	return idxBytes([]uint32{4, 2, 3}, body)
}

func TestListIDX(t *testing.T) {
	imgs := fourImages()
	lbls := idxBytes([]uint32{4}, []byte{3, 1, 4, 1})
	tests := []struct {
		name      string
		dir       string // folder name the files sit in
		files     map[string][]byte
		root      string // relative to the folder; "" for the folder
		split     string
		wantKeys  []string
		wantLbls  []int
		wantClass []string
		wantRej   string // key of the one rejection, "" for none
		wantWhy   string // what the rejection says (default: records are missing)
		wantErr   string
	}{
		{name: "raw files", files: map[string][]byte{"train-images-idx3-ubyte": imgs, "train-labels-idx1-ubyte": lbls},
			wantKeys: []string{"train-images-idx3-ubyte#000000", "train-images-idx3-ubyte#000001", "train-images-idx3-ubyte#000002", "train-images-idx3-ubyte#000003"},
			wantLbls: []int{3, 1, 4, 1}, wantClass: []string{"0", "1", "2", "3", "4"}},
		{name: "gzip images, raw labels", files: map[string][]byte{"train-images-idx3-ubyte.gz": gzipBytes(t, imgs), "train-labels-idx1-ubyte": lbls},
			wantLbls: []int{3, 1, 4, 1}, wantClass: []string{"0", "1", "2", "3", "4"}},
		{name: "t10k split", split: "t10k", files: map[string][]byte{"t10k-images-idx3-ubyte.gz": gzipBytes(t, imgs), "train-images-idx3-ubyte": []byte("junk")},
			wantKeys: []string{"t10k-images-idx3-ubyte.gz#000000", "t10k-images-idx3-ubyte.gz#000001", "t10k-images-idx3-ubyte.gz#000002", "t10k-images-idx3-ubyte.gz#000003"},
			wantLbls: []int{-1, -1, -1, -1}},
		{name: "explicit images file", root: "my-images-idx3-ubyte", files: map[string][]byte{"my-images-idx3-ubyte": imgs, "my-labels-idx1-ubyte.gz": gzipBytes(t, lbls)},
			wantKeys: []string{"my-images-idx3-ubyte#000000", "my-images-idx3-ubyte#000001", "my-images-idx3-ubyte#000002", "my-images-idx3-ubyte#000003"},
			wantLbls: []int{3, 1, 4, 1}, wantClass: []string{"0", "1", "2", "3", "4"}},
		{name: "truncated images keep complete records", files: map[string][]byte{"train-images-idx3-ubyte": imgs[:16+13], "train-labels-idx1-ubyte": lbls},
			wantLbls: []int{3, 1}, wantClass: []string{"0", "1", "2", "3", "4"}, wantRej: "train-images-idx3-ubyte#000002-000003"},
		{name: "truncated gzip stream", files: map[string][]byte{"train-images-idx3-ubyte.gz": gzipBytes(t, imgs[:16+20])},
			wantLbls: []int{-1, -1, -1}, wantRej: "train-images-idx3-ubyte.gz#000003-000003"},
		{name: "truncated labels", files: map[string][]byte{"train-images-idx3-ubyte": imgs, "train-labels-idx1-ubyte": lbls[:8+3]},
			wantLbls: []int{3, 1, 4}, wantClass: []string{"0", "1", "2", "3", "4"}, wantRej: "train-images-idx3-ubyte#000003-000003"},
		{name: "fashion folder names classes", dir: "Fashion_MNIST", files: map[string][]byte{"train-images-idx3-ubyte": imgs, "train-labels-idx1-ubyte": lbls},
			wantLbls: []int{3, 1, 4, 1}, wantClass: FashionMNISTClasses},
		{name: "fashion label out of range", dir: "fashion-mnist", files: map[string][]byte{"train-images-idx3-ubyte": imgs, "train-labels-idx1-ubyte": idxBytes([]uint32{4}, []byte{3, 1, 12, 1})},
			wantErr: "record 2 has label 12, outside Fashion-MNIST's 0..9"},
		{name: "label count differs", files: map[string][]byte{"train-images-idx3-ubyte": imgs, "train-labels-idx1-ubyte": idxBytes([]uint32{5}, []byte{1, 2, 3, 4, 5})},
			wantErr: "declares 5 labels, images file"},
		// A file that is not an IDX images file is one refused input (a dead
		// letter), not a failed run.
		{name: "labels where images belong", files: map[string][]byte{"train-images-idx3-ubyte": lbls},
			wantRej: "train-images-idx3-ubyte", wantWhy: "train-images-idx3-ubyte: magic 0x00000801 is uint8 [4], want images"},
		{name: "images where labels belong", files: map[string][]byte{"train-images-idx3-ubyte": imgs, "train-labels-idx1-ubyte": imgs},
			wantErr: "train-labels-idx1-ubyte: magic 0x00000803 is uint8 [4 2 3], want labels"},
		{name: "trailing bytes", files: map[string][]byte{"train-images-idx3-ubyte": append(slices.Clone(imgs), 0)},
			wantRej: "train-images-idx3-ubyte", wantWhy: "after the declared 24-byte body"},
		{name: "not IDX", files: map[string][]byte{"train-images-idx3-ubyte": photo(t, 0)},
			wantRej: "train-images-idx3-ubyte", wantWhy: "magic ff d8 ff e0 is not IDX"},
		{name: "no images file", files: map[string][]byte{"train-labels-idx1-ubyte": lbls},
			wantErr: "no train-images-idx3-ubyte[.gz] in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, base := range []string{t.TempDir(), memRoot(t)} {
				dir := base + "/" + tc.dir
				if tc.dir == "" {
					dir = base
				}
				writeTree(t, dir, tc.files)
				root := dir
				if tc.root != "" {
					root = dir + "/" + tc.root
				}
				l, err := List(context.Background(), FormatIDX, root, Options{Split: tc.split})
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("%s: error %v, want %q", base, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", base, err)
				}
				if tc.wantKeys != nil && !slices.Equal(keys(l.Items), tc.wantKeys) {
					t.Fatalf("%s: keys %v", base, keys(l.Items))
				}
				if !slices.Equal(labels(l.Items), tc.wantLbls) || !slices.Equal(l.Classes, tc.wantClass) {
					t.Fatalf("%s: labels %v classes %v", base, labels(l.Items), l.Classes)
				}
				for i, it := range l.Items {
					if it.Index != i || it.Size != int64(len(tc.files[filepath.Base(it.URI)])) || !strings.HasPrefix(it.URI, dir) {
						t.Fatalf("%s: item %+v", base, it)
					}
				}
				var rej []string
				why := tc.wantWhy
				if why == "" {
					why = "are missing"
				}
				for _, r := range l.Rejected {
					rej = append(rej, r.Key)
					if !r.IsItem || r.Stage != StageList || !strings.Contains(r.Error, why) {
						t.Fatalf("%s: rejection %+v", base, r)
					}
				}
				if tc.wantRej == "" && rej != nil || tc.wantRej != "" && !slices.Equal(rej, []string{tc.wantRej}) {
					t.Fatalf("%s: rejected %v, want %q", base, rej, tc.wantRej)
				}
			}
		})
	}
}

func TestIDXRecordsRGB(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string][]byte{"train-images-idx3-ubyte.gz": gzipBytes(t, fourImages())})
	l, err := List(context.Background(), FormatIDX, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Many workers ask for the same file at once: one load, one copy.
	var wg sync.WaitGroup
	got := make([]*IDXRecords, 8)
	errs := make([]error, 8)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[g], errs[g] = OpenIDX(context.Background(), l.Items[g%4])
		}()
	}
	wg.Wait()
	for g := range got {
		if errs[g] != nil || got[g] != got[0] {
			t.Fatalf("goroutine %d: %p %v, want the shared %p", g, got[g], errs[g], got[0])
		}
	}
	recs := got[0]
	if recs.Len() != 4 {
		t.Fatalf("Len %d", recs.Len())
	}
	dst := augment.NewImage(50, 50) // larger: RGB must resize it
	for _, it := range l.Items {
		if err := recs.RGB(it.Index, dst); err != nil {
			t.Fatal(err)
		}
		if dst.W != 3 || dst.H != 2 || dst.Stride != 9 {
			t.Fatalf("image %dx%d stride %d, want 3x2 stride 9", dst.W, dst.H, dst.Stride)
		}
		for y := range 2 {
			for x := range 3 {
				v := byte(10*it.Index + 3*y + x)
				px := dst.Pix[y*dst.Stride+3*x : y*dst.Stride+3*x+3]
				if px[0] != v || px[1] != v || px[2] != v {
					t.Fatalf("record %d pixel (%d,%d) = %v, want gray %d replicated", it.Index, x, y, px, v)
				}
			}
		}
	}
	if err := recs.RGB(4, dst); err == nil || !strings.Contains(err.Error(), "record 4 out of range 0..3") {
		t.Fatalf("out of range: %v", err)
	}

	// A file replaced after listing is refused, not served.
	writeTree(t, root, map[string][]byte{"train-images-idx3-ubyte.gz": fourImages()})
	stale := l.Items[0]
	stale.MTime++ // a different cache key, as a new listing of the old file would have
	if _, err := OpenIDX(context.Background(), stale); !errors.Is(err, ErrChanged) {
		t.Fatalf("replaced file: %v, want ErrChanged", err)
	}
	if _, err := OpenIDX(context.Background(), Item{URI: stale.URI, Index: -1}); err == nil {
		t.Fatal("OpenIDX of an object item: no error")
	}
}

func BenchmarkIDXRecordsRGB(b *testing.B) {
	body := make([]byte, 100*28*28)
	for i := range body {
		body[i] = byte(i)
	}
	root := b.TempDir()
	writeTree(b, root, map[string][]byte{"train-images-idx3-ubyte": idxBytes([]uint32{100, 28, 28}, body)})
	recs, err := LoadIDX(context.Background(), filepath.Join(root, "train-images-idx3-ubyte"))
	if err != nil {
		b.Fatal(err)
	}
	dst := augment.NewImage(28, 28)
	b.ReportAllocs()
	b.SetBytes(28 * 28 * 3)
	i := 0
	for b.Loop() {
		if err := recs.RGB(i%100, dst); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

const fashionDir = "/usr/share/datasets/fashion-mnist"

// TestListFashionMNIST lists the real Fashion-MNIST (Debian package
// dataset-fashion-mnist) and checks counts, class names and labels against
// the raw label bytes, read here independently of the idx package.
func TestListFashionMNIST(t *testing.T) {
	if _, err := os.Stat(filepath.Join(fashionDir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST not installed (Debian package dataset-fashion-mnist): %v", err)
	}
	splits := []struct {
		split string
		n     int
	}{{"t10k", 10000}, {"train", 60000}}
	if testing.Short() {
		splits = splits[:1]
	}
	for _, s := range splits {
		t.Run(s.split, func(t *testing.T) {
			l, err := List(context.Background(), FormatIDX, fashionDir, Options{Split: s.split})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != s.n || len(l.Rejected) != 0 || !slices.Equal(l.Classes, FashionMNISTClasses) {
				t.Fatalf("%d items, %d rejected, classes %v", len(l.Items), len(l.Rejected), l.Classes)
			}
			raw := gunzip(t, filepath.Join(fashionDir, s.split+"-labels-idx1-ubyte.gz"))
			if int(binary.BigEndian.Uint32(raw[4:8])) != s.n {
				t.Fatalf("raw label count %d", binary.BigEndian.Uint32(raw[4:8]))
			}
			for i, it := range l.Items {
				if it.Label != int(raw[8+i]) || it.Index != i {
					t.Fatalf("item %d: label %d index %d, raw label %d", i, it.Label, it.Index, raw[8+i])
				}
			}
			if s.split == "train" && !slices.Equal(labels(l.Items[:10]), []int{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}) {
				t.Fatalf("first train labels %v", labels(l.Items[:10]))
			}
			last := l.Items[len(l.Items)-1]
			if want := fmt.Sprintf("%s-images-idx3-ubyte.gz#%06d", s.split, s.n-1); last.Key != want {
				t.Fatalf("last key %q, want %q", last.Key, want)
			}
			if s.split == "train" {
				return // the pixel check below is the same code; t10k is smaller
			}
			recs, err := OpenIDX(context.Background(), last)
			if err != nil {
				t.Fatal(err)
			}
			rawImg := gunzip(t, filepath.Join(fashionDir, s.split+"-images-idx3-ubyte.gz"))
			var dst augment.Image
			if err := recs.RGB(last.Index, &dst); err != nil {
				t.Fatal(err)
			}
			want := rawImg[len(rawImg)-784:]
			for p, v := range want {
				if dst.Pix[3*p] != v || dst.Pix[3*p+1] != v || dst.Pix[3*p+2] != v {
					t.Fatalf("pixel %d = %v, raw %d", p, dst.Pix[3*p:3*p+3], v)
				}
			}
		})
	}
	// The images file named directly, its labels found beside it.
	l, err := List(context.Background(), FormatIDX, filepath.Join(fashionDir, "t10k-images-idx3-ubyte.gz"), Options{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 3 || !slices.Equal(l.Classes, FashionMNISTClasses) || l.Items[0].Label < 0 {
		t.Fatalf("explicit file: %+v", l.Items)
	}
}

func gunzip(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
