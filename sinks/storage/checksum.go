package storage

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
)

// castagnoli is the CRC32C table GCS uses for object checksums; hash/crc32
// uses the SSE4.2/ARMv8 CRC instructions for it where the CPU has them.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// UpdateCRC32C returns crc extended by p, in the CRC32C (Castagnoli)
// polynomial. Start from 0.
func UpdateCRC32C(crc uint32, p []byte) uint32 {
	return crc32.Update(crc, castagnoli, p)
}

// CRC32CBase64 formats crc the way GCS reports it (object metadata crc32c,
// gsutil hash -c): base64 of the four big-endian bytes.
func CRC32CBase64(crc uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc)
	return base64.StdEncoding.EncodeToString(b[:])
}

// Digest accumulates the CRC32C and length of everything written to it. Use
// it with io.TeeReader or io.MultiWriter to checksum a stream as it passes.
type Digest struct {
	CRC32C uint32 // CRC32C (Castagnoli) of the bytes so far
	Size   int64  // number of bytes so far
}

// Write adds p to the digest; it never fails.
func (d *Digest) Write(p []byte) (int, error) {
	d.CRC32C = crc32.Update(d.CRC32C, castagnoli, p)
	d.Size += int64(len(p))
	return len(p), nil
}
