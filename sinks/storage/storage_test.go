package storage

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
)

func TestCRC32CKnownVectors(t *testing.T) {
	// RFC 3720 (iSCSI) B.4 and the common check value for "123456789".
	tests := []struct {
		in     []byte
		crc    uint32
		base64 string
	}{
		{[]byte("123456789"), 0xe3069283, "4waSgw=="},
		{make([]byte, 32), 0x8a9136aa, "ipE2qg=="},
		{bytes.Repeat([]byte{0xff}, 32), 0x62a8ab43, "YqirQw=="},
		{nil, 0, "AAAAAA=="},
	}
	for _, tt := range tests {
		if got := UpdateCRC32C(0, tt.in); got != tt.crc {
			t.Errorf("CRC32C(%q) = %08x, want %08x", tt.in, got, tt.crc)
		}
		if got := CRC32CBase64(tt.crc); got != tt.base64 {
			t.Errorf("CRC32CBase64(%08x) = %s, want %s", tt.crc, got, tt.base64)
		}
		var d Digest
		if len(tt.in) > 3 {
			d.Write(tt.in[:3])
			d.Write(tt.in[3:])
		} else {
			d.Write(tt.in)
		}
		if d.CRC32C != tt.crc || d.Size != int64(len(tt.in)) {
			t.Errorf("Digest of %q in two writes = %+v", tt.in, d)
		}
	}
}

func TestSchemeAndJoin(t *testing.T) {
	tests := []struct {
		base   string
		elem   []string
		scheme string
		want   string
	}{
		{"/data/out", []string{"epoch-0000", "a.tar"}, "", "/data/out/epoch-0000/a.tar"},
		{"rel", []string{"x"}, "", "rel/x"},
		{"gs://bucket", []string{"epoch-0000", "a.tar"}, "gs", "gs://bucket/epoch-0000/a.tar"},
		{"gs://bucket/pre/", []string{"a.tar"}, "gs", "gs://bucket/pre/a.tar"},
		{"memfs://out", []string{"m.json"}, "memfs", "memfs://out/m.json"},
		{"memfs:///abs", []string{"m.json"}, "memfs", "memfs:///abs/m.json"},
	}
	for _, tt := range tests {
		if got := Scheme(tt.base); got != tt.scheme {
			t.Errorf("Scheme(%q) = %q, want %q", tt.base, got, tt.scheme)
		}
		if got := Join(tt.base, tt.elem...); got != tt.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tt.base, tt.elem, got, tt.want)
		}
	}
	if !IsLocal("/x") || IsLocal("gs://b/x") {
		t.Error("IsLocal wrong")
	}
}

// localFiles lists every regular file under dir, relative to it.
func localFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestLocalAtomicWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	uri := filepath.Join(dir, "a", "b", "file.json") // parent folders do not exist yet
	w, err := Create(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello "))
	w.Write([]byte("world"))
	files := localFiles(t, dir)
	if len(files) != 1 || !strings.HasPrefix(filepath.Base(files[0]), ".tmp-file.json-") {
		t.Fatalf("while writing: %v, want one .tmp-file.json-* file", files)
	}
	if _, err := os.Stat(uri); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("final name visible before Commit: %v", err)
	}
	if w.Size() != 11 || w.CRC32C() != UpdateCRC32C(0, []byte("hello world")) {
		t.Errorf("Size %d CRC32C %08x", w.Size(), w.CRC32C())
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(uri); string(got) != "hello world" {
		t.Errorf("content %q", got)
	}
	if files := localFiles(t, dir); len(files) != 1 || files[0] != filepath.Join("a", "b", "file.json") {
		t.Errorf("after Commit: %v", files)
	}
	if fi, _ := os.Stat(uri); fi.Mode().Perm()&0o644 != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	// A second commit, abort after commit, write after commit.
	if err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Commit: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Commit: %v", err)
	}
	if got, _ := os.ReadFile(uri); string(got) != "hello world" {
		t.Errorf("content changed after Abort: %q", got)
	}
}

func TestLocalReplaceAndAbort(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	uri := filepath.Join(dir, "summary.json")
	if err := WriteFile(ctx, uri, []byte("old")); err != nil {
		t.Fatal(err)
	}
	w, _ := Create(ctx, uri)
	w.Write(bytes.Repeat([]byte("new"), 1<<20)) // past the buffer: bytes hit the temp file
	if got, _ := os.ReadFile(uri); string(got) != "old" {
		t.Fatalf("old content disturbed during write: %.10q", got)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(uri); string(got) != "old" {
		t.Errorf("Abort changed the old file: %.10q", got)
	}
	if files := localFiles(t, dir); len(files) != 1 {
		t.Errorf("temp file left behind: %v", files)
	}
	if err := WriteFile(ctx, uri, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(uri); string(got) != "new" {
		t.Errorf("replace: %q", got)
	}
}

func TestCreateRejects(t *testing.T) {
	ctx := context.Background()
	for _, uri := range []string{"", "gs://", "memfs://x/", t.TempDir() + "/"} {
		if w, err := Create(ctx, uri); err == nil {
			w.Abort()
			t.Errorf("Create(%q) accepted", uri)
		}
	}
	if _, err := Create(ctx, "s3://b/k"); !errors.Is(err, ErrUnsupportedScheme) {
		t.Errorf("s3: %v", err)
	}
}

func TestMemfs(t *testing.T) {
	ctx := context.Background()
	uri := "memfs://storage-test/dir/f.bin"
	w, _ := Create(ctx, uri)
	w.Write([]byte("abc"))
	if ok, _ := Exists(ctx, uri); ok {
		t.Fatal("memfs file visible before Commit")
	}
	w.Abort()
	if ok, _ := Exists(ctx, uri); ok {
		t.Fatal("memfs file visible after Abort")
	}
	if err := WriteFile(ctx, uri, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(ctx, uri)
	if err != nil || string(got) != "abc" {
		t.Errorf("ReadFile = %q, %v", got, err)
	}
	if n, err := Size(ctx, uri); n != 3 || err != nil {
		t.Errorf("Size = %d, %v", n, err)
	}
}

func TestNotExistAcrossSchemes(t *testing.T) {
	gcsemutest.Start(t, "bucket")
	ctx := context.Background()
	for _, uri := range []string{filepath.Join(t.TempDir(), "nope"), "memfs://nope/nope", "gs://bucket/nope"} {
		if _, err := ReadFile(ctx, uri); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%s) = %v, want fs.ErrNotExist", uri, err)
		}
		if _, err := Size(ctx, uri); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Size(%s) = %v, want fs.ErrNotExist", uri, err)
		}
		if ok, err := Exists(ctx, uri); ok || err != nil {
			t.Errorf("Exists(%s) = %v, %v", uri, ok, err)
		}
	}
}

func TestGCSAtomicWrite(t *testing.T) {
	srv := gcsemutest.Start(t, "bucket")
	ctx := context.Background()
	small := []byte("small object")
	big := bytes.Repeat([]byte("0123456789abcdef"), (17<<20)/16) // over the 16 MiB chunk: a resumable upload
	for _, tc := range []struct {
		name string
		data []byte
	}{{"small", small}, {"resumable", big}} {
		t.Run(tc.name, func(t *testing.T) {
			uri := "gs://bucket/" + tc.name
			w, err := Create(ctx, uri+".aborted")
			if err != nil {
				t.Fatal(err)
			}
			w.Write(tc.data)
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.GetObject("bucket", tc.name+".aborted"); err == nil {
				t.Error("aborted upload created an object")
			}

			if err := WriteFile(ctx, uri, tc.data); err != nil {
				t.Fatal(err)
			}
			obj, err := srv.GetObject("bucket", tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(obj.Content, tc.data) || obj.Crc32c != CRC32CBase64(UpdateCRC32C(0, tc.data)) {
				t.Errorf("object %d bytes crc %s", len(obj.Content), obj.Crc32c)
			}
			got, err := ReadFile(ctx, uri)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Errorf("ReadFile: %d bytes, %v", len(got), err)
			}
		})
	}
}

// TestCheckObject drives the post-upload comparison directly: a store that
// reports a different CRC32C or size than was written is a checksum
// mismatch that says both, and one a retry may cure (the writer still holds
// the bytes). That a damaged object is rewritten, or removed when it cannot
// be, is TestGCSChecksumMismatch's.
func TestCheckObject(t *testing.T) {
	abc := Digest{Size: 3, CRC32C: UpdateCRC32C(0, []byte("abc"))}
	for _, tc := range []struct {
		name string
		size int64
		crc  uint32
		bad  bool
	}{
		{"match", 3, abc.CRC32C, false},
		{"crc differs", 3, 1, true},
		{"size differs", 4, abc.CRC32C, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkObject("gs://b/x", abc, tc.size, tc.crc)
			if tc.bad != errors.Is(err, ErrChecksum) || tc.bad != retryable(err) {
				t.Fatalf("checkObject = %v, want mismatch=%v (and retryable)", err, tc.bad)
			}
			if tc.bad && !strings.Contains(err.Error(), "wrote 3 bytes crc32c "+CRC32CBase64(abc.CRC32C)+" to gs://b/x") {
				t.Errorf("error %q does not say what was written where", err)
			}
		})
	}
}

func TestGCSAbortBeforeAnyWrite(t *testing.T) {
	srv := gcsemutest.Start(t, "bucket")
	w, err := Create(context.Background(), "gs://bucket/never")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.GetObject("bucket", "never"); err == nil {
		t.Error("an upload aborted before any write created an object")
	}
}
