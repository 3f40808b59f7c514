package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
)

// testPolicy sets a policy for the test and restores the old one after.
func testPolicy(t *testing.T, p Policy) {
	t.Helper()
	old, _ := CurrentPolicy()
	if err := SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { SetPolicy(old) })
}

// smallChunks makes every gs:// object over 256 KiB (the smallest chunk
// GCS takes) a multi-chunk resumable upload for the test.
func smallChunks(t *testing.T) {
	old := chunkSize
	chunkSize = 256 << 10
	t.Cleanup(func() { chunkSize = old })
}

// emulatorObjects returns name → content of every object in bucket under
// prefix, read from the emulator itself (not through the proxy).
func emulatorObjects(t *testing.T, srv *fakestorage.Server, bucket, prefix string) map[string][]byte {
	t.Helper()
	list, err := srv.ListObjectsWithOptionsPaginated(bucket, fakestorage.ListOptions{Prefix: prefix})
	if err != nil || list.NextPageToken != "" {
		t.Fatalf("list the emulator's %s: %v (next page %q)", prefix, err, list.NextPageToken)
	}
	objs := list.Objects
	out := map[string][]byte{}
	for _, o := range objs {
		full, err := srv.GetObject(bucket, o.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[o.Name]; dup {
			t.Errorf("object %s listed twice", o.Name)
		}
		out[o.Name] = full.Content
	}
	return out
}

// writeRedoing writes data to uri in pieces through a Writer, and writes it
// again when the writer says to, as a caller (a Beam bundle, the trainer)
// does: it returns how many writes it took.
func writeRedoing(t *testing.T, uri string, data []byte) int {
	t.Helper()
	ctx := context.Background()
	for n := 1; n <= 10; n++ {
		w, err := Create(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += 100 << 10 {
			if _, err = w.Write(data[off:min(off+100<<10, len(data))]); err != nil {
				break
			}
		}
		if err == nil {
			err = w.Commit()
		} else {
			w.Abort()
		}
		if err == nil {
			return n
		}
		if !strings.Contains(err.Error(), uri) {
			t.Fatalf("write %s failed with an error that does not name it: %v", uri, err)
		}
		t.Logf("write %d of %s failed, writing it again: %v", n, uri, err)
	}
	t.Fatalf("%s: 10 writes failed", uri)
	return 0
}

// TestGCSUnderFaults runs writes (small and multi-chunk), reads (whole and
// streaming), globs, walks, renames and removes against the emulator behind
// a proxy injecting each kind of fault into a quarter of all requests, and
// checks that the bucket ends exactly as a clean run leaves it:
// byte-identical objects, none duplicated, none left over.
func TestGCSUnderFaults(t *testing.T) {
	smallChunks(t)
	testPolicy(t, Policy{Attempts: 12, Timeout: 30 * time.Second, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	proxy := gcsemutest.StartFaulty(t, 7, "bucket")
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	content := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, kind := range gcsemutest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			root := "gs://bucket/" + string(kind)
			files := map[string][]byte{ // rel → content
				"a/small-0.bin": content(10), "a/small-1.bin": content(5000), "a/b/small-2.bin": content(100 << 10),
				"a/small-3.bin": nil, "odd/what?#100%.bin": content(777),
				"big/multi-0.bin": content(700 << 10), "big/multi-1.bin": content(256<<10 + 1),
			}
			if err := proxy.SetRules(gcsemutest.Rule{Kind: kind, P: 0.25, Delay: 5 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			before, injected := Retrying(), proxy.InjectedTotal()
			redone := 0
			for _, rel := range slices.Sorted(maps.Keys(files)) {
				redone += writeRedoing(t, root+"/"+rel, files[rel]) - 1
			}
			for rel, want := range files {
				uri := root + "/" + rel
				got, err := ReadFile(ctx, uri)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("ReadFile(%s): %d bytes, %v; want %d bytes", uri, len(got), err, len(want))
				}
				r, err := Open(ctx, uri)
				if err != nil {
					t.Fatal(err)
				}
				got, err = io.ReadAll(r)
				r.Close()
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("Open(%s): %d bytes, %v; want %d bytes", uri, len(got), err, len(want))
				}
			}
			names, err := List(ctx, root+"/a/*")
			if err != nil || !slices.Equal(names, []string{root + "/a/small-0.bin", root + "/a/small-1.bin", root + "/a/small-3.bin"}) {
				t.Fatalf("List(a/*) = %v, %v", names, err)
			}
			objs, err := Walk(ctx, root)
			if err != nil || len(objs) != len(files) {
				t.Fatalf("Walk: %d objects, %v", len(objs), err)
			}
			for _, o := range objs {
				if int64(len(files[o.Rel])) != o.Size || o.URI != root+"/"+o.Rel || o.Generation == 0 {
					t.Fatalf("Walk object %+v", o)
				}
			}
			// Rename the small files, remove the big ones.
			want := map[string][]byte{}
			for rel, data := range files {
				uri := root + "/" + rel
				if strings.HasPrefix(rel, "big/") {
					if err := Remove(ctx, uri); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := Rename(ctx, uri, root+"/moved/"+rel); err != nil {
					t.Fatal(err)
				}
				want[string(kind)+"/moved/"+rel] = data
			}
			proxy.SetRules()
			got := emulatorObjects(t, proxy.Server, "bucket", string(kind)+"/")
			if len(got) != len(want) {
				t.Errorf("bucket holds %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
			}
			for name, data := range want {
				if !bytes.Equal(got[name], data) {
					t.Errorf("%s: %d bytes, want %d identical bytes", name, len(got[name]), len(data))
				}
			}
			after := Retrying()
			t.Logf("%s: %d requests faulted, %d retries, %d writes redone by the caller",
				kind, proxy.InjectedTotal()-injected, after.Retries-before.Retries, redone)
			if proxy.InjectedTotal() == injected {
				t.Error("no fault was injected: the test tested nothing")
			}
			if kind != gcsemutest.Delay && after.Retries == before.Retries {
				t.Error("faults were injected but nothing was retried")
			}
			if after.Waiting != before.Waiting {
				t.Errorf("%d operations still counted as waiting", after.Waiting-before.Waiting)
			}
		})
	}
}

// TestGCSGivesUp: an object that always answers 503 ends in an error that
// says how many attempts and how long, with the last error, within the
// policy's bound; so does one whose answers never come in time. While an
// operation waits, Retrying counts it.
func TestGCSGivesUp(t *testing.T) {
	testPolicy(t, Policy{Attempts: 3, Timeout: time.Second, Backoff: 100 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	proxy := gcsemutest.StartFaulty(t, 1, "bucket")
	ctx := context.Background()
	for _, name := range []string{"perm/x.jpg", "slow/x.jpg"} {
		if err := WriteFile(ctx, "gs://bucket/"+name, []byte("bytes")); err != nil {
			t.Fatal(err)
		}
	}
	proxy.SetRules(gcsemutest.Rule{Kind: gcsemutest.Unavailable, Object: "^perm/", P: 1},
		gcsemutest.Rule{Kind: gcsemutest.Delay, Object: "^slow/", P: 1, Delay: 5 * time.Second})

	done := make(chan error, 1)
	start := time.Now()
	go func() { _, err := ReadFile(ctx, "gs://bucket/perm/x.jpg"); done <- err }()
	var seen RetryStatus
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && seen.Waiting == 0; time.Sleep(5 * time.Millisecond) {
		seen = Retrying()
	}
	err := <-done
	elapsed := time.Since(start)
	if seen.Waiting == 0 || !strings.Contains(seen.LastError, "503") {
		t.Errorf("while retrying, Retrying() = %+v: want an operation waiting after a 503", seen)
	}
	if !errors.Is(err, ErrGaveUp) || !strings.Contains(err.Error(), "after 3 attempt(s)") || !strings.Contains(err.Error(), "503") ||
		!strings.Contains(err.Error(), "gs://bucket/perm/x.jpg") {
		t.Errorf("permanently failing read: %v", err)
	}
	if elapsed > time.Second {
		t.Errorf("3 attempts with 100 ms pauses took %s", elapsed)
	}
	r, err := Open(ctx, "gs://bucket/perm/x.jpg")
	if err == nil {
		r.Close()
	}
	if !errors.Is(err, ErrGaveUp) {
		t.Errorf("Open of a permanently failing object: %v", err)
	}

	start = time.Now()
	_, err = Stat(ctx, "gs://bucket/slow/x.jpg")
	if elapsed := time.Since(start); !errors.Is(err, ErrGaveUp) || elapsed > 2*time.Second || !strings.Contains(err.Error(), "limit 3 attempts, 1s") {
		t.Errorf("an object whose answers come after the timeout: %v after %s", err, elapsed)
	}
	if w := Retrying().Waiting; w != 0 {
		t.Errorf("%d operations still counted as waiting", w)
	}

	// Not found is not retried.
	start = time.Now()
	if _, err := ReadFile(ctx, "gs://bucket/none"); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrGaveUp) || time.Since(start) > 50*time.Millisecond {
		t.Errorf("missing object: %v after %s", err, time.Since(start))
	}
}

// TestGCSChecksumMismatch: when the store keeps other bytes than were sent,
// a held object is rewritten until it matches; if it never does, and for a
// streamed object that cannot be re-sent, the damaged object is removed and
// the error says why and names it.
func TestGCSChecksumMismatch(t *testing.T) {
	smallChunks(t)
	testPolicy(t, Policy{Attempts: 4, Timeout: 10 * time.Second, Backoff: time.Millisecond, MaxBackoff: time.Millisecond})
	proxy := gcsemutest.StartFaulty(t, 3, "bucket")
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB: held, one request

	proxy.SetRules(gcsemutest.Rule{Kind: gcsemutest.Corrupt, Path: "uploadType=multipart", P: 0.5})
	for i := range 6 {
		uri := fmt.Sprintf("gs://bucket/rewritten-%d", i)
		if err := WriteFile(ctx, uri, data); err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
	}
	if proxy.Injected(gcsemutest.Corrupt) == 0 {
		t.Fatal("nothing was corrupted: the test tested nothing")
	}
	proxy.SetRules()
	for name, got := range emulatorObjects(t, proxy.Server, "bucket", "rewritten-") {
		if !bytes.Equal(got, data) {
			t.Errorf("%s holds damaged bytes", name)
		}
	}

	for _, tc := range []struct {
		name string
		rule gcsemutest.Rule
		data []byte
	}{
		{"held", gcsemutest.Rule{Kind: gcsemutest.Corrupt, Path: "uploadType=multipart", P: 1}, data},
		// Every chunk after the session's start names its upload_id.
		{"streamed", gcsemutest.Rule{Kind: gcsemutest.Corrupt, Path: "upload_id=", P: 1}, bytes.Repeat(data, 5)},
	} {
		proxy.SetRules(tc.rule)
		uri := "gs://bucket/damaged-" + tc.name
		err := WriteFile(ctx, uri, tc.data)
		proxy.SetRules()
		if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), uri) {
			t.Errorf("%s: always damaged: %v, want a checksum mismatch naming %s", tc.name, err, uri)
		}
		if _, err := proxy.Server.GetObject("bucket", "damaged-"+tc.name); err == nil {
			t.Errorf("%s: the damaged object was left visible", tc.name)
		}
	}
}

// TestGCSAbortStreamed: abandoning a write after chunks were streamed
// leaves no object.
func TestGCSAbortStreamed(t *testing.T) {
	smallChunks(t)
	srv := gcsemutest.Start(t, "bucket")
	w, err := Create(context.Background(), "gs://bucket/abandoned")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.GetObject("bucket", "abandoned"); err == nil {
		t.Error("an upload aborted after streaming created an object")
	}
}

// TestGCSStreamGivesUp: a stream whose every answer breaks before its end
// (the client then reopens it by itself, without bound) ends in an error
// within the policy's bound instead of spinning forever.
func TestGCSStreamGivesUp(t *testing.T) {
	testPolicy(t, Policy{Attempts: 3, Timeout: 200 * time.Millisecond, Backoff: time.Millisecond, MaxBackoff: time.Millisecond})
	proxy := gcsemutest.StartFaulty(t, 1, "bucket")
	ctx := context.Background()
	if err := WriteFile(ctx, "gs://bucket/x", make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	proxy.SetRules(gcsemutest.Rule{Kind: gcsemutest.Cut, Method: "GET", P: 1})
	start := time.Now()
	r, err := Open(ctx, "gs://bucket/x") // the answer's headers come whole: the open succeeds
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = io.ReadAll(r)
	if el := time.Since(start); !errors.Is(err, ErrGaveUp) || !strings.Contains(err.Error(), "no progress for 200ms") || el > 2*time.Second {
		t.Errorf("read of an always-breaking stream: %v after %s", err, el)
	}
}

// TestGCSWalkPages walks a prefix of 210 objects in pages of 100 while a
// third of the listing requests fail: each page is retried from its own
// token, so every object comes exactly once.
func TestGCSWalkPages(t *testing.T) {
	old := listPageSize
	listPageSize = 100
	t.Cleanup(func() { listPageSize = old })
	testPolicy(t, Policy{Attempts: 12, Timeout: 30 * time.Second, Backoff: time.Millisecond, MaxBackoff: time.Millisecond})
	proxy := gcsemutest.StartFaulty(t, 9, "bucket")
	const n = 210
	for i := range n {
		proxy.Server.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bucket", Name: fmt.Sprintf("many/%03d", i)}, Content: []byte{byte(i)}})
	}
	proxy.SetRules(gcsemutest.Rule{Kind: gcsemutest.Unavailable, Method: "GET", Path: "^/storage/v1/b/bucket/o\\?", P: 0.3})
	before := proxy.Requests()
	objs, err := Walk(context.Background(), "gs://bucket/many")
	if err != nil {
		t.Fatal(err)
	}
	if pages := proxy.Requests() - before - proxy.Injected(gcsemutest.Unavailable); pages != 3 {
		t.Errorf("%d listing requests went through, want 3 pages", pages)
	}
	if len(objs) != n {
		t.Fatalf("%d objects, want %d", len(objs), n)
	}
	for i, o := range objs {
		if o.Rel != fmt.Sprintf("%03d", i) || o.Size != 1 {
			t.Fatalf("object %d: %+v", i, o)
		}
	}
	if proxy.Injected(gcsemutest.Unavailable) == 0 {
		t.Error("no listing request failed: the test tested nothing")
	}
	names, err := List(context.Background(), "gs://bucket/many/1*")
	if err != nil || len(names) != 100 {
		t.Errorf("List(many/1*): %d names, %v", len(names), err)
	}
}
