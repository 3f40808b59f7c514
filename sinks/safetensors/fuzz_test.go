package safetensors

import (
	"bytes"
	"os"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the reader: it must never panic, and
// whatever it accepts must survive an encode/decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile(smallFixture); err == nil {
		f.Add(b)
	}
	f.Add(file(`{}`, 0))
	f.Add(file(`{"a":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}   `, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decode(data)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := Encode(&buf, got); err != nil {
			t.Fatalf("encode of an accepted file: %v", err)
		}
		back, err := Decode(buf.Bytes())
		if err != nil {
			t.Fatalf("decode of our own encoding: %v", err)
		}
		if len(back.Names) != len(got.Names) {
			t.Fatalf("round trip changed names %v -> %v", got.Names, back.Names)
		}
	})
}
