package transforms

import (
	"context"
	"runtime"
	"sync"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/augment/decode"
	"github.com/sslight-go/sslight/internal/procstat"
)

// DefaultDecodeMemory is the decode budget of a worker process when none is
// configured: a quarter of the memory the process may use (the machine's,
// or its container's limit), 2 GiB where that is unknown. It is computed
// on the worker, whose memory is the one that counts.
func DefaultDecodeMemory() int64 {
	if m := procstat.MemoryBytes(); m > 0 {
		return m / 4
	}
	return 2 << 30
}

// decodeBudget bounds the estimated memory (decode.MemoryEstimate) of the
// decodes running at once: acquire waits until an image's estimate fits
// beside those in flight. An estimate over the whole budget is clamped to
// it, so such an image waits until nothing else is decoding and is then
// decoded alone. Waiters are served in arrival order, so a large image is
// not starved by a stream of small ones.
type decodeBudget struct {
	size int64

	mu      sync.Mutex
	used    int64
	waiters []*budgetWaiter
	peak    int64 // the most ever in use, for tests
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

// acquire reserves n bytes (at most the budget) and returns what it
// reserved, for release; it fails only when ctx ends first.
func (b *decodeBudget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(max(n, 1), b.size)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.size {
		b.take(n)
		b.mu.Unlock()
		return n, nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return n, nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted while ctx ended: give it back
		b.used -= n
	default:
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
	}
	b.grant() // the waiters behind this one may fit now
	return 0, ctx.Err()
}

// release returns n bytes acquire reserved.
func (b *decodeBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.grant()
	b.mu.Unlock()
}

// grant admits waiters from the head of the queue while they fit.
func (b *decodeBudget) grant() {
	for len(b.waiters) > 0 && b.used+b.waiters[0].n <= b.size {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.take(w.n)
		close(w.ready)
	}
}

func (b *decodeBudget) take(n int64) {
	b.used += n
	b.peak = max(b.peak, b.used)
}

// budgets are the process's decode budgets by size: every shard and
// features builder of a worker process with the same setting shares one,
// however many bundles the runner runs at once.
var budgets sync.Map // int64 → *decodeBudget

// sharedDecodeBudget returns the process-wide budget of mb MiB (≤ 0:
// DefaultDecodeMemory).
func sharedDecodeBudget(mb int) *decodeBudget {
	size := int64(mb) << 20
	if mb <= 0 {
		size = DefaultDecodeMemory()
	}
	if b, ok := budgets.Load(size); ok {
		return b.(*decodeBudget)
	}
	b, _ := budgets.LoadOrStore(size, &decodeBudget{size: size})
	return b.(*decodeBudget)
}

// retainLimit is the largest pixel buffer a worker keeps for its next
// image once an image is done; a larger one is dropped with its budget, so
// a worker that met a huge image does not hold its memory outside the
// budget afterwards.
const retainLimit = 64 << 20

// decodeWithin decodes data into dst once its estimated memory fits the
// process's decode budget of budgetMB MiB (≤ 0: DefaultDecodeMemory), and
// returns a release to call when dst's pixels are no longer needed. An
// image over the pixel limit is refused from its header before it waits.
// On error nothing stays reserved and release is a no-op.
func decodeWithin(ctx context.Context, dst *augment.Image, data []byte, opts decode.Options, budgetMB int) (decode.Info, func(), error) {
	noop := func() {}
	info, est, err := decode.MemoryEstimate(data, opts)
	if err != nil {
		return info, noop, err
	}
	b := sharedDecodeBudget(budgetMB)
	n, err := b.acquire(ctx, est)
	if err != nil {
		return info, noop, err
	}
	release := func() {
		if cap(dst.Pix) > retainLimit {
			*dst = augment.Image{}
		}
		if n >= b.size/4 {
			// The decoder's own image of a large picture is garbage now;
			// collect it before the next decode may take its place, so the
			// heap, not only the accounting, stays near the budget.
			runtime.GC()
		}
		b.release(n)
	}
	if info, err = decode.DecodeInto(dst, data, opts); err != nil {
		release()
		return info, noop, err
	}
	return info, release, nil
}
