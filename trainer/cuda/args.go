package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
)

// PackArgs writes kernel arguments into dst, one 8-byte little-endian slot
// each, as cuLaunchKernel reads them through its parameter pointers: an
// argument's bytes start at its slot, so 4-byte types fill the low half.
//
// Types and the C types they stand for: DevPtr and uint64 (pointers,
// unsigned long long), int64 (long long), int and int32 (int; an int must
// fit in 32 bits), uint32 (unsigned int), float32 (float), float64
// (double).
func PackArgs(dst []byte, args []any) error {
	if len(dst) < 8*len(args) {
		return fmt.Errorf("%d arguments need %d bytes, have %d", len(args), 8*len(args), len(dst))
	}
	for i, a := range args {
		slot := dst[8*i : 8*i+8]
		clear(slot)
		switch v := a.(type) {
		case DevPtr:
			binary.LittleEndian.PutUint64(slot, uint64(v))
		case uint64:
			binary.LittleEndian.PutUint64(slot, v)
		case int64:
			binary.LittleEndian.PutUint64(slot, uint64(v))
		case int:
			if v < math.MinInt32 || v > math.MaxInt32 {
				return fmt.Errorf("argument %d: %d does not fit a C int", i, v)
			}
			binary.LittleEndian.PutUint32(slot, uint32(int32(v)))
		case int32:
			binary.LittleEndian.PutUint32(slot, uint32(v))
		case uint32:
			binary.LittleEndian.PutUint32(slot, v)
		case float32:
			binary.LittleEndian.PutUint32(slot, math.Float32bits(v))
		case float64:
			binary.LittleEndian.PutUint64(slot, math.Float64bits(v))
		default:
			return fmt.Errorf("argument %d: type %T is not a kernel argument type", i, a)
		}
	}
	return nil
}
