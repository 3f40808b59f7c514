package shard

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sslight-go/sslight/sinks/storage"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"n01440764_10026", true},
		{"000000391895", true},
		{"a-b_c-0f3a9c21", true},
		{"ünïcode-key", true},
		{strings.Repeat("k", MaxKeyLen), true},
		{"", false},
		{"img.jpg", false},
		{"dir/img", false},
		{`dir\img`, false},
		{"has space", false},
		{"tab\tkey", false},
		{"nul\x00key", false},
		{"bad\xffutf8", false},
		{strings.Repeat("k", MaxKeyLen+1), false},
	}
	for _, tt := range tests {
		err := ValidateKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidSample) {
			t.Errorf("ValidateKey(%q) error does not wrap ErrInvalidSample: %v", tt.key, err)
		}
	}
}

func TestSampleValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *Sample)
	}{
		{"meta not JSON", func(s *Sample) { s.Meta = []byte(`{"a":`) }},
		{"meta an array", func(s *Sample) { s.Meta = []byte(` [1]`) }},
		{"meta empty", func(s *Sample) { s.Meta = nil }},
		{"no global views", func(s *Sample) { s.Global = Views{Count: 0, Height: 8, Width: 6} }},
		{"global pix short", func(s *Sample) { s.Global.Pix = s.Global.Pix[1:] }},
		{"local pix long", func(s *Sample) { s.Local.Pix = append(s.Local.Pix, 0) }},
		{"zero width", func(s *Sample) { s.Local.Width = 0 }},
		{"negative count", func(s *Sample) { s.Local.Count = -1 }},
		{"overflow", func(s *Sample) { s.Global.Count, s.Global.Height, s.Global.Width = 1<<40, 1<<20, 1<<20 }},
		{"bad key", func(s *Sample) { s.Key = "a.b" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := makeSample(1, small)
			tt.mutate(s)
			if err := s.Validate(); !errors.Is(err, ErrInvalidSample) {
				t.Errorf("Validate = %v, want ErrInvalidSample", err)
			}
		})
	}
	ok := makeSample(1, small)
	ok.Local = Views{Count: 0, Height: 128, Width: 128} // no local crops is fine
	ok.Meta = []byte("\n {}")
	if err := ok.Validate(); err != nil {
		t.Errorf("valid sample refused: %v", err)
	}
}

// TestTarLayout checks the archive against the contract, reading it with
// archive/tar and by raw offsets of the POSIX ustar header.
func TestTarLayout(t *testing.T) {
	b := encodeSamples(t, 2, small)
	if len(b)%512 != 0 {
		t.Fatalf("tar is %d bytes, not whole blocks", len(b))
	}
	if !bytes.Equal(b[len(b)-1024:], make([]byte, 1024)) {
		t.Error("tar does not end with two zero blocks")
	}
	// Raw ustar header of the first member (POSIX.1-1988 offsets).
	field := func(off, n int) string { return strings.TrimRight(string(b[off:off+n]), "\x00") }
	checks := []struct{ what, got, want string }{
		{"name", field(0, 100), "n01440764_00000.json"},
		{"mode", field(100, 8), "0000644"},
		{"uid", field(108, 8), "0000000"},
		{"gid", field(116, 8), "0000000"},
		{"mtime", field(136, 12), "00000000000"},
		{"typeflag", field(156, 1), "0"},
		{"magic", string(b[257:263]), "ustar\x00"},
		{"version", string(b[263:265]), "00"},
		{"uname", field(265, 32), ""},
		{"gname", field(297, 32), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("first header %s = %q, want %q", c.what, c.got, c.want)
		}
	}

	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Format != tar.FormatUSTAR || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 ||
			h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(time.Unix(0, 0)) || h.Typeflag != tar.TypeReg {
			t.Errorf("%s: header %+v breaks the determinism contract", h.Name, h)
		}
		body, _ := io.ReadAll(tr)
		switch {
		case strings.HasSuffix(h.Name, ".json"):
			if !bytes.Equal(body, makeSample(len(names)/3, small).Meta) {
				t.Errorf("%s holds %q", h.Name, body)
			}
		case strings.HasSuffix(h.Name, ".npy"):
			if len(body) < 128 || string(body[:6]) != "\x93NUMPY" || (len(body)-128) != 8*6*3*2 && (len(body)-128) != 4*5*3*3 {
				t.Errorf("%s: %d bytes, not a 128-byte npy header plus the crops", h.Name, len(body))
			}
		}
	}
	want := []string{
		"n01440764_00000.json", "n01440764_00000.global.npy", "n01440764_00000.local.npy",
		"n01440764_00001.json", "n01440764_00001.global.npy", "n01440764_00001.local.npy",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("members %v, want %v", names, want)
	}
}

// TestLongKeyUsesPAX: a name USTAR cannot hold gets PAX records, and only
// that member does.
func TestLongKeyUsesPAX(t *testing.T) {
	var buf bytes.Buffer
	e := newEncoder(&buf)
	long := makeSample(0, small)
	long.Key = strings.Repeat("x", 95) // "<key>.global.npy" is 106 bytes
	short := makeSample(1, small)
	edge := makeSample(2, small)
	edge.Key = strings.Repeat("e", 89) // "<key>.global.npy" is exactly 100 bytes: still USTAR
	for _, s := range []*Sample{short, edge, long} {
		if _, err := e.add(s); err != nil {
			t.Fatal(err)
		}
	}
	e.close()
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		wantPAX := len(h.Name) > 100
		if gotPAX := h.Format == tar.FormatPAX; gotPAX != wantPAX {
			t.Errorf("%s (%d bytes): format %v", h.Name, len(h.Name), h.Format)
		}
		io.Copy(io.Discard, tr)
	}
	// And the reader takes it.
	r := NewReader(bytes.NewReader(buf.Bytes()), "pax", nil)
	var s Sample
	var keys []string
	for {
		err := r.Next(&s)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, s.Key)
	}
	if len(keys) != 3 || keys[1] != edge.Key || keys[2] != long.Key {
		t.Errorf("read keys %v", keys)
	}
}

func TestDeterministic(t *testing.T) {
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	a := writeShard(t, dirA, 2, 7, 5, small)
	b := writeShard(t, dirB, 2, 7, 5, small)
	m := writeShard(t, "memfs://determinism", 2, 7, 5, small)
	ba, err := os.ReadFile(a.URI)
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := os.ReadFile(b.URI)
	bm, err := storage.ReadFile(ctx, m.URI)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ba, bb) || !bytes.Equal(ba, bm) {
		t.Fatal("same samples gave different bytes")
	}
	if a.CRC32C != b.CRC32C || a.CRC32C != m.CRC32C || a.Name != b.Name || a.Name != m.Name {
		t.Errorf("infos differ: %+v %+v %+v", a, b, m)
	}
	if a.CRC32C != crc32c(ba) || a.Bytes != int64(len(ba)) {
		t.Errorf("Info says %d bytes crc %08x; file is %d bytes crc %08x", a.Bytes, a.CRC32C, len(ba), crc32c(ba))
	}
	// And a different sample order gives a different shard.
	w, _ := Create(ctx, "memfs://determinism-reversed", testHash, 2, 7)
	for i := 4; i >= 0; i-- {
		w.Add(makeSample(i, small))
	}
	rev, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rev.CRC32C == a.CRC32C {
		t.Error("reordered samples produced the same CRC")
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, out := range []string{t.TempDir(), "memfs://roundtrip/out"} {
		t.Run(storage.Scheme(out), func(t *testing.T) {
			info := writeShard(t, out, 0, 3, 4, small)
			want := Info{
				URI: URI(out, testHash, 0, 3), Name: Name(testHash, 0, 3), Epoch: 0, Index: 3,
				Samples: 4, ConfigHash: testHash,
			}
			raw, err := storage.ReadFile(ctx, info.URI)
			if err != nil {
				t.Fatal(err)
			}
			want.Bytes, want.CRC32C = int64(len(raw)), crc32c(raw)
			want.CRC32CBase64 = storage.CRC32CBase64(want.CRC32C)
			if info != want {
				t.Errorf("Info = %+v\nwant   %+v", info, want)
			}
			r, err := Open(ctx, info.URI, &Expect{Bytes: info.Bytes, CRC32C: info.CRC32C})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var s Sample
			for i := 0; ; i++ {
				err := r.Next(&s)
				if err == io.EOF {
					if i != 4 {
						t.Errorf("read %d samples, want 4", i)
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				w := makeSample(i, small)
				if s.Key != w.Key || !bytes.Equal(s.Meta, w.Meta) ||
					s.Global.Count != 2 || s.Global.Height != 8 || s.Global.Width != 6 || !bytes.Equal(s.Global.Pix, w.Global.Pix) ||
					s.Local.Count != 3 || s.Local.Height != 4 || s.Local.Width != 5 || !bytes.Equal(s.Local.Pix, w.Local.Pix) {
					t.Errorf("sample %d differs: key %s global %dx%dx%d local %dx%dx%d",
						i, s.Key, s.Global.Count, s.Global.Height, s.Global.Width, s.Local.Count, s.Local.Height, s.Local.Width)
				}
			}
			if d := r.Digest(); d.Size != info.Bytes || d.CRC32C != info.CRC32C {
				t.Errorf("reader digest %+v, info %d/%08x", d, info.Bytes, info.CRC32C)
			}
		})
	}
}

func TestReaderReusesBuffers(t *testing.T) {
	b := encodeSamples(t, 2, small)
	r := NewReader(bytes.NewReader(b), "reuse", nil)
	var s Sample
	if err := r.Next(&s); err != nil {
		t.Fatal(err)
	}
	g, l := &s.Global.Pix[0], &s.Local.Pix[0]
	if err := r.Next(&s); err != nil {
		t.Fatal(err)
	}
	if &s.Global.Pix[0] != g || &s.Local.Pix[0] != l {
		t.Error("second sample of the same size reallocated its pixel buffers")
	}
}

func TestWriterInvalidSampleKeepsGoing(t *testing.T) {
	out := t.TempDir()
	w, err := Create(context.Background(), out, testHash, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Add(makeSample(0, small)); err != nil {
		t.Fatal(err)
	}
	bad := makeSample(1, small)
	bad.Key = "bad.key"
	if err := w.Add(bad); !errors.Is(err, ErrInvalidSample) {
		t.Fatalf("bad key: %v", err)
	}
	if err := w.Add(makeSample(0, small)); !errors.Is(err, ErrInvalidSample) {
		t.Fatalf("duplicate key: %v", err)
	}
	if err := w.Add(makeSample(1, small)); err != nil {
		t.Fatalf("valid sample after refused ones: %v", err)
	}
	info, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The shard holds exactly samples 0 and 1: same bytes as a clean write.
	raw, _ := os.ReadFile(info.URI)
	if info.Samples != 2 || !bytes.Equal(raw, encodeSamples(t, 2, small)) {
		t.Errorf("refused samples left traces: %d samples", info.Samples)
	}
}

// listDir returns every entry under dir, recursively, relative to it.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	return names
}

func TestAtomicity(t *testing.T) {
	ctx := context.Background()
	t.Run("abort mid-way", func(t *testing.T) {
		out := t.TempDir()
		w, err := Create(ctx, out, testHash, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := w.Add(makeSample(i, realistic)); err != nil { // > the 1 MiB buffer: bytes reach the disk
				t.Fatal(err)
			}
		}
		if files := listDir(t, out); len(files) != 1 || !strings.Contains(files[0], ".tmp-"+Name(testHash, 0, 0)+"-") {
			t.Fatalf("during the write: %v, want one hidden temp file", files)
		}
		if ok, _ := storage.Exists(ctx, w.URI()); ok {
			t.Fatal("shard visible before Close")
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if files := listDir(t, out); len(files) != 0 {
			t.Errorf("after Abort: %v", files)
		}
		if _, err := w.Close(); err == nil {
			t.Error("Close after Abort succeeded")
		}
	})
	t.Run("commit fails", func(t *testing.T) {
		out := t.TempDir()
		// A non-empty folder squatting on the shard's name makes the final
		// rename fail after all data was written.
		uri := URI(out, testHash, 0, 0)
		if err := os.MkdirAll(uri, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(uri, "squatter"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Create(ctx, out, testHash, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		w.Add(makeSample(0, small))
		if _, err := w.Close(); err == nil {
			t.Fatal("Close succeeded although the rename cannot")
		}
		if files := listDir(t, out); len(files) != 1 || files[0] != filepath.Join("epoch-0000", Name(testHash, 0, 0), "squatter") {
			t.Errorf("after a failed commit: %v", files)
		}
	})
	t.Run("empty shard", func(t *testing.T) {
		out := t.TempDir()
		w, _ := Create(ctx, out, testHash, 0, 0)
		if _, err := w.Close(); !errors.Is(err, ErrEmpty) {
			t.Fatalf("Close of an empty shard: %v", err)
		}
		if files := listDir(t, out); len(files) != 0 {
			t.Errorf("empty shard left %v", files)
		}
	})
	t.Run("memfs abort", func(t *testing.T) {
		out := "memfs://atomic-abort"
		w, _ := Create(ctx, out, testHash, 0, 0)
		w.Add(makeSample(0, small))
		w.Abort()
		if ok, err := storage.Exists(ctx, URI(out, testHash, 0, 0)); ok || err != nil {
			t.Errorf("aborted memfs shard exists=%v err=%v", ok, err)
		}
	})
	t.Run("retry replaces", func(t *testing.T) {
		out := "memfs://atomic-retry"
		if err := storage.WriteFile(ctx, URI(out, testHash, 0, 0), []byte("stale partial bytes from a dead worker")); err != nil {
			t.Fatal(err)
		}
		info := writeShard(t, out, 0, 0, 1, small)
		raw, _ := storage.ReadFile(ctx, info.URI)
		if !bytes.Equal(raw, encodeSamples(t, 1, small)) {
			t.Error("retried write did not replace the old object")
		}
	})
}

func TestCreateRejects(t *testing.T) {
	ctx := context.Background()
	if _, err := Create(ctx, t.TempDir(), "bad hash", 0, 0); err == nil {
		t.Error("config hash with a space accepted")
	}
	if _, err := Create(ctx, t.TempDir(), testHash, -1, 0); err == nil {
		t.Error("negative epoch accepted")
	}
	if _, err := Create(ctx, "s3://bucket/x", testHash, 0, 0); !errors.Is(err, storage.ErrUnsupportedScheme) {
		t.Errorf("s3: %v", err)
	}
}
