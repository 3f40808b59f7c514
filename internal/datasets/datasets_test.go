package datasets

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/internal/datasets/cocosynth"
	"github.com/sslight-go/sslight/sinks/idx"
	"github.com/sslight-go/sslight/transforms/source"
)

const fmnistMini = "../../testdata/fmnist-mini"

// readMini reads fmnist-mini's split with the IDX reader, as the test's
// independent view of the records.
func readMini(t *testing.T, split string) (*idx.Images, []uint8) {
	t.Helper()
	open := func(name string) *bytes.Reader {
		b, err := os.ReadFile(filepath.Join(fmnistMini, name))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.NewReader(b)
	}
	r, err := idx.Decompress(open(split + "-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.ReadImages(r, split)
	if err != nil {
		t.Fatal(err)
	}
	r, err = idx.Decompress(open(split + "-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := idx.ReadLabels(r, split)
	if err != nil {
		t.Fatal(err)
	}
	return im, lb
}

// TestExportIDX exports three records per class of fmnist-mini's training
// split and checks every file against the IDX records: the first three of
// each label, in the folder of their label, with their exact pixels.
func TestExportIDX(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	n, err := ExportIDX(ctx, filepath.Join(fmnistMini, "train-images-idx3-ubyte.gz"), filepath.Join(fmnistMini, "train-labels-idx1-ubyte.gz"), out, 3)
	if err != nil {
		t.Fatal(err)
	}
	im, labels := readMini(t, "train")
	var want []string // the first three indices of each label, as files
	seen := map[uint8]int{}
	for i, l := range labels {
		if seen[l] < 3 {
			seen[l]++
			want = append(want, filepath.Join(fmt.Sprintf("%02d_%d", l, l), fmt.Sprintf("train_%06d.png", i)))
		}
	}
	var got []string
	err = filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		got = append(got, rel)
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "train_"), ".png"))
		if err != nil {
			t.Fatalf("%s: not named after its record: %v", rel, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		g, ok := img.(*image.Gray)
		if !ok || g.Rect != image.Rect(0, 0, im.W, im.H) || !bytes.Equal(g.Pix, im.Record(i)) {
			t.Errorf("%s: not the %dx%d gray record %d of the IDX file", rel, im.W, im.H, i)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if n != 30 || !slices.Equal(got, want) {
		t.Errorf("exported %d files %v, want 30: %v", n, got, want)
	}

	// The same input gives the same bytes.
	again := t.TempDir()
	if _, err := ExportIDX(ctx, filepath.Join(fmnistMini, "train-images-idx3-ubyte.gz"), filepath.Join(fmnistMini, "train-labels-idx1-ubyte.gz"), again, 3); err != nil {
		t.Fatal(err)
	}
	for _, f := range want {
		a, _ := os.ReadFile(filepath.Join(out, f))
		b, err := os.ReadFile(filepath.Join(again, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two exports (%v)", f, err)
		}
	}
}

func TestExportIDXErrors(t *testing.T) {
	ctx := context.Background()
	img := filepath.Join(fmnistMini, "t10k-images-idx3-ubyte.gz")
	for _, tc := range []struct {
		images, labels string
		want           []string
	}{
		{img, filepath.Join(fmnistMini, "train-labels-idx1-ubyte.gz"), []string{"has 200 labels", "has 100 images"}},
		{filepath.Join(fmnistMini, "missing-images"), filepath.Join(fmnistMini, "t10k-labels-idx1-ubyte.gz"), []string{"read ", "missing-images"}},
		{filepath.Join(fmnistMini, "README.md"), filepath.Join(fmnistMini, "t10k-labels-idx1-ubyte.gz"), []string{"parse ", "README.md"}},
	} {
		_, err := ExportIDX(ctx, tc.images, tc.labels, t.TempDir(), 0)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("ExportIDX(%s, %s): err %v, want one containing %q", tc.images, tc.labels, err, w)
			}
		}
	}
}

func TestClassFolder(t *testing.T) {
	for _, tc := range []struct {
		label, max int
		name       string
		want       string
	}{
		{0, 9, "T-shirt/top", "00_T-shirt_top"},
		{9, 9, "Ankle boot", "09_Ankle_boot"},
		{3, 9, "3", "03_3"},
		{12, 12, "café", "12_caf_"},
		// Labels up to 100: three digits, so the sorted folders keep the
		// label order ("020" < "100"; "20" > "100" would not).
		{20, 100, "20", "020_20"},
		{100, 100, "100", "100_100"},
		{0, 100, "0", "000_0"},
	} {
		if got := ClassFolder(tc.label, tc.max, tc.name); got != tc.want {
			t.Errorf("ClassFolder(%d, %q) = %q, want %q", tc.label, tc.name, got, tc.want)
		}
	}
}

func TestClassNames(t *testing.T) {
	if got := classNames("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", 10); !slices.Equal(got, source.FashionMNISTClasses) {
		t.Errorf("Fashion-MNIST's file: names %v", got)
	}
	if got := classNames("/data/mnist/train-images-idx3-ubyte.gz", 10); got[0] != "0" || got[9] != "9" {
		t.Errorf("another IDX file: names %v, want the digits", got)
	}
	if got := classNames("/data/Fashion/x", 4); len(got) != 4 || got[3] != "3" {
		t.Errorf("a 'fashion' file of 4 classes: names %v, want the digits", got)
	}
}

// TestMakeCOCO writes a small set and reads it back with the coco source.
func TestMakeCOCO(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	cfg := cocosynth.DefaultConfig()
	cfg.Images, cfg.Canvas, cfg.Split = 3, 64, "val"
	set, err := MakeCOCO(ctx, filepath.Join(fmnistMini, "t10k-images-idx3-ubyte.gz"), filepath.Join(fmnistMini, "t10k-labels-idx1-ubyte.gz"), out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := source.List(ctx, source.FormatCOCO, out, source.Options{Split: "val"})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Dataset.Images) != 3 || len(l.Items) != 3 || len(l.Rejected) != 0 || len(l.Classes) != 10 {
		t.Errorf("generated %d images; the coco source lists %d, rejects %d, classes %v", len(set.Dataset.Images), len(l.Items), len(l.Rejected), l.Classes)
	}
	cfg.Canvas = 30 // smaller than an item at the largest scale
	if _, err := MakeCOCO(ctx, filepath.Join(fmnistMini, "t10k-images-idx3-ubyte.gz"), filepath.Join(fmnistMini, "t10k-labels-idx1-ubyte.gz"), t.TempDir(), cfg); err == nil ||
		!strings.Contains(err.Error(), "t10k-images-idx3-ubyte.gz") || !strings.Contains(err.Error(), "canvas 30 px") {
		t.Errorf("canvas 30: err %v, want one naming the file and the canvas", err)
	}
}

// TestExportIDXLabelOrder: labels {0–9, 20, 100} export to folders whose
// sorted order — ImageFolder's class order — is the label order, which two
// digits ("20" after "100") would break.
func TestExportIDXLabelOrder(t *testing.T) {
	dir := t.TempDir()
	labels := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 100}
	n := len(labels)
	img := []byte{0, 0, 8, 3, 0, 0, 0, byte(n), 0, 0, 0, 2, 0, 0, 0, 2}
	for i := range n {
		img = append(img, byte(i), byte(i), byte(i), byte(i))
	}
	lab := append([]byte{0, 0, 8, 1, 0, 0, 0, byte(n)}, labels...)
	images, lbls := filepath.Join(dir, "x-images-idx3-ubyte"), filepath.Join(dir, "x-labels-idx1-ubyte")
	if err := os.WriteFile(images, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lbls, lab, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := ExportIDX(context.Background(), images, lbls, out, 0); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, e := range entries {
		folders = append(folders, e.Name())
	}
	slices.Sort(folders)
	var order []int
	for _, f := range folders {
		v, err := strconv.Atoi(strings.SplitN(f, "_", 2)[0])
		if err != nil {
			t.Fatalf("folder %s has no label prefix", f)
		}
		order = append(order, v)
	}
	if !slices.IsSorted(order) || len(order) != n || order[n-1] != 100 || folders[10] != "020_20" {
		t.Errorf("sorted folders %v: label order %v, want 0…9, 20, 100", folders, order)
	}
}
