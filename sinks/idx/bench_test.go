package idx

import (
	"bytes"
	"testing"
)

// benchFile is a 10000-record 28x28 images file, the size of MNIST's t10k.
func benchFile(b *testing.B, zip bool) []byte {
	body := make([]byte, 10000*28*28)
	for i := range body {
		body[i] = byte(i * 7 / 3)
	}
	data := idxFile(0x08, []uint32{10000, 28, 28}, body)
	if zip {
		data = gz(b, data)
	}
	return data
}

func BenchmarkReadImages(b *testing.B) {
	for _, zip := range []bool{false, true} {
		name := "raw"
		if zip {
			name = "gzip"
		}
		b.Run(name, func(b *testing.B) {
			data := benchFile(b, zip)
			b.SetBytes(10000 * 28 * 28)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadImages(bytes.NewReader(data), "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkScanImages(b *testing.B) {
	data := benchFile(b, true)
	b.SetBytes(10000 * 28 * 28)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ScanImages(bytes.NewReader(data), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
