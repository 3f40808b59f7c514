package shard

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/sslight-go/sslight/infra/gcsemu/gcsemutest"
	"github.com/sslight-go/sslight/sinks/storage"
)

// TestGCSEmulator writes a shard to gs:// through sinks/storage,
// checks the CRC32C the emulator computed for the object against ours, and
// reads it back with verification.
func TestGCSEmulator(t *testing.T) {
	srv := gcsemutest.Start(t, "shards")
	ctx := context.Background()
	out := "gs://shards/run1"
	info := writeShard(t, out, 1, 2, 3, small)
	if info.URI != "gs://shards/run1/epoch-0001/"+Name(testHash, 1, 2) {
		t.Fatalf("URI %s", info.URI)
	}
	obj, err := srv.GetObject("shards", "run1/epoch-0001/"+info.Name)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(obj.Content)) != info.Bytes || crc32c(obj.Content) != info.CRC32C {
		t.Errorf("object is %d bytes crc %08x; Info says %d bytes crc %08x", len(obj.Content), crc32c(obj.Content), info.Bytes, info.CRC32C)
	}
	// The emulator reports the checksum the way GCS does: base64 of the
	// big-endian CRC32C.
	raw, err := base64.StdEncoding.DecodeString(obj.Crc32c)
	if err != nil || len(raw) != 4 || binary.BigEndian.Uint32(raw) != info.CRC32C || obj.Crc32c != info.CRC32CBase64 {
		t.Errorf("emulator crc32c %q, Info %q (%08x)", obj.Crc32c, info.CRC32CBase64, info.CRC32C)
	}

	r, err := Open(ctx, info.URI, &Expect{Bytes: info.Bytes, CRC32C: info.CRC32C})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var s Sample
	n := 0
	for ; ; n++ {
		err := r.Next(&s)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != 3 {
		t.Errorf("read %d samples, want 3", n)
	}

	// An aborted shard never appears.
	w, err := Create(ctx, out, testHash, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	w.Add(makeSample(0, small))
	w.Abort()
	if ok, err := storage.Exists(ctx, URI(out, testHash, 1, 3)); ok || err != nil {
		t.Errorf("aborted gs:// shard: exists=%v err=%v", ok, err)
	}
	if _, err := Open(ctx, URI(out, testHash, 1, 3), nil); err == nil {
		t.Error("opened a shard that was never committed")
	}
	// A mismatching expectation is reported.
	r2, _ := Open(ctx, info.URI, &Expect{Bytes: info.Bytes, CRC32C: info.CRC32C ^ 1})
	defer r2.Close()
	for err = nil; err == nil; {
		err = r2.Next(&s)
	}
	if !errors.Is(err, ErrMismatch) {
		t.Errorf("wrong expected CRC: %v", err)
	}
}
