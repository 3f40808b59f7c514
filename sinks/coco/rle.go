package coco

import (
	"fmt"
	"math"
	"strings"
)

// The compressed RLE string of pycocotools (maskApi.c rleToString /
// rleFrString) writes each count as a little-endian base-32 varint of
// printable characters: 5 value bits per character, bit 0x20 set on every
// character but the last, bit 0x10 of the last one the sign, each character
// offset by '0' (48). From the third count on, a count is stored as its
// difference from the count two places before (the previous run of the
// same value), which keeps most numbers small.

// maxVarintChars bounds one encoded number: 7 characters carry 35 bits,
// enough for any difference of two uint32 counts. Longer runs can only
// come from a corrupt string.
const maxVarintChars = 7

// DecodeCounts decodes a compressed RLE counts string into run lengths. It
// refuses characters outside the alphabet, a string that ends inside a
// number, and counts outside 0..4294967295.
func DecodeCounts(s string) ([]uint32, error) {
	counts := make([]uint32, 0, len(s)/2+1)
	for p := 0; p < len(s); {
		var x int64
		k := 0
		for more := true; more; k++ {
			if p >= len(s) {
				return nil, fmt.Errorf("compressed counts end inside count %d", len(counts))
			}
			if k == maxVarintChars {
				return nil, fmt.Errorf("count %d has more than %d characters", len(counts), maxVarintChars)
			}
			c := int64(s[p]) - '0'
			if c < 0 || c > 63 {
				return nil, fmt.Errorf("byte %d (%q) is outside the compressed counts alphabet '0'..'o'", p, s[p])
			}
			p++
			x |= (c & 0x1f) << (5 * k)
			more = c&0x20 != 0
			if !more && c&0x10 != 0 {
				x |= -1 << (5 * (k + 1)) // sign-extend
			}
		}
		if len(counts) > 2 {
			x += int64(counts[len(counts)-2])
		}
		if x < 0 || x > math.MaxUint32 {
			return nil, fmt.Errorf("count %d decodes to %d, outside 0..%d", len(counts), x, uint32(math.MaxUint32))
		}
		counts = append(counts, uint32(x))
	}
	return counts, nil
}

// EncodeCounts writes run lengths in pycocotools' compressed string form.
func EncodeCounts(counts []uint32) string {
	var b strings.Builder
	b.Grow(2 * len(counts))
	for i, c := range counts {
		x := int64(c)
		if i > 2 {
			x -= int64(counts[i-2])
		}
		for more := true; more; {
			ch := byte(x & 0x1f)
			x >>= 5 // arithmetic shift keeps the sign
			if ch&0x10 != 0 {
				more = x != -1
			} else {
				more = x != 0
			}
			if more {
				ch |= 0x20
			}
			b.WriteByte(ch + '0')
		}
	}
	return b.String()
}
