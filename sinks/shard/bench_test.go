package shard

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/sslight-go/sslight/sinks/storage"
)

// samplesPerShard is what a ~120 MB shard holds at the realistic crop sizes.
const samplesPerShard = 200

// benchSamples returns samplesPerShard samples sharing one realistic set of
// crops (2×224×224×3 + 6×128×128×3 uint8, 596 KB) under distinct keys.
func benchSamples() []Sample {
	proto := makeSample(0, realistic)
	out := make([]Sample, samplesPerShard)
	for i := range out {
		out[i] = *proto
		out[i].Key = fmt.Sprintf("n01440764_%05d", i)
	}
	return out
}

func pixBytes(s *Sample) int64 { return int64(len(s.Global.Pix) + len(s.Local.Pix)) }

// BenchmarkShardWrite measures writing samples into shards; MB/s counts
// pixel bytes. "encode" is the tar + npy + CRC32C path alone; "local"
// adds the atomic local file (temp file, fsync, rename) every 200 samples.
func BenchmarkShardWrite(b *testing.B) {
	samples := benchSamples()
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(pixBytes(&samples[0]))
		b.ReportAllocs()
		var d storage.Digest
		var e *encoder
		for i := 0; i < b.N; i++ {
			if i%samplesPerShard == 0 {
				if e != nil {
					e.close()
				}
				e = newEncoder(io.MultiWriter(io.Discard, &d))
			}
			if _, err := e.add(&samples[i%samplesPerShard]); err != nil {
				b.Fatal(err)
			}
		}
		e.close()
	})
	b.Run("local", func(b *testing.B) {
		ctx := context.Background()
		out := b.TempDir()
		b.SetBytes(pixBytes(&samples[0]))
		b.ReportAllocs()
		var w *Writer
		for i := 0; i < b.N; i++ {
			if i%samplesPerShard == 0 {
				if w != nil {
					if _, err := w.Close(); err != nil {
						b.Fatal(err)
					}
				}
				var err error
				if w, err = Create(ctx, out, testHash, 0, i/samplesPerShard); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Add(&samples[i%samplesPerShard]); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkShardRead measures reading a realistic in-memory shard,
// verifying structure and CRC32C; MB/s counts pixel bytes.
func BenchmarkShardRead(b *testing.B) {
	samples := benchSamples()[:20]
	var buf bytes.Buffer
	e := newEncoder(&buf)
	for i := range samples {
		e.add(&samples[i])
	}
	e.close()
	raw := buf.Bytes()
	expect := &Expect{Bytes: int64(len(raw)), CRC32C: storage.UpdateCRC32C(0, raw)}
	b.SetBytes(pixBytes(&samples[0]) * int64(len(samples)))
	b.ReportAllocs()
	var s Sample
	for i := 0; i < b.N; i++ {
		r := NewReader(bytes.NewReader(raw), "bench", expect)
		for {
			err := r.Next(&s)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
