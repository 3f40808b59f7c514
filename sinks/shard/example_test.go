package shard_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/sslight-go/sslight/sinks/shard"
)

// Write one shard of two samples to memfs:// and read it back, verifying it
// against the Info the writer returned (as the manifest records it).
func Example() {
	ctx := context.Background()
	const configHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	w, err := shard.Create(ctx, "memfs://example/out", configHash, 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Abort() // no-op once Close succeeded
	for i, key := range []string{"n01440764_10026", "n01440764_10027"} {
		err := w.Add(&shard.Sample{
			Key:    key,
			Meta:   []byte(fmt.Sprintf(`{"label":%d}`, i)),
			Global: shard.Views{Count: 2, Height: 4, Width: 4, Pix: make([]uint8, 2*4*4*3)},
			Local:  shard.Views{Count: 6, Height: 2, Width: 2, Pix: make([]uint8, 6*2*2*3)},
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	info, err := w.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.URI)

	r, err := shard.Open(ctx, info.URI, &shard.Expect{Bytes: info.Bytes, CRC32C: info.CRC32C})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	var s shard.Sample // buffers are reused from sample to sample
	for {
		err := r.Next(&s)
		if err == io.EOF {
			break // the whole shard matched its size and CRC32C
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(s.Key, string(s.Meta), s.Global.Shape(), s.Local.Shape())
	}
	// Output:
	// memfs://example/out/epoch-0000/a012f22f-e5ff-5835-85f2-18efb8d9e243.tar
	// n01440764_10026 {"label":0} [2 4 4 3] [6 2 2 3]
	// n01440764_10027 {"label":1} [2 4 4 3] [6 2 2 3]
}
