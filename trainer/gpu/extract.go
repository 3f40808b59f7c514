package gpu

import (
	"context"
	"fmt"

	"github.com/sslight-go/sslight/trainer/backbone"
)

// Extractor turns evaluation views into feature vectors on a backend, with
// trainer/features.Model.Extract's contract: each view a 3×h×w CHW
// float32 image normalised as the evaluation transform does, the backbone
// in evaluation mode (BatchNorm with its running statistics, no stochastic
// depth), Output.Embedding per view (the pooled last feature map for CNNs,
// the final-norm class token for ViTs), row-major [len(views), Dim]. A
// batch's rows do not depend on each other, so the result does not depend
// on the batch size. On a CUDA device the upload of batch k+1 overlaps the
// forward pass of batch k.
//
// An Extractor is not safe for concurrent use; one spreads each batch over
// the whole GPU.
type Extractor struct {
	// BatchSize is the most views one forward pass takes (0:
	// DefaultBatchSize for the view size).
	BatchSize int

	net     *Net
	be      Backend
	streams StreamDevice // nil: plain uploads
	up      *Uploader
	upCap   int
	owned   bool // the Net belongs to the extractor
}

// DefaultBatchSize is the batch size for h×w views when BatchSize is 0:
// 128 at 224×224, scaled inversely with the pixel count, between 1 and
// 512 (inference frees each activation as soon as it is used, so a batch
// costs little memory).
func DefaultBatchSize(h, w int) int {
	return max(1, min(512, 128*224*224/max(1, h*w)))
}

// NewExtractor uploads b's weights to dev and returns an extractor over
// them. The backbone stays the caller's; the extractor reads it only here.
func NewExtractor(ctx context.Context, dev *Device, b backbone.Backbone) (*Extractor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return NewBackendExtractor(dev.Backend, dev.CUDA, b)
}

// NewBackendExtractor is NewExtractor on any backend; streams, when not
// nil, is the device behind it, for pipelined uploads on the backend's
// stream (the backend must then be a *DeviceBackend).
func NewBackendExtractor(be Backend, streams StreamDevice, b backbone.Backbone) (*Extractor, error) {
	net, err := NewNet(be, b)
	if err != nil {
		return nil, fmt.Errorf("gpu: extractor for %s: %w", b.Arch(), err)
	}
	e := &Extractor{net: net, be: be, owned: true}
	if streams != nil {
		if _, ok := be.(*DeviceBackend); !ok {
			net.Close()
			return nil, fmt.Errorf("gpu: pipelined uploads need a device backend, not %T", be)
		}
		e.streams = streams
	}
	return e, nil
}

// Dim is the feature dimension (the backbone's embedding width).
func (e *Extractor) Dim(h, w int) int { return e.net.bb.EmbedDim() }

// Extract returns the features of views, row-major [len(views), Dim].
func (e *Extractor) Extract(views [][]float32, h, w int) ([]float32, error) {
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("gpu: view size %d×%d: want positive", h, w)
	}
	for i, v := range views {
		if len(v) != 3*h*w {
			return nil, fmt.Errorf("gpu: view %d has %d values, want 3×%d×%d = %d", i, len(v), h, w, 3*h*w)
		}
	}
	d := e.Dim(h, w)
	out := make([]float32, len(views)*d)
	if len(views) == 0 {
		return out, nil
	}
	bs := e.BatchSize
	if bs <= 0 {
		bs = DefaultBatchSize(h, w)
	}
	batch := func(i int) (lo, hi int) { return i * bs, min(len(views), (i+1)*bs) }
	fill := func(i int) func(host []float32) error {
		lo, hi := batch(i)
		return func(host []float32) error {
			for j := lo; j < hi; j++ {
				copy(host[(j-lo)*3*h*w:], views[j])
			}
			return nil
		}
	}
	shape := func(i int) []int {
		lo, hi := batch(i)
		return []int{hi - lo, 3, h, w}
	}
	batches := (len(views) + bs - 1) / bs
	if e.streams != nil {
		if err := e.uploader(min(bs, len(views)) * 3 * h * w); err != nil {
			return nil, err
		}
	}
	var staged *Staged
	var err error
	if e.up != nil {
		if staged, err = e.up.Stage(shape(0), fill(0)); err != nil {
			return nil, err
		}
	}
	for i := 0; i < batches; i++ {
		var x *Tensor
		if e.up != nil {
			if x, err = e.up.Use(staged); err != nil {
				return nil, err
			}
		} else {
			if x, err = e.be.NewTensor(shape(i)...); err != nil {
				return nil, err
			}
			host := make([]float32, x.Len())
			_ = fill(i)(host)
			if err := e.be.Upload(x, host); err != nil {
				e.be.Release(x)
				return nil, err
			}
		}
		p, err := e.net.Forward(x, Mode{})
		if e.up != nil {
			if derr := e.up.Done(staged); err == nil {
				err = derr
			}
		} else {
			e.be.Release(x)
		}
		if err != nil {
			return nil, fmt.Errorf("gpu: %s features of %d views of %d×%d: %w", e.net.bb.Arch(), x.Shape[0], h, w, err)
		}
		if e.up != nil && i+1 < batches {
			// Fill and copy the next batch while this one computes.
			if staged, err = e.up.Stage(shape(i+1), fill(i+1)); err != nil {
				p.Release()
				return nil, err
			}
		}
		lo, hi := batch(i)
		err = e.be.Download(out[lo*d:hi*d], p.Embedding())
		p.Release()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// uploader makes (or grows) the pipeline for batches of elems floats.
func (e *Extractor) uploader(elems int) error {
	if e.up != nil && e.upCap >= elems {
		return nil
	}
	if e.up != nil {
		if err := e.up.Close(); err != nil {
			return err
		}
	}
	up, err := NewUploader(e.streams, e.be.(*DeviceBackend).Stream(), elems)
	if err != nil {
		return err
	}
	e.up, e.upCap = up, elems
	return nil
}

// Close releases the weights and the upload buffers.
func (e *Extractor) Close() error {
	var err error
	if e.up != nil {
		err = e.up.Close()
		e.up = nil
	}
	if e.owned {
		e.net.Close()
	}
	return err
}
