package augment

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// testPhotosDir holds the eight real JPEGs the tests use.
var testPhotosDir = filepath.Join("..", "testdata", "photos")

// testPhoto is one decoded test photo.
type testPhoto struct {
	name string
	data []byte
	img  *Image
}

// loadTestPhotos decodes every JPEG in testdata/photos with image/jpeg.
func loadTestPhotos(t testing.TB) []testPhoto {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testPhotosDir, "*.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no photos in %s", testPhotosDir)
	}
	var out []testPhoto
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		std, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		img := &Image{}
		if err := FromStdImage(img, std); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, testPhoto{name: filepath.Base(f), data: data, img: img})
	}
	return out
}

// patternImage is a deterministic w×h test image with structure in every
// channel (gradients plus a hash-like texture), independent of any op here.
func patternImage(w, h int) *Image {
	img := NewImage(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := 3 * (y*w + x)
			img.Pix[i] = uint8(x * 255 / max(w-1, 1))
			img.Pix[i+1] = uint8(y * 255 / max(h-1, 1))
			img.Pix[i+2] = uint8((x*131 + y*71 + x*y) % 256)
		}
	}
	return img
}

// equalImages reports whether a and b have the same size and pixels.
func equalImages(a, b *Image) bool {
	return a.W == b.W && a.H == b.H && bytes.Equal(a.Tight(), b.Tight())
}

// mustOrder is MakeJitterOrder for literals in tests.
func mustOrder(ops ...int) JitterOrder {
	o, err := MakeJitterOrder(ops...)
	if err != nil {
		panic(err)
	}
	return o
}
