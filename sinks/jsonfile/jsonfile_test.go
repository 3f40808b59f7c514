package jsonfile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type run struct {
	Name   string             `json:"name"`
	URI    string             `json:"uri"`
	Counts map[string]int     `json:"counts"`
	Scores map[string]float64 `json:"scores,omitempty"`
}

func TestWriteIsDeterministicAndReadable(t *testing.T) {
	ctx := context.Background()
	uri := filepath.Join(t.TempDir(), "out", "summary.json")
	v := run{Name: "dino", URI: "gs://b/x?a=1&b=<2>", Counts: map[string]int{"z": 1, "a": 2, "m": 3}}
	if err := Write(ctx, uri, v); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(uri)
	want := `{
  "name": "dino",
  "uri": "gs://b/x?a=1&b=<2>",
  "counts": {
    "a": 2,
    "m": 3,
    "z": 1
  }
}
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	var back run
	if err := Read(ctx, uri, &back); err != nil || back.URI != v.URI || back.Counts["m"] != 3 {
		t.Errorf("Read = %+v, %v", back, err)
	}
}

func TestDecodeStrict(t *testing.T) {
	var v run
	for _, bad := range []string{`{"name":"x","extra":1}`, `{"name":"x"} {}`, `{"name":`, ``} {
		if err := Decode([]byte(bad), &v); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
	if err := Decode([]byte(" {\"name\":\"x\"}\n\n"), &v); err != nil {
		t.Errorf("whitespace around a document: %v", err)
	}
}

func TestLinesRoundTrip(t *testing.T) {
	ctx := context.Background()
	uri := "memfs://jsonfile/lines.jsonl"
	in := []run{{Name: "a", Counts: map[string]int{"b": 1, "a": 0}}, {Name: "b&c"}}
	if err := WriteLines(ctx, uri, in); err != nil {
		t.Fatal(err)
	}
	raw, err := ReadLines[map[string]any](ctx, uri)
	if err != nil || len(raw) != 2 {
		t.Fatalf("ReadLines generic: %v %v", raw, err)
	}
	got, err := ReadLines[run](ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Name != "b&c" || got[0].Counts["b"] != 1 {
		t.Errorf("round trip: %+v", got)
	}
	if err := WriteLines[run](ctx, "memfs://jsonfile/empty.jsonl", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadLines[run](ctx, "memfs://jsonfile/empty.jsonl"); err != nil || len(got) != 0 {
		t.Errorf("empty file: %v %v", got, err)
	}
}

func TestLinesExactBytes(t *testing.T) {
	ctx := context.Background()
	uri := filepath.Join(t.TempDir(), "x.jsonl")
	if err := WriteLines(ctx, uri, []run{{Name: "a", URI: "u&v", Counts: map[string]int{"y": 2, "x": 1}}, {Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(uri)
	want := `{"name":"a","uri":"u&v","counts":{"x":1,"y":2}}` + "\n" + `{"name":"b","uri":"","counts":null}` + "\n"
	if string(got) != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestDecodeLinesRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"blank line", "{\"name\":\"a\"}\n\n{\"name\":\"b\"}\n"},
		{"two values on a line", "{\"name\":\"a\"} {\"name\":\"b\"}\n"},
		{"unknown field", "{\"nom\":\"a\"}\n"},
		{"broken", "{\"name\":\n"},
		{"whitespace-only last line", "{\"name\":\"a\"}\n  "},
	} {
		if _, err := DecodeLines[run](strings.NewReader(tc.in), "t.jsonl"); err == nil || !strings.Contains(err.Error(), "t.jsonl line") {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	got, err := DecodeLines[run](strings.NewReader("{\"name\":\"a\"}"), "t")
	if err != nil || len(got) != 1 {
		t.Errorf("last line without newline: %v %v", got, err)
	}
	long := "{\"name\":\"" + strings.Repeat("x", 5000) + "\"}\n"
	got, err = DecodeLines[run](strings.NewReader(long+long), "t")
	if err != nil || len(got) != 2 || len(got[1].Name) != 5000 {
		t.Errorf("lines longer than the read buffer: %d, %v", len(got), err)
	}
}

func TestLinesAbort(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := CreateLines(ctx, filepath.Join(dir, "d.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	l.Add(run{Name: "x"})
	l.Abort()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("aborted lines file left %v", entries)
	}
}
