package ssl

import (
	"encoding/binary"
	"math"
	"testing"
)

// FuzzSinkhorn feeds arbitrary scores to Sinkhorn: it must either return an
// error or assignments that are finite, non-negative and sum to 1 per
// sample; it must never panic.
func FuzzSinkhorn(f *testing.F) {
	f.Add(uint8(2), uint8(3), []byte{0, 0, 128, 63, 0, 0, 0, 0, 0, 0, 128, 191, 205, 204, 76, 62, 0, 0, 0, 63, 0, 0, 0, 0})
	f.Add(uint8(1), uint8(1), []byte{0, 0, 0, 0})
	f.Add(uint8(3), uint8(2), []byte{0, 0, 200, 66, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, n, k uint8, raw []byte) {
		rows, cols := int(n%16), int(k%16)
		scores := make([]float32, len(raw)/4)
		for i := range scores {
			scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		dst := make([]float32, len(scores))
		if err := Sinkhorn(dst, scores, rows, cols, 0.05, 3); err != nil {
			return
		}
		for r := 0; r < rows; r++ {
			var s float64
			for _, v := range dst[r*cols : (r+1)*cols] {
				if !(v >= 0) || math.IsInf(float64(v), 0) {
					t.Fatalf("assignment %v for scores %v", v, scores)
				}
				s += float64(v)
			}
			if math.Abs(s-1) > 1e-5 {
				t.Fatalf("row %d sums to %v for scores %v", r, s, scores)
			}
		}
	})
}
