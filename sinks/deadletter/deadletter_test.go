package deadletter

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteSortsAndFormats(t *testing.T) {
	ctx := context.Background()
	uri := filepath.Join(t.TempDir(), FileName)
	// Reported in worker order; written in file order.
	in := []Record{
		{URI: "gs://b/c.jpg", Stage: "decode", Error: "jpeg: bad huffman code", Epoch: Epoch(1), Key: "c"},
		{URI: "gs://b/a.jpg", Stage: "decode", Error: "image: unknown format", Epoch: Epoch(0), Key: "a"},
		{URI: "gs://b/z.jpg", Stage: "read", Error: "storage: object doesn't exist"},
		{URI: "gs://b/b.jpg", Stage: "crop", Error: "image 1x1 too small & odd", Epoch: Epoch(0), Key: "b"},
		{URI: "gs://b/a.jpg", Stage: "decode", Error: "image: unknown format", Epoch: Epoch(1), Key: "a"},
	}
	orig := append([]Record(nil), in...)
	if err := Write(ctx, uri, in); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, orig) {
		t.Error("Write reordered the caller's slice")
	}
	got, _ := os.ReadFile(uri)
	want := strings.Join([]string{
		`{"uri":"gs://b/z.jpg","stage":"read","error":"storage: object doesn't exist"}`,
		`{"uri":"gs://b/b.jpg","stage":"crop","error":"image 1x1 too small & odd","epoch":0,"key":"b"}`,
		`{"uri":"gs://b/a.jpg","stage":"decode","error":"image: unknown format","epoch":0,"key":"a"}`,
		`{"uri":"gs://b/a.jpg","stage":"decode","error":"image: unknown format","epoch":1,"key":"a"}`,
		`{"uri":"gs://b/c.jpg","stage":"decode","error":"jpeg: bad huffman code","epoch":1,"key":"c"}`,
	}, "\n") + "\n"
	if string(got) != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	back, err := Read(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 5 || back[0].Epoch != nil || *back[4].Epoch != 1 || back[1].Key != "b" {
		t.Errorf("Read = %+v", back)
	}
	// Same records in another order: same bytes.
	rev := append([]Record(nil), in...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	uri2 := filepath.Join(t.TempDir(), FileName)
	Write(ctx, uri2, rev)
	if got2, _ := os.ReadFile(uri2); !bytes.Equal(got, got2) {
		t.Error("order of reports changed the file")
	}
}

func TestEmptyAndInvalid(t *testing.T) {
	ctx := context.Background()
	uri := "memfs://deadletter/empty.jsonl"
	if err := Write(ctx, uri, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(ctx, uri); err != nil || len(got) != 0 {
		t.Errorf("empty: %v %v", got, err)
	}
	for _, r := range []Record{
		{Stage: "read", Error: "x"},
		{URI: "u", Error: "x"},
		{URI: "u", Stage: "read"},
		{URI: "u", Stage: "read", Error: "x", Epoch: Epoch(-1)},
	} {
		if err := Write(ctx, "memfs://deadletter/bad.jsonl", []Record{r}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Write(%+v) = %v", r, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		`{"uri":"u","stage":"s"}` + "\n",                                                                      // no error
		`{"uri":"u","stage":"s","error":"e","extra":1}` + "\n",                                                // unknown field
		`{"uri":"u","stage":"s","error":"e","epoch":"1"}` + "\n",                                              // epoch a string
		`{"uri":"u","stage":"s","error":"e","epoch":1}` + "\n" + `{"uri":"u","stage":"s","error":"e"}` + "\n", // out of order
		"[]\n",
	} {
		if _, err := Parse(strings.NewReader(in), "dl"); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}
