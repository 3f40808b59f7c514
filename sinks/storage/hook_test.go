package storage

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
)

// TestWriteHook: on every scheme the hook sees each change before it is
// made — commits, rename destinations, removals, in order — and an error
// from it leaves storage as it was: no new file, no local temporary, the
// renamed and removed files in place.
func TestWriteHook(t *testing.T) {
	gcsemutest.Start(t, "bucket")
	ctx := context.Background()
	errStop := errors.New("stopped by the test")
	for _, root := range []string{t.TempDir(), "memfs://hook", "gs://bucket/hook"} {
		t.Run(Scheme(root), func(t *testing.T) {
			a, b, c := Join(root, "a.json"), Join(root, "b.json"), Join(root, "sub", "c.json")
			var mu sync.Mutex
			var seen []string
			failing := map[string]bool{}
			SetWriteHook(func(uri string) error {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, uri)
				if failing[uri] {
					return errStop
				}
				return nil
			})
			t.Cleanup(func() { SetWriteHook(nil) })

			if err := WriteFile(ctx, a, []byte("a")); err != nil {
				t.Fatal(err)
			}
			if err := Rename(ctx, a, b); err != nil {
				t.Fatal(err)
			}
			if err := Remove(ctx, b); err != nil {
				t.Fatal(err)
			}
			if want := []string{a, b, b}; !slices.Equal(seen, want) {
				t.Errorf("the hook saw %v, want %v", seen, want)
			}

			failing[c] = true
			w, err := Create(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("c"))
			if err := w.Commit(); !errors.Is(err, errStop) || !strings.Contains(err.Error(), c) {
				t.Errorf("commit under a failing hook: %v, want the hook's error naming %s", err, c)
			}
			if ok, _ := Exists(ctx, c); ok {
				t.Errorf("%s is visible after its commit failed", c)
			}
			if IsLocal(root) {
				left, _ := filepath.Glob(filepath.Join(root, "sub", tempPrefix+"*"))
				if len(left) > 0 {
					t.Errorf("temporaries left: %v", left)
				}
			}

			if err := WriteFile(ctx, a, []byte("a")); err != nil {
				t.Fatal(err)
			}
			failing[b] = true
			if err := Rename(ctx, a, b); !errors.Is(err, errStop) {
				t.Errorf("rename under a failing hook: %v", err)
			}
			if got, err := ReadFile(ctx, a); err != nil || string(got) != "a" {
				t.Errorf("%s after a failed rename: %q, %v", a, got, err)
			}
			failing[a] = true
			if err := Remove(ctx, a); !errors.Is(err, errStop) {
				t.Errorf("remove under a failing hook: %v", err)
			}
			if ok, _ := Exists(ctx, a); !ok {
				t.Errorf("%s is gone after its remove failed", a)
			}

			SetWriteHook(nil)
			if err := WriteFile(ctx, c, []byte("c")); err != nil {
				t.Errorf("after SetWriteHook(nil): %v", err)
			}
		})
	}
	if writeHook.Load() != nil {
		t.Error("the hook is still installed")
	}
}
