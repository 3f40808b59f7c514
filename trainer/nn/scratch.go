package nn

import (
	"math/bits"
	"sync"
)

// Scratch buffers (im2col matrices, attention weights) are needed only
// while one op runs, so they come from size-class pools instead of being
// allocated per call or kept per op: a training step then allocates none
// once warm, and memory holds only the buffers in use at one time.
var scratchPools [48]sync.Pool

// getScratch returns a float32 slice of length n (contents undefined).
func getScratch(n int) []float32 {
	if n == 0 {
		return nil
	}
	class := bits.Len(uint(n - 1))
	if p, ok := scratchPools[class].Get().(*[]float32); ok {
		return (*p)[:n]
	}
	return make([]float32, n, 1<<class)
}

// putScratch returns a slice obtained from getScratch to its pool.
func putScratch(b []float32) {
	if cap(b) == 0 {
		return
	}
	class := bits.Len(uint(cap(b) - 1))
	if 1<<class != cap(b) {
		return // not from getScratch
	}
	b = b[:cap(b)]
	scratchPools[class].Put(&b)
}

// putAll returns every non-nil buffer to its pool.
func putAll(bufs [][]float32) {
	for _, b := range bufs {
		putScratch(b)
	}
}

// ReleaseScratch empties the scratch pools, so that the next garbage
// collection frees them; sync.Pool alone keeps its buffers through one more
// collection. For when a process is done with a model for a while (a
// closed feature extractor); buffers in use are unaffected, and later ops
// allocate afresh.
func ReleaseScratch() {
	for i := range scratchPools {
		for scratchPools[i].Get() != nil {
		}
	}
}
