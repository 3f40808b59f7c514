package coco

import (
	"bytes"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	data := readFixture(b, gtPath)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(data), "gt.json"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	d, err := Parse(bytes.NewReader(readFixture(b, gtPath)), "gt.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Check(d)
	}
}

func BenchmarkDecodeCounts(b *testing.B) {
	// A 640x480 mask of 200 runs, the shape of a typical COCO result.
	counts := make([]uint32, 200)
	total := uint32(0)
	for i := range counts {
		counts[i] = uint32(37*i%1500 + 1)
		total += counts[i]
	}
	s := EncodeCounts(counts)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCounts(s); err != nil {
			b.Fatal(err)
		}
	}
}
