package gpu

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// fakeRaw is a raw allocator with a capacity that hands out fake addresses
// and checks every free.
type fakeRaw struct {
	mu       sync.Mutex
	capacity int
	used     int
	next     cuda.DevPtr
	live     map[cuda.DevPtr]int
	failFree bool
}

func newFakeRaw(capacity int) *fakeRaw {
	return &fakeRaw{capacity: capacity, next: 0x1000, live: map[cuda.DevPtr]int{}}
}

var errOOM = errors.New("out of memory")

func (f *fakeRaw) Malloc(n int) (cuda.DevPtr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.used+n > f.capacity {
		return 0, errOOM
	}
	p := f.next
	f.next += cuda.DevPtr(n)
	f.used += n
	f.live[p] = n
	return p, nil
}

func (f *fakeRaw) Free(p cuda.DevPtr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failFree {
		return errors.New("free failed")
	}
	n, ok := f.live[p]
	if !ok {
		panic(fmt.Sprintf("free of unknown %#x", p))
	}
	delete(f.live, p)
	f.used -= n
	return nil
}

func TestSizeClass(t *testing.T) {
	tests := []struct{ in, want int }{
		{1, 512}, {512, 512}, {513, 1024}, {4000, 4096}, {1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 1<<17}, {3 << 20, 3 << 20}, {100 << 20, 104 << 20}, {(1 << 30) - 1, 1 << 30},
	}
	for _, tc := range tests {
		if got := SizeClass(tc.in); got != tc.want {
			t.Errorf("SizeClass(%d) = %d, want %d", tc.in, got, tc.want)
		}
		if got := SizeClass(tc.in); got < tc.in || float64(got) > 1.125*float64(tc.in)+512 {
			t.Errorf("SizeClass(%d) = %d wastes too much", tc.in, got)
		}
	}
}

func TestAllocatorReusesPerStream(t *testing.T) {
	raw := newFakeRaw(1 << 30)
	a := NewAllocator(raw)
	b1, err := a.Alloc(1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	a.Free(b1)
	// Same class, same stream: the cached block comes back.
	b2, _ := a.Alloc(900, 1)
	if b2.Ptr != b1.Ptr {
		t.Fatalf("same stream and class: got %#x, want the cached %#x", b2.Ptr, b1.Ptr)
	}
	// Another stream never sees stream 1's free blocks.
	a.Free(b2)
	b3, _ := a.Alloc(1000, 2)
	if b3.Ptr == b1.Ptr {
		t.Fatal("a block freed on stream 1 was handed to stream 2")
	}
	// Another class is a new allocation.
	b4, _ := a.Alloc(5000, 1)
	if b4.Ptr == b1.Ptr {
		t.Fatal("a 1024-byte block served a 5000-byte request")
	}
	st := a.Stats()
	want := AllocStats{InUse: 1024 + 5120, PeakInUse: 1024 + 5120, Requested: 6000, Cached: 1024,
		Reserved: 2*1024 + 5120, PeakReserved: 2*1024 + 5120, Mallocs: 3, Hits: 1}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	a.Free(b3)
	a.Free(b4)
	if err := a.EmptyCache(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Reserved != 0 || st.Cached != 0 || st.InUse != 0 || st.Frees != 3 || raw.used != 0 {
		t.Fatalf("after EmptyCache: %+v, raw holds %d", st, raw.used)
	}
}

func TestAllocatorRetriesAfterEmptyingTheCache(t *testing.T) {
	raw := newFakeRaw(4096)
	a := NewAllocator(raw)
	b, _ := a.Alloc(3000, 0) // class 3072
	a.Free(b)
	// 2048 more do not fit beside the cached 3072: the cache must go.
	c, err := a.Alloc(2048, 0)
	if err != nil {
		t.Fatalf("allocation after a cache flush failed: %v", err)
	}
	if st := a.Stats(); st.Cached != 0 || st.Frees != 1 || st.InUse != 2048 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := a.Alloc(4096, 0); !errors.Is(err, errOOM) {
		t.Fatalf("over capacity: %v, want the raw allocator's error", err)
	}
	a.Free(c)
}

func TestAllocatorEmptyCacheKeepsWhatDidNotFree(t *testing.T) {
	raw := newFakeRaw(1 << 20)
	a := NewAllocator(raw)
	b, _ := a.Alloc(100, 0)
	a.Free(b)
	raw.failFree = true
	if err := a.EmptyCache(); err == nil {
		t.Fatal("a failed free was not reported")
	}
	if st := a.Stats(); st.Cached != 512 || st.Reserved != 512 {
		t.Fatalf("stats %+v: the block that did not free must stay cached", st)
	}
	raw.failFree = false
	if err := a.EmptyCache(); err != nil || raw.used != 0 {
		t.Fatalf("second EmptyCache: %v, raw holds %d", err, raw.used)
	}
}

func TestAllocatorDoubleFreePanics(t *testing.T) {
	a := NewAllocator(newFakeRaw(1 << 20))
	b, _ := a.Alloc(10, 0)
	a.Free(b)
	defer func() {
		if recover() == nil {
			t.Fatal("double free did not panic")
		}
	}()
	a.Free(b)
}

// TestAllocatorConcurrent hammers one allocator from several goroutines
// (run under -race): live blocks never overlap and the counters balance.
func TestAllocatorConcurrent(t *testing.T) {
	raw := newFakeRaw(1 << 30)
	a := NewAllocator(raw)
	var mu sync.Mutex
	owner := map[cuda.DevPtr]int{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var mine []*Block
			for i := 0; i < 300; i++ {
				if len(mine) > 5 || (i%3 == 2 && len(mine) > 0) {
					b := mine[0]
					mine = mine[1:]
					mu.Lock()
					delete(owner, b.Ptr)
					mu.Unlock()
					a.Free(b)
					continue
				}
				b, err := a.Alloc(100+(i*37+g*11)%5000, cuda.Stream(g%2))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if o, ok := owner[b.Ptr]; ok {
					t.Errorf("block %#x handed to goroutine %d while goroutine %d holds it", b.Ptr, g, o)
				}
				owner[b.Ptr] = g
				mu.Unlock()
				mine = append(mine, b)
			}
			for _, b := range mine {
				mu.Lock()
				delete(owner, b.Ptr)
				mu.Unlock()
				a.Free(b)
			}
		}(g)
	}
	wg.Wait()
	st := a.Stats()
	if st.InUse != 0 || st.Requested != 0 || st.Cached != st.Reserved || st.Reserved != int64(raw.used) {
		t.Fatalf("unbalanced: %+v, raw holds %d", st, raw.used)
	}
	if st.Hits == 0 {
		t.Fatal("no allocation was served from the cache")
	}
}
