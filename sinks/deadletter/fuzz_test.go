package deadletter

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/sslight-go/sslight/sinks/storage"
)

// FuzzParse: Parse never panics; whatever it accepts, Write writes back to
// the same bytes modulo formatting and Parse reads back equal.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"uri":"gs://b/z.jpg","stage":"read","error":"gone"}` + "\n" +
		`{"uri":"gs://b/a.jpg","stage":"decode","error":"bad","epoch":0,"key":"a"}` + "\n"))
	f.Add([]byte(`{"uri":"u","stage":"s","error":"e","epoch":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := Parse(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		uri := "memfs://deadletter-fuzz/dl.jsonl"
		if err := Write(context.Background(), uri, recs); err != nil {
			t.Fatalf("Write of parsed records: %v", err)
		}
		out, err := storage.ReadFile(context.Background(), uri)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(bytes.NewReader(out), "rewritten")
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(recs) == 0 && len(back) == 0 {
			return
		}
		if !reflect.DeepEqual(recs, back) {
			t.Fatalf("round trip changed records:\n%+v\n%+v", recs, back)
		}
	})
}
