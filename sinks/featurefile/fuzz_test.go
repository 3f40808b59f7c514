package featurefile

import (
	"bytes"
	"os"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the part reader: it must never panic,
// and whatever it accepts must survive an encode/decode round trip
// unchanged.
func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile("testdata/reference.safetensors"); err == nil {
		f.Add(b)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, &Part{Dim: 2, X: []float32{1, 2}, Labels: []int64{3}, Keys: []string{"k"}}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("\x08\x00\x00\x00\x00\x00\x00\x00{}      "))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data, "fuzz")
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, p); err != nil {
			t.Fatalf("encode of an accepted part: %v", err)
		}
		back, err := Decode(out.Bytes(), "fuzz")
		if err != nil {
			t.Fatalf("decode of our own encoding: %v", err)
		}
		if !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip changed the part: %+v -> %+v", p, back)
		}
	})
}

// FuzzParseIndex: the index parser never panics, and an accepted index is
// valid.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"dim":3,"model":{"mode":"checkpoint","arch":"resnet18"},"transform":{"resize":256,"crop":224,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]},"source":{"format":"imagenet","root":"/d"},"config_hash":"x","inputs":2,"samples":1,"dead_letters":1,"files":[{"name":"part-00000-of-00001.safetensors","samples":1,"bytes":120,"crc32c":"AAAAAA=="}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex(data)
		if err != nil {
			return
		}
		if err := ix.Validate(); err != nil {
			t.Fatalf("accepted an invalid index: %v", err)
		}
	})
}
