package gpu

import (
	"fmt"
	"math/bits"
	"sync"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// RawAllocator is device memory in whole allocations: a cuda.Device
// (cuMemAlloc), the host emulation, or a fake in tests.
type RawAllocator interface {
	Malloc(bytes int) (cuda.DevPtr, error)
	Free(p cuda.DevPtr) error
}

// Block is one allocation from an Allocator.
type Block struct {
	Ptr    cuda.DevPtr
	Size   int // bytes requested
	class  int // bytes reserved: Size's size class
	stream cuda.Stream
	freed  bool
}

// AllocStats are an Allocator's counters, in bytes unless named otherwise.
type AllocStats struct {
	InUse, PeakInUse       int64 // reserved by live blocks (size classes)
	Requested              int64 // requested by live blocks
	Cached                 int64 // held in the free lists
	Reserved, PeakReserved int64 // InUse + Cached: what the device has given
	Mallocs, Frees         int   // calls to the raw allocator
	Hits                   int   // allocations served from a free list
}

// Allocator is a caching allocator: freed blocks go to a free list per
// stream and size class and serve the next request of that class on that
// stream, so a training step that repeats the last one's shapes makes no
// raw allocation at all. A block freed on one stream is reused only on
// that stream: the stream's order makes the reuse safe without
// synchronisation (work queued before the free finishes before work queued
// after the reuse). Blocks are never split.
type Allocator struct {
	raw RawAllocator

	mu    sync.Mutex
	free  map[poolKey][]cuda.DevPtr
	stats AllocStats
}

type poolKey struct {
	stream cuda.Stream
	class  int
}

// NewAllocator returns an allocator over raw.
func NewAllocator(raw RawAllocator) *Allocator {
	return &Allocator{raw: raw, free: map[poolKey][]cuda.DevPtr{}}
}

// minClass is the smallest size class: small tensors (biases, statistics)
// share one.
const minClass = 512

// SizeClass returns the bytes reserved for a request: a multiple of 512
// bytes up to 1 MiB, above that the next of eight steps per power of two
// (at most 12.5% more than asked).
func SizeClass(bytes int) int {
	if bytes <= minClass {
		return minClass
	}
	if bytes <= 1<<20 {
		return (bytes + minClass - 1) / minClass * minClass
	}
	top := 1 << (bits.Len(uint(bytes)) - 1) // the power of two at or below bytes
	step := top / 8
	return (bytes + step - 1) / step * step
}

// Alloc returns a block of at least bytes for use on stream s, from s's
// free list when one of its size class is there. When the device is out of
// memory it frees every cached block and tries once more.
func (a *Allocator) Alloc(bytes int, s cuda.Stream) (*Block, error) {
	if bytes <= 0 {
		return nil, fmt.Errorf("gpu: allocation of %d bytes: want a positive size", bytes)
	}
	class := SizeClass(bytes)
	key := poolKey{s, class}
	a.mu.Lock()
	defer a.mu.Unlock()
	var p cuda.DevPtr
	if l := a.free[key]; len(l) > 0 {
		p = l[len(l)-1]
		a.free[key] = l[:len(l)-1]
		a.stats.Cached -= int64(class)
		a.stats.Hits++
	} else {
		var err error
		if p, err = a.raw.Malloc(class); err != nil {
			if a.stats.Cached == 0 {
				return nil, fmt.Errorf("gpu: allocating %d bytes with %d in use: %w", class, a.stats.InUse, err)
			}
			if ferr := a.emptyLocked(); ferr != nil {
				return nil, fmt.Errorf("gpu: allocating %d bytes: %w; freeing the cache: %v", class, err, ferr)
			}
			if p, err = a.raw.Malloc(class); err != nil {
				return nil, fmt.Errorf("gpu: allocating %d bytes with %d in use and the cache emptied: %w", class, a.stats.InUse, err)
			}
		}
		a.stats.Mallocs++
		a.stats.Reserved += int64(class)
		a.stats.PeakReserved = max(a.stats.PeakReserved, a.stats.Reserved)
	}
	a.stats.InUse += int64(class)
	a.stats.Requested += int64(bytes)
	a.stats.PeakInUse = max(a.stats.PeakInUse, a.stats.InUse)
	return &Block{Ptr: p, Size: bytes, class: class, stream: s}, nil
}

// Free returns b to its stream's free list. Freeing a block twice is a
// programmer error and panics.
func (a *Allocator) Free(b *Block) {
	if b == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if b.freed {
		panic(fmt.Sprintf("gpu: block %#x of %d bytes freed twice", b.Ptr, b.Size))
	}
	b.freed = true
	key := poolKey{b.stream, b.class}
	a.free[key] = append(a.free[key], b.Ptr)
	a.stats.InUse -= int64(b.class)
	a.stats.Requested -= int64(b.Size)
	a.stats.Cached += int64(b.class)
}

// EmptyCache hands every cached block back to the raw allocator.
func (a *Allocator) EmptyCache() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.emptyLocked()
}

func (a *Allocator) emptyLocked() error {
	var first error
	for key, l := range a.free {
		kept := l[:0]
		for _, p := range l {
			if err := a.raw.Free(p); err != nil {
				kept = append(kept, p) // still ours: keep it cached
				if first == nil {
					first = err
				}
				continue
			}
			a.stats.Frees++
			a.stats.Cached -= int64(key.class)
			a.stats.Reserved -= int64(key.class)
		}
		if len(kept) == 0 {
			delete(a.free, key)
		} else {
			a.free[key] = kept
		}
	}
	return first
}

// Stats returns the counters.
func (a *Allocator) Stats() AllocStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// ResetPeak sets the peaks to the current values, to measure one phase.
func (a *Allocator) ResetPeak() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.PeakInUse, a.stats.PeakReserved = a.stats.InUse, a.stats.Reserved
}
