package beamfs

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
	"github.com/sslight-go/sslight/internal/beamtest"
	"github.com/sslight-go/sslight/sinks/storage"
)

func TestMain(m *testing.M) { beamtest.Main(m) }

func TestPath(t *testing.T) {
	for _, tc := range []struct{ uri, path string }{
		{"gs://b/out/listing.jsonl", "sslight-gs://b/out/listing.jsonl"},
		{"memfs://out/listing.jsonl", "memfs://out/listing.jsonl"},
		{"/data/out/listing.jsonl", "/data/out/listing.jsonl"},
	} {
		if got := Path(tc.uri); got != tc.path {
			t.Errorf("Path(%q) = %q, want %q", tc.uri, got, tc.path)
		}
		if got := storageURI(tc.path); got != tc.uri {
			t.Errorf("storageURI(%q) = %q, want %q", tc.path, got, tc.uri)
		}
	}
}

// TestInterface drives the adapter the way Beam's registry does, on memfs
// and on gs:// (the emulator), and checks every call against what
// sinks/storage itself reads back.
func TestInterface(t *testing.T) {
	gcsemutest.Start(t, "bucket")
	ctx := context.Background()
	for _, root := range []string{"memfs://beamfs-test", "gs://bucket/beamfs"} {
		t.Run(storage.Scheme(root), func(t *testing.T) {
			fsys, err := filesystem.New(ctx, Path(root+"/x"))
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			a, b := Path(root+"/d/a.txt"), Path(root+"/d/b.txt")
			w, err := fsys.OpenWrite(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if ok, _ := storage.Exists(ctx, root+"/d/a.txt"); ok {
				t.Fatal("visible before Close")
			}
			w.Write([]byte("hello "))
			w.Write([]byte("beam"))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got, err := storage.ReadFile(ctx, root+"/d/a.txt"); err != nil || string(got) != "hello beam" {
				t.Fatalf("storage reads %q, %v", got, err)
			}
			names, err := fsys.List(ctx, Path(root+"/d/*.txt"))
			if err != nil || !slices.Equal(names, []string{a}) {
				t.Fatalf("List = %v, %v; want [%s]", names, err, a)
			}
			if n, err := fsys.Size(ctx, a); n != 10 || err != nil {
				t.Errorf("Size = %d, %v", n, err)
			}
			lm, err := fsys.(filesystem.LastModifiedGetter).LastModified(ctx, a)
			if err != nil || time.Since(lm) > time.Minute || time.Since(lm) < -time.Minute {
				t.Errorf("LastModified = %v, %v", lm, err)
			}
			r, err := fsys.OpenRead(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if string(got) != "hello beam" {
				t.Errorf("OpenRead = %q", got)
			}
			if err := filesystem.Rename(ctx, fsys, a, b); err != nil {
				t.Fatal(err)
			}
			if ok, _ := storage.Exists(ctx, root+"/d/a.txt"); ok {
				t.Error("Rename left the source")
			}
			if err := fsys.(filesystem.Remover).Remove(ctx, b); err != nil {
				t.Fatal(err)
			}
			if ok, _ := storage.Exists(ctx, root+"/d/b.txt"); ok {
				t.Error("Remove left the file")
			}
		})
	}
}

// TestTextioRead reads a JSON Lines file with Beam's textio on Prism from
// each scheme a pipeline's listing can live on.
func TestTextioRead(t *testing.T) {
	gcsemutest.Start(t, "bucket")
	ctx := context.Background()
	lines := []string{`{"key":"a"}`, `{"key":"b"}`, `{"key":"c?#%"}`}
	var body bytes.Buffer
	for _, l := range lines {
		body.WriteString(l + "\n")
	}
	for _, uri := range []string{t.TempDir() + "/listing.jsonl", "memfs://textio/listing.jsonl", "gs://bucket/out/listing.jsonl"} {
		t.Run(storage.Scheme(uri), func(t *testing.T) {
			if err := storage.WriteFile(ctx, uri, body.Bytes()); err != nil {
				t.Fatal(err)
			}
			p, s := beam.NewPipelineWithRoot()
			got := textio.Read(s, Path(uri))
			passert.Equals(s, got, lines[0], lines[1], lines[2])
			if err := beamx.Run(ctx, p); err != nil {
				t.Fatalf("textio.Read(%s): %v", Path(uri), err)
			}
		})
	}
}
