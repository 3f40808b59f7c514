package augment

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// viewSeedDomain separates this package's seeds from any other use of SHA-256
// over the same values; bump the version if the derivation ever changes.
const viewSeedDomain = "sslight/augment/view-rng/v1"

// ImageSeed is the first half of ViewSeed: SHA-256 over the domain string,
// the global seed and epoch (little-endian uint64) and the length-prefixed
// image key. Computing it once per image saves hashing the key per view.
func ImageSeed(seed uint64, key string, epoch int) [32]byte {
	h := sha256.New()
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(int64(epoch)))
	binary.LittleEndian.PutUint64(b[16:], uint64(len(key)))
	h.Write([]byte(viewSeedDomain))
	h.Write(b[:])
	h.Write([]byte(key))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ViewSeed is the 32-byte ChaCha8 seed of one view: SHA-256 of ImageSeed
// followed by the view index (little-endian uint64). It depends on
// (seed, key, epoch, view) only, never on processing order, worker or retry.
func ViewSeed(imageSeed [32]byte, view int) [32]byte {
	var b [40]byte
	copy(b[:32], imageSeed[:])
	binary.LittleEndian.PutUint64(b[32:], uint64(view))
	return sha256.Sum256(b[:])
}

// ViewRNG is the random source of one view: a ChaCha8 stream seeded with
// ViewSeed, so every draw is a pure function of (seed, key, epoch, view) and
// of the draws before it in the same view. The zero value is not seeded; use
// Seed. A ViewRNG is small and allocation-free.
type ViewRNG struct {
	src rand.ChaCha8
}

// Seed restarts r at the beginning of the stream for seed.
func (r *ViewRNG) Seed(seed [32]byte) {
	r.src.Seed(seed)
}

// Uint64 returns 64 uniformly random bits.
func (r *ViewRNG) Uint64() uint64 {
	return r.src.Uint64()
}

// Float64 returns a float64 uniformly distributed in [0, 1) with 53 random
// bits, the distribution of Python's random.random and torch.rand.
func (r *ViewRNG) Float64() float64 {
	return float64(r.src.Uint64()>>11) * 0x1p-53
}

// Uniform32 returns lo + u·(hi − lo) in float32 for u uniform in [0, 1) with
// 24 random bits: the distribution of torch's uniform_ on a float32 tensor.
func (r *ViewRNG) Uniform32(lo, hi float32) float32 {
	u := float32(r.src.Uint64()>>40) * 0x1p-24
	return lo + float32(u*(hi-lo))
}

// Uniform64 is Python's random.uniform(a, b): a + (b − a)·random().
func (r *ViewRNG) Uniform64(a, b float64) float64 {
	return a + float64((b-a)*r.Float64())
}

// IntN returns an integer uniformly distributed in [0, n) without modulo
// bias (Lemire's multiply-and-reject). It panics if n <= 0.
func (r *ViewRNG) IntN(n int) int {
	if n <= 0 {
		panic("augment: ViewRNG.IntN with n <= 0")
	}
	bound := uint64(n)
	hi, lo := bits.Mul64(r.src.Uint64(), bound)
	if lo < bound {
		thresh := -bound % bound
		for lo < thresh {
			hi, lo = bits.Mul64(r.src.Uint64(), bound)
		}
	}
	return int(hi)
}

// Perm4 returns a uniformly random permutation of 0..3 (torch.randperm(4)'s
// distribution), by Fisher–Yates.
func (r *ViewRNG) Perm4() [4]int {
	p := [4]int{0, 1, 2, 3}
	for i := 3; i > 0; i-- {
		j := r.IntN(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}
