package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/sinks/storage"
)

// photo returns one of the three real JPEGs in testdata/source/photos.
func photo(t testing.TB, i int) []byte {
	t.Helper()
	names := []string{"44_1_wallpapers.jpg", "44_0_wallpapers.jpg", "63_1_wallpapers.jpg"}
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "source", "photos", names[i]))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeTree writes files (slash paths → contents) under root, a local
// folder or a memfs:// URI.
func writeTree(t testing.TB, root string, files map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	for rel, data := range files {
		if !strings.Contains(root, "://") {
			p := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := storage.WriteFile(ctx, root+"/"+rel, data); err != nil {
			t.Fatal(err)
		}
	}
}

// memRoot returns a memfs:// root unique to the test (memfs is one
// process-wide map).
func memRoot(t testing.TB) string {
	return "memfs://" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
}

// keys returns the items' keys in order.
func keys(items []Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Key
	}
	return out
}

func labels(items []Item) []int {
	out := make([]int, len(items))
	for i, it := range items {
		out[i] = it.Label
	}
	return out
}
