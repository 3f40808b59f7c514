package manifest

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse: Parse never panics, fails only with ErrInvalid or
// ErrSchemaVersion, and whatever it accepts Write accepts and writes so
// that Parse reads it back identically (Write's layout is a fixed point).
func FuzzParse(f *testing.F) {
	f.Add([]byte(exampleJSON))
	f.Add([]byte(`{"schema_version":1}`))
	f.Add([]byte(`{"schema_version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrSchemaVersion) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		n, err := m.normalized()
		if err != nil {
			t.Fatalf("normalize accepted manifest: %v", err)
		}
		var buf bytes.Buffer
		if err := n.encode(&buf); err != nil {
			t.Fatal(err)
		}
		m2, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("re-parse of written manifest: %v\n%s", err, buf.Bytes())
		}
		var buf2 bytes.Buffer
		n2, _ := m2.normalized()
		n2.encode(&buf2)
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatalf("layout not stable:\n%s\n%s", buf.Bytes(), buf2.Bytes())
		}
	})
}
