package shard

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sslight-go/sslight/sinks/npy"
)

// readAll reads every sample of b and returns how many there were and the
// final error (nil for a clean io.EOF).
func readAll(b []byte, expect *Expect) (int, error) {
	r := NewReader(bytes.NewReader(b), "test.tar", expect)
	var s Sample
	for {
		err := r.Next(&s)
		if err == io.EOF {
			return r.Samples(), nil
		}
		if err != nil {
			return r.Samples(), err
		}
		if verr := s.Validate(); verr != nil {
			return r.Samples(), verr
		}
	}
}

func TestReaderDetectsEveryTruncation(t *testing.T) {
	b := encodeSamples(t, 2, small)
	if n, err := readAll(b, nil); err != nil || n != 2 {
		t.Fatalf("intact shard: %d samples, %v", n, err)
	}
	for cut := 0; cut < len(b); cut++ {
		_, err := readAll(b[:cut], nil)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("shard cut to %d of %d bytes: err = %v, want ErrCorrupt", cut, len(b), err)
		}
	}
}

func TestReaderDetectsEveryFlippedByte(t *testing.T) {
	b := encodeSamples(t, 1, small)
	expect := &Expect{Bytes: int64(len(b)), CRC32C: crc32c(b)}
	if _, err := readAll(b, expect); err != nil {
		t.Fatalf("intact shard: %v", err)
	}
	bad := make([]byte, len(b))
	for i := range b {
		copy(bad, b)
		bad[i] ^= 0x01
		_, err := readAll(bad, expect)
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrMismatch) {
			t.Fatalf("byte %d flipped: err = %v", i, err)
		}
	}
	// Without an expectation a flipped pixel is invisible to the tar
	// format; with one it is a mismatch.
	copy(bad, b)
	bad[512+512+512+128+5] ^= 0x80 // json header, json data padded to a block, global header, npy header, then pixels
	if _, err := readAll(bad, nil); err != nil {
		t.Errorf("flipped pixel without Expect: %v", err)
	}
	if _, err := readAll(bad, expect); !errors.Is(err, ErrMismatch) {
		t.Errorf("flipped pixel with Expect: %v, want ErrMismatch", err)
	}
	if _, err := readAll(b, &Expect{Bytes: int64(len(b)) + 512, CRC32C: crc32c(b)}); !errors.Is(err, ErrMismatch) {
		t.Errorf("wrong expected size: %v, want ErrMismatch", err)
	}
}

type member struct {
	name string
	typ  byte
	body []byte
}

// craft builds a tar with archive/tar directly, bypassing the encoder.
func craft(t *testing.T, ms []member, trailer []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: m.name, Typeflag: typ, Mode: 0o644, Size: int64(len(m.body)), ModTime: time.Unix(0, 0)}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: typ, PAXRecords: map[string]string{"comment": "x"}}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write(m.body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return append(buf.Bytes(), trailer...)
}

func npyU8(t *testing.T, shape ...int) []byte {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	var buf bytes.Buffer
	if err := npy.WriteUint8(&buf, shape, make([]uint8, n)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReaderRejectsMalformedShards(t *testing.T) {
	meta := []byte(`{"label":1}`)
	g := npyU8(t, 2, 4, 4, 3)
	l := npyU8(t, 3, 2, 2, 3)
	var f32 bytes.Buffer
	npy.WriteFloat32(&f32, []int{2, 4, 4, 3}, make([]float32, 96))
	sample := func(key string) []member {
		return []member{{name: key + ".json", body: meta}, {name: key + ".global.npy", body: g}, {name: key + ".local.npy", body: l}}
	}
	cat := func(parts ...[]member) []member {
		var out []member
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name    string
		members []member
		trailer []byte
		ok      int // samples in a valid shard; 0 means it must fail
	}{
		{"valid", cat(sample("a"), sample("b")), nil, 2},
		{"tar record padding", sample("a"), make([]byte, 10240-3*1024-1024), 1},
		{"trailing garbage", sample("a"), append(make([]byte, 512), 'x'), 0},
		{"no samples", nil, nil, 0},
		{"local before global", []member{{name: "a.json", body: meta}, {name: "a.local.npy", body: l}, {name: "a.global.npy", body: g}}, nil, 0},
		{"missing local", cat([]member{{name: "a.json", body: meta}, {name: "a.global.npy", body: g}}, sample("b")), nil, 0},
		{"missing json", []member{{name: "a.global.npy", body: g}, {name: "a.local.npy", body: l}}, nil, 0},
		{"sample cut at the end", []member{{name: "a.json", body: meta}, {name: "a.global.npy", body: g}}, nil, 0},
		{"keys differ inside a sample", []member{{name: "a.json", body: meta}, {name: "b.global.npy", body: g}, {name: "a.local.npy", body: l}}, nil, 0},
		{"extra member", cat(sample("a"), []member{{name: "a.txt", body: []byte("hi")}}), nil, 0},
		{"duplicate key", cat(sample("a"), sample("a")), nil, 0},
		{"directory member", cat([]member{{name: "d", typ: tar.TypeDir}}, sample("a")), nil, 0},
		{"pax global header", cat([]member{{typ: tar.TypeXGlobalHeader}}, sample("a")), nil, 0},
		{"slash in name", []member{{name: "d/a.json", body: meta}, {name: "d/a.global.npy", body: g}, {name: "d/a.local.npy", body: l}}, nil, 0},
		{"no extension", []member{{name: "a", body: meta}}, nil, 0},
		{"meta not JSON", []member{{name: "a.json", body: []byte("{")}, {name: "a.global.npy", body: g}, {name: "a.local.npy", body: l}}, nil, 0},
		{"meta not an object", []member{{name: "a.json", body: []byte("3")}, {name: "a.global.npy", body: g}, {name: "a.local.npy", body: l}}, nil, 0},
		{"four channels", []member{{name: "a.json", body: meta}, {name: "a.global.npy", body: npyU8(t, 2, 4, 4, 4)}, {name: "a.local.npy", body: l}}, nil, 0},
		{"rank 3", []member{{name: "a.json", body: meta}, {name: "a.global.npy", body: npyU8(t, 4, 4, 3)}, {name: "a.local.npy", body: l}}, nil, 0},
		{"no global views", []member{{name: "a.json", body: meta}, {name: "a.global.npy", body: npyU8(t, 0, 4, 4, 3)}, {name: "a.local.npy", body: l}}, nil, 0},
		{"zero-height local", []member{{name: "a.json", body: meta}, {name: "a.global.npy", body: g}, {name: "a.local.npy", body: npyU8(t, 1, 0, 4, 3)}}, nil, 0},
		{"no local views is fine", []member{{name: "a.json", body: meta}, {name: "a.global.npy", body: g}, {name: "a.local.npy", body: npyU8(t, 0, 2, 2, 3)}}, nil, 1},
		{"float32 crops", []member{{name: "a.json", body: meta}, {name: "a.global.npy", body: f32.Bytes()}, {name: "a.local.npy", body: l}}, nil, 0},
		{"extra bytes after array", []member{{name: "a.json", body: meta}, {name: "a.global.npy", body: append(append([]byte{}, g...), 0)}, {name: "a.local.npy", body: l}}, nil, 0},
		{"array cut short", []member{{name: "a.json", body: meta}, {name: "a.global.npy", body: g[:len(g)-1]}, {name: "a.local.npy", body: l}}, nil, 0},
		{"not npy", []member{{name: "a.json", body: meta}, {name: "a.global.npy", body: []byte("PNG....")}, {name: "a.local.npy", body: l}}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := readAll(craft(t, tt.members, tt.trailer), nil)
			switch {
			case tt.ok > 0 && (err != nil || n != tt.ok):
				t.Errorf("got %d samples, %v; want %d", n, err, tt.ok)
			case tt.ok == 0 && !errors.Is(err, ErrCorrupt):
				t.Errorf("got %d samples, err %v; want ErrCorrupt", n, err)
			}
		})
	}
}

func TestReaderErrorsAreFinalAndNamed(t *testing.T) {
	b := encodeSamples(t, 2, small)
	r := NewReader(bytes.NewReader(b[:len(b)/2]), "gs://bucket/epoch-0000/x.tar", nil)
	var s Sample
	var err error
	for err == nil {
		err = r.Next(&s)
	}
	if !errors.Is(err, ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte("gs://bucket/epoch-0000/x.tar")) {
		t.Fatalf("error %v does not name the shard", err)
	}
	if again := r.Next(&s); again != err {
		t.Errorf("second Next = %v, want the same error", again)
	}
}
