package source

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkListImageNetLocal lists a local tree of 100 classes x 20 files.
func BenchmarkListImageNetLocal(b *testing.B) {
	root := b.TempDir()
	files := map[string][]byte{}
	for c := range 100 {
		for i := range 20 {
			files[fmt.Sprintf("n%08d/n%08d_%d.JPEG", c, c, i)] = []byte("x")
		}
	}
	writeTree(b, root, files)
	b.ReportAllocs()
	for b.Loop() {
		l, err := List(context.Background(), FormatImageNet, root, Options{})
		if err != nil || len(l.Items) != 2000 {
			b.Fatal(err)
		}
	}
}
