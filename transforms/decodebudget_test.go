package transforms

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sslight-go/sslight/augment/decode"
	"github.com/sslight-go/sslight/transforms/source"
)

// TestDecodeBudgetAccounting drives the budget with fake decodes of random
// sizes (a few over the whole budget) from many goroutines and checks, from
// the holders' own bookkeeping, that what is held never exceeds the budget
// and that an oversize reservation is held alone.
func TestDecodeBudgetAccounting(t *testing.T) {
	const size = 1000
	b := &decodeBudget{size: size}
	var (
		mu             sync.Mutex
		held, maxHeld  int64
		oversizeShared bool
		holders        int
	)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			for i := 0; i < 50; i++ {
				want := rng.Int64N(600) + 1
				if rng.IntN(10) == 0 {
					want = size + rng.Int64N(5000) // bigger than the budget
				}
				n, err := b.acquire(context.Background(), want)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				held += n
				holders++
				maxHeld = max(maxHeld, held)
				if want > size && holders > 1 {
					oversizeShared = true
				}
				mu.Unlock()
				time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
				mu.Lock()
				held -= n
				holders--
				if want > size && holders > 0 {
					oversizeShared = true
				}
				mu.Unlock()
				b.release(n)
			}
		}(uint64(g))
	}
	wg.Wait()
	if maxHeld > size || b.peak > size {
		t.Errorf("held up to %d (budget's own peak %d), budget %d", maxHeld, b.peak, size)
	}
	if oversizeShared {
		t.Error("an image larger than the budget was decoded beside another")
	}
	if b.used != 0 || len(b.waiters) != 0 {
		t.Errorf("after everything: %d in use, %d waiting", b.used, len(b.waiters))
	}
}

// TestDecodeBudgetOrderAndCancel: waiters are served in arrival order (a
// small reservation that would fit does not overtake a large one), and a
// waiter whose context ends leaves the queue without holding anything.
func TestDecodeBudgetOrderAndCancel(t *testing.T) {
	b := &decodeBudget{size: 100}
	first, _ := b.acquire(context.Background(), 60)
	got := make(chan string, 3)
	go func() {
		n, _ := b.acquire(context.Background(), 80) // must wait for first
		got <- "large"
		b.release(n)
	}()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 1 })
	go func() {
		n, _ := b.acquire(context.Background(), 10) // fits now, but arrived after large
		got <- "small"
		b.release(n)
	}()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 2 })
	// small would fit beside first, but large is ahead of it.
	time.Sleep(20 * time.Millisecond)
	select {
	case who := <-got:
		t.Fatalf("%s was served while first still held 60 of 100", who)
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := b.acquire(ctx, 50); errc <- err }()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 3 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled acquire: %v", err)
	}
	b.release(first) // now large and small both fit
	<-got
	<-got
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used != 0 || len(b.waiters) != 0 {
		t.Errorf("after everything: %d in use, %d waiting", b.used, len(b.waiters))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// solidPNG writes a w×h single-colour PNG (a few KB however large).
func solidPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	c := color.RGBA{200, 30, 90, 255}
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestShardBuilderStaysWithinDecodeBudget builds a shard of large
// solid-colour PNGs (7 bytes a pixel while decoding) with four workers
// under a budget that fits one of them at a time, one PNG larger than the
// whole budget, and a header over the pixel limit: every image becomes a
// sample, the bomb a dead letter naming the limit, and the budget never
// held more than its size.
func TestShardBuilderStaysWithinDecodeBudget(t *testing.T) {
	dir := t.TempDir()
	var items []source.Item
	add := func(name string) {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, source.Item{URI: p, Key: name, Index: -1, Label: -1, Size: st.Size()})
	}
	for _, name := range []string{"a.png", "b.png", "c.png", "d.png"} {
		solidPNG(t, filepath.Join(dir, name), 1000, 900) // ≈ 6.6 MB estimated each
		add(name)
	}
	solidPNG(t, filepath.Join(dir, "huge.png"), 1700, 1600) // ≈ 19 MB: over the 9 MiB budget
	add("huge.png")
	bomb, err := os.ReadFile(filepath.Join("..", "testdata", "prepare", "bad", "bomb.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bomb.png"), bomb, 0o644); err != nil {
		t.Fatal(err)
	}
	add("bomb.png")

	const budgetMB = 9 // unique to this test: budgets are shared per size within the process
	for _, it := range items[:4] {
		data, _ := os.ReadFile(it.URI)
		if _, est, err := decode.MemoryEstimate(data, decode.Options{}); err != nil || est <= budgetMB<<20/2 || est > budgetMB<<20 {
			t.Fatalf("%s: estimate %d (%v): the test wants one image, not two, to fit %d MiB", it.Key, est, err, budgetMB)
		}
	}
	b := &ShardBuilder{Out: t.TempDir(), ConfigHash: testHash, Seed: 1, Policy: smallPolicy(), Workers: 4, DecodeMemoryMB: budgetMB}
	info, dead, err := b.Build(context.Background(), ShardJob{Epoch: 0, Index: 0, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if info == nil || info.Samples != 5 {
		t.Fatalf("info %+v: want the 5 PNGs as samples", info)
	}
	if len(dead) != 1 || dead[0].Key != "bomb.png" || dead[0].Stage != StageDecode || !strings.Contains(dead[0].Error, "exceeds limit") {
		t.Errorf("dead letters %+v: want bomb.png refused from its header at the pixel limit", dead)
	}
	bud := sharedDecodeBudget(budgetMB)
	bud.mu.Lock()
	defer bud.mu.Unlock()
	if bud.peak > budgetMB<<20 || bud.peak < budgetMB<<20 {
		// huge.png alone takes the whole budget, so the peak is exactly it.
		t.Errorf("budget peak %d bytes, want exactly the budget %d (huge.png held alone, never more)", bud.peak, budgetMB<<20)
	}
	if bud.used != 0 {
		t.Errorf("%d bytes still reserved after the shard", bud.used)
	}
}
