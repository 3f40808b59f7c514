package gpu

import (
	"errors"
	"fmt"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// StreamDevice is what the upload pipeline needs of a device: streams,
// events, pinned host memory and asynchronous copies. *cuda.Device is one
// (hostemu.Device too, trivially synchronous).
type StreamDevice interface {
	RawAllocator
	NewStream() (cuda.Stream, error)
	DestroyStream(cuda.Stream) error
	NewEvent(timing bool) (cuda.Event, error)
	DestroyEvent(cuda.Event) error
	RecordEvent(e cuda.Event, s cuda.Stream) error
	StreamWaitEvent(s cuda.Stream, e cuda.Event) error
	EventSynchronize(e cuda.Event) error
	HostAlloc(n int) ([]float32, error)
	HostFree(buf []float32) error
	CopyHtoDAsync(dst cuda.DevPtr, src []float32, s cuda.Stream) error
}

// Uploader double-buffers host-to-device copies so that the copy of batch
// k+1 overlaps the computation on batch k: each of its two slots is a
// pinned host buffer and a device buffer, copied on the uploader's own
// stream. The events keep three orders and nothing more:
//
//   - the host refills a slot's pinned buffer only after the copy that
//     last read it is done (EventSynchronize on the slot's copied event);
//   - the copy into a slot's device buffer waits for the compute stream to
//     be done with the batch that last used it (the copy stream waits on
//     the slot's consumed event, recorded by Done);
//   - the compute stream reads the slot only after its copy (Use makes it
//     wait on the copied event).
//
// An Uploader is not safe for concurrent use.
type Uploader struct {
	dev     StreamDevice
	compute cuda.Stream
	copy    cuda.Stream
	slots   [2]*uploadSlot
	next    int
	cap     int
}

type uploadSlot struct {
	host     []float32
	dev      cuda.DevPtr
	copied   cuda.Event
	consumed cuda.Event
	copying  bool // a copy out of host was queued (copied will be recorded)
	inUse    bool // the compute stream was given the slot
	done     bool // Done recorded consumed after the slot's last use
}

// Staged is a batch whose copy is queued.
type Staged struct {
	slot   *uploadSlot
	tensor *Tensor
}

// NewUploader returns an uploader of batches of up to elems floats for
// work on the compute stream.
func NewUploader(dev StreamDevice, compute cuda.Stream, elems int) (*Uploader, error) {
	if elems < 1 {
		return nil, fmt.Errorf("gpu: uploader of %d elements", elems)
	}
	u := &Uploader{dev: dev, compute: compute, cap: elems}
	var err error
	if u.copy, err = dev.NewStream(); err != nil {
		return nil, err
	}
	for i := range u.slots {
		s := &uploadSlot{}
		u.slots[i] = s
		if s.host, err = dev.HostAlloc(elems); err != nil {
			u.Close()
			return nil, err
		}
		if s.dev, err = dev.Malloc(4 * elems); err != nil {
			u.Close()
			return nil, err
		}
		if s.copied, err = dev.NewEvent(false); err != nil {
			u.Close()
			return nil, err
		}
		if s.consumed, err = dev.NewEvent(false); err != nil {
			u.Close()
			return nil, err
		}
	}
	return u, nil
}

// Stage fills the next slot through fill (given the pinned buffer cut to
// shape's size) and queues its copy. It blocks only until the slot's
// previous copy is done, never on the compute stream.
func (u *Uploader) Stage(shape []int, fill func(host []float32) error) (*Staged, error) {
	n := numel(shape)
	if n > u.cap {
		return nil, fmt.Errorf("gpu: batch %v of %d floats exceeds the uploader's %d", shape, n, u.cap)
	}
	s := u.slots[u.next]
	u.next = 1 - u.next
	if s.copying {
		if err := u.dev.EventSynchronize(s.copied); err != nil {
			return nil, err
		}
		s.copying = false
	}
	if err := fill(s.host[:n]); err != nil {
		return nil, err
	}
	if s.inUse {
		if !s.done {
			// Without Done the consumed event was never recorded and the
			// copy would not wait for the computation reading the slot.
			return nil, errors.New("gpu: Stage reuses a slot whose batch was not marked Done")
		}
		if err := u.dev.StreamWaitEvent(u.copy, s.consumed); err != nil {
			return nil, err
		}
		s.inUse = false
	}
	if err := u.dev.CopyHtoDAsync(s.dev, s.host[:n], u.copy); err != nil {
		return nil, err
	}
	if err := u.dev.RecordEvent(s.copied, u.copy); err != nil {
		return nil, err
	}
	s.copying = true
	return &Staged{slot: s, tensor: &Tensor{Shape: append([]int(nil), shape...), blk: &Block{Ptr: s.dev, Size: 4 * n}}}, nil
}

// Use makes the compute stream wait for st's copy and returns its device
// tensor, valid until Done. The tensor belongs to the uploader: never
// Release it.
func (u *Uploader) Use(st *Staged) (*Tensor, error) {
	if st.slot.inUse {
		return nil, errors.New("gpu: a staged batch used twice")
	}
	if err := u.dev.StreamWaitEvent(u.compute, st.slot.copied); err != nil {
		return nil, err
	}
	st.slot.inUse, st.slot.done = true, false
	return st.tensor, nil
}

// Done records that the work queued on the compute stream so far is all
// that reads st: its slot may be refilled after it.
func (u *Uploader) Done(st *Staged) error {
	if err := u.dev.RecordEvent(st.slot.consumed, u.compute); err != nil {
		return err
	}
	st.slot.done = true
	return nil
}

// Close releases the buffers, events and the copy stream (waiting for the
// copies in flight).
func (u *Uploader) Close() error {
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for _, s := range u.slots {
		if s == nil {
			continue
		}
		if s.copying {
			keep(u.dev.EventSynchronize(s.copied))
		}
		if s.host != nil {
			keep(u.dev.HostFree(s.host))
		}
		if s.dev != 0 {
			keep(u.dev.Free(s.dev))
		}
		if s.copied != 0 {
			keep(u.dev.DestroyEvent(s.copied))
		}
		if s.consumed != 0 {
			keep(u.dev.DestroyEvent(s.consumed))
		}
	}
	if u.copy != 0 {
		keep(u.dev.DestroyStream(u.copy))
	}
	u.slots = [2]*uploadSlot{}
	return first
}
