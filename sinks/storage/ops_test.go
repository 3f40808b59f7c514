package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
)

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"gs://b/ckpt/step-*/meta.json", "gs://b/ckpt/step-000012/meta.json", true},
		{"gs://b/ckpt/step-*/meta.json", "gs://b/ckpt/step-1/x/meta.json", false}, // '*' stays in its segment
		{"gs://b/ckpt/step-*/meta.json", "gs://b/ckpt/step-1/meta.jsonl", false},
		{"gs://b/**/meta.json", "gs://b/meta.json", true}, // "**" matches no segment too
		{"gs://b/**/meta.json", "gs://b/a/b/c/meta.json", true},
		{"gs://b/**", "gs://b/a/b", true},
		{"gs://b/a/**/x/*.tar", "gs://b/a/1/2/x/s.tar", true},
		{"gs://b/a/**/x/*.tar", "gs://b/a/1/2/y/s.tar", false},
		{"memfs://m/f?.bin", "memfs://m/f1.bin", true},
		{"memfs://m/f?.bin", "memfs://m/f12.bin", false},
		{"memfs://m/[0-4].json", "memfs://m/3.json", true},
		{"memfs://m/[0-4].json", "memfs://m/7.json", false},
		{`memfs://m/what\?.jpg`, "memfs://m/what?.jpg", true},
		{`memfs://m/what\?.jpg`, "memfs://m/whatX.jpg", false},
	}
	for _, tc := range tests {
		if err := validGlob(tc.pattern); err != nil {
			t.Fatalf("validGlob(%q): %v", tc.pattern, err)
		}
		if got := matchGlob(tc.pattern, tc.name); got != tc.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
	if err := validGlob("gs://b/[a"); err == nil {
		t.Error("an unclosed [ was accepted")
	}
}

// TestListWalkStatAcrossSchemes writes the same tree locally, in memfs and
// in the emulator and checks List, Walk and Stat agree on all three; on
// gs:// names with '?', '#' and '%' are plain names.
func TestListWalkStatAcrossSchemes(t *testing.T) {
	srv := gcsemutest.Start(t, "bucket")
	ctx := context.Background()
	tree := map[string]string{
		"ckpt/step-000001/meta.json": "{1}", "ckpt/step-000002/meta.json": "{22}", "ckpt/step-000002/backbone.safetensors": "w",
		"ckpt/notes.txt": "n", "odd/what?#100%.jpg": "odd",
	}
	for _, root := range []string{t.TempDir(), "memfs://walk-test", "gs://bucket/walk"} {
		t.Run(Scheme(root), func(t *testing.T) {
			for rel, data := range tree {
				if err := WriteFile(ctx, Join(root, rel), []byte(data)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := List(ctx, Join(root, "ckpt", "step-*", "meta.json"))
			want := []string{Join(root, "ckpt/step-000001/meta.json"), Join(root, "ckpt/step-000002/meta.json")}
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("List(step-*/meta.json) = %v, %v; want %v", got, err, want)
			}
			if got, err := List(ctx, Join(root, "nothing-*")); err != nil || len(got) != 0 {
				t.Fatalf("List of no match = %v, %v", got, err)
			}
			objs, err := Walk(ctx, root)
			if err != nil {
				t.Fatal(err)
			}
			var rels []string
			for _, o := range objs {
				rels = append(rels, o.Rel)
				if o.URI != Join(root, o.Rel) || o.Size != int64(len(tree[o.Rel])) || o.MTime == 0 || o.Err != nil {
					t.Errorf("Walk object %+v", o)
				}
				if (Scheme(root) == "gs") != (o.Generation != 0) {
					t.Errorf("%s: generation %d", o.URI, o.Generation)
				}
			}
			wantRels := []string{"ckpt/notes.txt", "ckpt/step-000001/meta.json", "ckpt/step-000002/backbone.safetensors", "ckpt/step-000002/meta.json", "odd/what?#100%.jpg"}
			if !slices.Equal(rels, wantRels) {
				t.Fatalf("Walk = %v, want %v", rels, wantRels)
			}
			odd := Join(root, "odd/what?#100%.jpg")
			st, err := Stat(ctx, odd)
			if err != nil || st.Size != 3 || st.URI != odd {
				t.Fatalf("Stat(%s) = %+v, %v", odd, st, err)
			}
			if b, err := ReadFile(ctx, odd); err != nil || string(b) != "odd" {
				t.Fatalf("ReadFile(%s) = %q, %v", odd, b, err)
			}
			if _, err := Stat(ctx, Join(root, "ckpt/none")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat of a missing file: %v", err)
			}
		})
	}
	// A sibling prefix is not under the root, and a console "folder"
	// placeholder is no file.
	WriteFile(ctx, "gs://bucket/walk2/x", []byte("x"))
	WriteFile(ctx, "gs://bucket/walk/folder/", nil)
	objs, err := Walk(ctx, "gs://bucket/walk/")
	if err != nil || len(objs) != len(tree) {
		t.Errorf("gs:// walk after a sibling and a placeholder: %d objects, %v", len(objs), err)
	}
	if objs, err := Walk(ctx, "gs://bucket/empty"); err != nil || len(objs) != 0 {
		t.Errorf("empty gs:// prefix: %v, %v", objs, err)
	}
	if _, err := Walk(ctx, "memfs://walk-test-none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty memfs:// root: %v, want fs.ErrNotExist", err)
	}
	if _, err := Walk(ctx, filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing local root: %v", err)
	}
	_ = srv
}

func TestWalkLocalUnreadableFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every folder, so an unreadable one cannot be made")
	}
	root := t.TempDir()
	WriteFile(context.Background(), filepath.Join(root, "ok", "a.jpg"), []byte("a"))
	WriteFile(context.Background(), filepath.Join(root, "locked", "b.jpg"), []byte("b"))
	if err := os.Chmod(filepath.Join(root, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "locked"), 0o755) })
	objs, err := Walk(context.Background(), root)
	if err != nil || len(objs) != 2 || objs[0].Rel != "locked" || objs[0].Err == nil || objs[1].Rel != "ok/a.jpg" || objs[1].Err != nil {
		t.Fatalf("Walk = %+v, %v: want the locked folder as one object with an error, and ok/a.jpg", objs, err)
	}
}

func TestReadAllLimit(t *testing.T) {
	srv := gcsemutest.Start(t, "bucket")
	_ = srv
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 1000)
	for _, uri := range []string{filepath.Join(t.TempDir(), "f"), "memfs://readall/f", "gs://bucket/f"} {
		if err := WriteFile(ctx, uri, data); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			hint, limit int64
			tooLarge    bool
		}{{0, 0, false}, {1000, 1000, false}, {10, 5000, false}, {5000, 999, true}, {0, 1, true}} {
			got, err := ReadAll(ctx, uri, tc.hint, tc.limit)
			if tc.tooLarge {
				if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), uri) {
					t.Errorf("%s limit %d: %v, want ErrTooLarge naming the file", uri, tc.limit, err)
				}
				continue
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s hint %d limit %d: %d bytes, %v", uri, tc.hint, tc.limit, len(got), err)
			}
		}
	}
	// A stream that is not a regular file has no size up front: the limit
	// still holds.
	got, err := readLimited(io.MultiReader(bytes.NewReader(data), bytes.NewReader(data)), -1, 0, 1500)
	if !errors.Is(err, ErrTooLarge) || got != nil {
		t.Errorf("unsized stream over the limit: %d bytes, %v", len(got), err)
	}
}

func TestRemoveRename(t *testing.T) {
	gcsemutest.Start(t, "bucket")
	ctx := context.Background()
	for _, root := range []string{t.TempDir(), "memfs://rename", "gs://bucket/rename"} {
		src, dst := Join(root, "a.json"), Join(root, "b.json")
		if err := WriteFile(ctx, src, []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(ctx, dst, []byte("old")); err != nil {
			t.Fatal(err)
		}
		if err := Rename(ctx, src, dst); err != nil {
			t.Fatalf("Rename on %s: %v", root, err)
		}
		if ok, _ := Exists(ctx, src); ok {
			t.Errorf("%s still exists after Rename", src)
		}
		if b, err := ReadFile(ctx, dst); err != nil || string(b) != "a" {
			t.Errorf("%s after Rename = %q, %v", dst, b, err)
		}
		if err := Remove(ctx, dst); err != nil {
			t.Fatal(err)
		}
		if ok, _ := Exists(ctx, dst); ok {
			t.Errorf("%s exists after Remove", dst)
		}
		if err := Remove(ctx, dst); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Remove of a missing %s: %v", dst, err)
		}
		if err := Rename(ctx, src, dst); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Rename of a missing %s: %v", src, err)
		}
	}
	if err := Rename(ctx, "memfs://x/a", "/tmp/a"); err == nil {
		t.Error("a rename across schemes was accepted")
	}
	for _, f := range []func() error{
		func() error { _, err := ReadFile(ctx, "s3://b/k"); return err },
		func() error { _, err := Walk(ctx, "s3://b/k"); return err },
		func() error { return Remove(ctx, "s3://b/k") },
	} {
		if err := f(); !errors.Is(err, ErrUnsupportedScheme) {
			t.Errorf("s3://: %v", err)
		}
	}
}

// TestMemfsConcurrent hammers memfs:// from many goroutines (run with
// -race): every writer's files read back whole, listings see whole files.
func TestMemfsConcurrent(t *testing.T) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				uri := fmt.Sprintf("memfs://concurrent/g%d/f%02d", g, i)
				data := bytes.Repeat([]byte{byte(g)}, 100+i)
				if err := WriteFile(ctx, uri, data); err != nil {
					errs <- err
					return
				}
				if got, err := ReadFile(ctx, uri); err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("%s: %d bytes, %v", uri, len(got), err)
					return
				}
				if _, err := List(ctx, "memfs://concurrent/*/f0*"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	objs, err := Walk(ctx, "memfs://concurrent")
	if err != nil || len(objs) != 8*50 {
		t.Fatalf("Walk: %d objects, %v", len(objs), err)
	}
}

func TestCleanTemporaries(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	files := map[string]time.Time{
		"epoch-0000/.tmp-a.tar-0123456789abcdef": old,        // a killed writer's: removed
		"epoch-0000/.tmp-b.tar-fedcba9876543210": time.Now(), // a live writer's: kept
		"epoch-0000/a.tar":                       old,        // a committed file: kept
		".tmp-manifest.json-00":                  old,        // removed
		"tmp-not-ours":                           old,
	}
	for rel, mtime := range files {
		p := filepath.Join(out, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	// An in-progress write of this process is young, so it survives too.
	w, err := Create(ctx, filepath.Join(out, "epoch-0001", "c.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	removed, err := CleanTemporaries(ctx, out, StaleTemporaryAge)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{filepath.Join(out, ".tmp-manifest.json-00"), filepath.Join(out, "epoch-0000/.tmp-a.tar-0123456789abcdef")}
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	left := localFiles(t, out)
	if len(left) != len(files)-2+1 {
		t.Errorf("left %v", left)
	}
	if err := w.Commit(); err != nil {
		t.Errorf("the live write was disturbed: %v", err)
	}
	if removed, err := CleanTemporaries(ctx, filepath.Join(out, "none"), time.Hour); err != nil || removed != nil {
		t.Errorf("missing prefix: %v, %v", removed, err)
	}
	for _, p := range []string{"gs://bucket/out", "memfs://out"} {
		if removed, err := CleanTemporaries(ctx, p, time.Hour); err != nil || removed != nil {
			t.Errorf("%s: %v, %v (writes there create no temporaries)", p, removed, err)
		}
	}
	if _, err := CleanTemporaries(ctx, "s3://b/out", time.Hour); !errors.Is(err, ErrUnsupportedScheme) {
		t.Errorf("s3://: %v", err)
	}
}

func TestPolicyFromEnv(t *testing.T) {
	for _, tc := range []struct {
		attempts, timeout string
		want              Policy
		err               string
	}{
		{"", "", DefaultPolicy(), ""},
		{"3", "", Policy{3, 2 * time.Minute, 500 * time.Millisecond, 30 * time.Second}, ""},
		{"", "90s", Policy{6, 90 * time.Second, 500 * time.Millisecond, 30 * time.Second}, ""},
		{"0", "", Policy{}, EnvAttempts + `="0": want a positive integer`},
		{"six", "", Policy{}, EnvAttempts},
		{"", "-1s", Policy{}, EnvTimeout + `="-1s"`},
		{"", "2", Policy{}, "want a positive duration"},
	} {
		t.Setenv(EnvAttempts, tc.attempts)
		t.Setenv(EnvTimeout, tc.timeout)
		if tc.attempts == "" {
			os.Unsetenv(EnvAttempts)
		}
		if tc.timeout == "" {
			os.Unsetenv(EnvTimeout)
		}
		p, err := PolicyFromEnv()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q/%q: %v, want an error containing %q", tc.attempts, tc.timeout, err, tc.err)
			}
			continue
		}
		if err != nil || p != tc.want {
			t.Errorf("%q/%q: %+v, %v; want %+v", tc.attempts, tc.timeout, p, err, tc.want)
		}
	}
	if err := SetPolicy(Policy{Attempts: 0, Timeout: time.Second}); err == nil {
		t.Error("SetPolicy accepted 0 attempts")
	}
}

func TestPauseBounds(t *testing.T) {
	p := Policy{Attempts: 10, Timeout: time.Minute, Backoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}
	for attempt, bound := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 9: 400 * time.Millisecond} {
		var longest time.Duration
		for range 2000 {
			d := p.pause(attempt)
			if d < 0 || d > bound {
				t.Fatalf("pause(%d) = %s, outside [0, %s]", attempt, d, bound)
			}
			longest = max(longest, d)
		}
		if longest < bound*9/10 { // 2000 uniform draws: the largest is within 10% of the bound
			t.Errorf("pause(%d): largest of 2000 draws %s, bound %s: not drawn up to the bound", attempt, longest, bound)
		}
	}
}
