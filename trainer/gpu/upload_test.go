package gpu

import (
	"fmt"
	"slices"
	"testing"
	"unsafe"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// clock is a vector clock over the host and the streams: a ≤ b (every
// component) means whatever a stamps happens before whatever b stamps.
type clock map[string]int

func (c clock) join(o clock) clock {
	out := clock{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range o {
		out[k] = max(out[k], v)
	}
	return out
}

func (c clock) tick(who string) clock {
	out := c.join(nil)
	out[who]++
	return out
}

func (c clock) before(o clock) bool {
	for k, v := range c {
		if o[k] < v {
			return false
		}
	}
	return true
}

// orderDevice records the ordering CUDA guarantees (stream order, events,
// host synchronisation, the host's program order before each enqueue) as
// vector clocks and checks every buffer access against the last ones that
// conflict with it: a read must follow the last write, a write every read
// and write before it.
type orderDevice struct {
	races   []string
	streams map[cuda.Stream]clock
	events  map[cuda.Event]clock
	host    clock
	writes  map[string]clock
	reads   map[string][]clock
	next    uintptr
	log     []string
	// copies and computes stamp each queued copy and computation, in order.
	copies, computes []clock
}

func newOrderDevice() *orderDevice {
	return &orderDevice{streams: map[cuda.Stream]clock{}, events: map[cuda.Event]clock{}, host: clock{},
		writes: map[string]clock{}, reads: map[string][]clock{}, next: 0x100}
}

func (d *orderDevice) id() uintptr { d.next++; return d.next }

func (d *orderDevice) enqueue(s cuda.Stream) clock {
	c := d.streams[s].join(d.host).tick(fmt.Sprint("stream", s))
	d.streams[s] = c
	return c
}

func (d *orderDevice) access(buf string, at clock, write bool, what string) {
	if w, ok := d.writes[buf]; ok && !w.before(at) {
		d.races = append(d.races, fmt.Sprintf("%s: %s races with the last write of it", what, buf))
	}
	if write {
		for _, r := range d.reads[buf] {
			if !r.before(at) {
				d.races = append(d.races, fmt.Sprintf("%s: writing %s races with a read of it", what, buf))
			}
		}
		d.writes[buf], d.reads[buf] = at, nil
		return
	}
	d.reads[buf] = append(d.reads[buf], at)
}

func hostName(s []float32) string { return fmt.Sprintf("host%p", unsafe.SliceData(s)) }

func (d *orderDevice) Malloc(int) (cuda.DevPtr, error) { return cuda.DevPtr(d.id()), nil }
func (d *orderDevice) Free(cuda.DevPtr) error          { return nil }
func (d *orderDevice) NewStream() (cuda.Stream, error) {
	s := cuda.Stream(d.id())
	d.streams[s] = clock{}
	return s, nil
}
func (d *orderDevice) DestroyStream(cuda.Stream) error    { return nil }
func (d *orderDevice) NewEvent(bool) (cuda.Event, error)  { return cuda.Event(d.id()), nil }
func (d *orderDevice) DestroyEvent(cuda.Event) error      { return nil }
func (d *orderDevice) HostFree([]float32) error           { return nil }
func (d *orderDevice) HostAlloc(n int) ([]float32, error) { return make([]float32, n), nil }
func (d *orderDevice) RecordEvent(e cuda.Event, s cuda.Stream) error {
	d.events[e] = d.streams[s].join(nil)
	d.log = append(d.log, "record")
	return nil
}
func (d *orderDevice) StreamWaitEvent(s cuda.Stream, e cuda.Event) error {
	d.streams[s] = d.streams[s].join(d.events[e])
	return nil
}
func (d *orderDevice) EventSynchronize(e cuda.Event) error {
	d.host = d.host.join(d.events[e])
	d.log = append(d.log, "sync")
	return nil
}
func (d *orderDevice) CopyHtoDAsync(dst cuda.DevPtr, src []float32, s cuda.Stream) error {
	at := d.enqueue(s)
	d.access(hostName(src), at, false, "copy")
	d.access(fmt.Sprint("dev", dst), at, true, "copy")
	d.copies = append(d.copies, at)
	d.log = append(d.log, "copy")
	return nil
}

// fill is the host writing a pinned buffer.
func (d *orderDevice) fill(buf []float32) {
	d.host = d.host.tick("host")
	d.access(hostName(buf), d.host, true, "fill")
	d.log = append(d.log, "fill")
}

// compute is a kernel on stream s reading p.
func (d *orderDevice) compute(s cuda.Stream, p cuda.DevPtr) {
	at := d.enqueue(s)
	d.access(fmt.Sprint("dev", p), at, false, "compute")
	d.computes = append(d.computes, at)
	d.log = append(d.log, "compute")
}

// TestUploaderOrdering runs the extractor's loop (stage k+1 while k
// computes) on the recording device: no access races, and each copy after
// the first is concurrent with the computation on the batch before it.
func TestUploaderOrdering(t *testing.T) {
	d := newOrderDevice()
	compute, _ := d.NewStream()
	u, err := NewUploader(d, compute, 12)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	const batches = 6
	stage := func(k int) *Staged {
		st, err := u.Stage([]int{2, 3, 2}, func(h []float32) error {
			d.fill(h)
			for i := range h {
				h[i] = float32(k)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := stage(0)
	for k := 0; k < batches; k++ {
		x, err := u.Use(st)
		if err != nil {
			t.Fatal(err)
		}
		d.compute(compute, x.Ptr())
		if err := u.Done(st); err != nil {
			t.Fatal(err)
		}
		if k+1 < batches {
			st = stage(k + 1)
		}
	}
	if len(d.races) > 0 {
		t.Fatalf("races: %v", d.races)
	}
	if len(d.copies) != batches || len(d.computes) != batches {
		t.Fatalf("%d copies and %d computations for %d batches", len(d.copies), len(d.computes), batches)
	}
	for k := 1; k < batches; k++ {
		if d.computes[k-1].before(d.copies[k]) {
			t.Errorf("the copy of batch %d waits for the computation on batch %d: no overlap", k, k-1)
		}
		if !d.copies[k].before(d.computes[k]) {
			t.Errorf("batch %d is computed before its copy", k)
		}
	}
	if k := slices.Index(d.log, "sync"); k >= 0 && k < 4 {
		t.Errorf("the host waited before the pipeline was full: %v", d.log[:6])
	}
}

// TestUploaderRaceIsCaught checks the recorder itself: skipping Done (so
// the refill cannot wait for the computation) is refused by Stage, and a
// hand-made refill without the wait is reported as a race.
func TestUploaderRaceIsCaught(t *testing.T) {
	d := newOrderDevice()
	compute, _ := d.NewStream()
	u, _ := NewUploader(d, compute, 4)
	defer u.Close()
	fill := func(h []float32) error { d.fill(h); return nil }
	a, _ := u.Stage([]int{4}, fill)
	x, _ := u.Use(a)
	d.compute(compute, x.Ptr())
	b, _ := u.Stage([]int{4}, fill)
	if _, err := u.Use(b); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Stage([]int{4}, fill); err == nil {
		t.Fatal("Stage reused a slot whose batch was never marked Done")
	}

	if len(d.races) > 0 {
		t.Fatalf("races: %v", d.races)
	}
	bad := newOrderDevice()
	s1, _ := bad.NewStream()
	s2, _ := bad.NewStream()
	buf := []float32{0}
	bad.fill(buf)
	bad.CopyHtoDAsync(7, buf, s1)
	bad.compute(s2, 7) // no event between the copy and the read
	if len(bad.races) != 1 {
		t.Fatal("a read on another stream without an event was not reported")
	}
}
