package shard

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader: whatever the bytes, the reader never panics, fails only with
// ErrCorrupt, and every sample it returns is one the writer would accept.
// Re-encoding the samples it accepted and reading them back gives the same
// samples.
func FuzzReader(f *testing.F) {
	tiny := dims{1, 2, 2, 1, 1, 1}
	f.Add(encodeSamples(f, 1, tiny))
	f.Add(encodeSamples(f, 2, tiny))
	long := makeSample(0, tiny)
	long.Key = string(bytes.Repeat([]byte("x"), 95)) // PAX member names
	var pax bytes.Buffer
	e := newEncoder(&pax)
	e.add(long)
	e.close()
	f.Add(pax.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), "fuzz", nil)
		var got []Sample
		for {
			var s Sample
			err := r.Next(&s)
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("unclassified error: %v", err)
				}
				return
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("reader returned an invalid sample: %v", err)
			}
			got = append(got, s)
		}
		var buf bytes.Buffer
		enc := newEncoder(&buf)
		for i := range got {
			if _, err := enc.add(&got[i]); err != nil {
				t.Fatalf("re-encode sample %d: %v", i, err)
			}
		}
		enc.close()
		r2 := NewReader(&buf, "re-encoded", nil)
		for i := range got {
			var s Sample
			if err := r2.Next(&s); err != nil || s.Key != got[i].Key || !bytes.Equal(s.Global.Pix, got[i].Global.Pix) ||
				!bytes.Equal(s.Local.Pix, got[i].Local.Pix) || !bytes.Equal(s.Meta, got[i].Meta) {
				t.Fatalf("re-encoded sample %d differs (%v)", i, err)
			}
		}
		if err := r2.Next(new(Sample)); err != io.EOF {
			t.Fatalf("re-encoded shard: %v", err)
		}
	})
}
