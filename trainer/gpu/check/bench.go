package check

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/gpu"
)

// BenchCase is one throughput measurement: a backbone at its
// initialisation, a random batch, a number of timed steps after warm-up
// ones. A training step is the training-mode forward pass and the backward
// of the mean of the embedding (gradients accumulate; no optimiser step);
// an inference step the evaluation-mode forward without gradients.
type BenchCase struct {
	Arch   string `json:"arch"`
	Size   int    `json:"size"`
	Batch  int    `json:"batch"`
	Train  bool   `json:"train"`
	Steps  int    `json:"steps"`
	Warmup int    `json:"warmup"`
}

// Mode is "train" or "infer".
func (c BenchCase) Mode() string {
	if c.Train {
		return "train"
	}
	return "infer"
}

// Key identifies the measured configuration (the same on both sides).
func (c BenchCase) Key() string {
	return fmt.Sprintf("%s %d b%d %s", c.Arch, c.Size, c.Batch, c.Mode())
}

// BenchCases are the device check's: training of resnet18 and mobilenet_v2
// at 224 (batch 64) and 96 (batch 128), inference at 224 (batch 64).
func BenchCases(steps, warmup int) []BenchCase {
	var cs []BenchCase
	for _, arch := range []string{"resnet18", "mobilenet_v2"} {
		cs = append(cs,
			BenchCase{Arch: arch, Size: 224, Batch: 64, Train: true, Steps: steps, Warmup: warmup},
			BenchCase{Arch: arch, Size: 96, Batch: 128, Train: true, Steps: steps, Warmup: warmup},
			BenchCase{Arch: arch, Size: 224, Batch: 64, Train: false, Steps: steps, Warmup: warmup})
	}
	return cs
}

// BenchResult is a measurement: images per second of wall-clock time
// (the steps queued and waited for), the allocator's peaks over the timed
// steps (the executor's tensors; the device may hold more).
type BenchResult struct {
	BenchCase
	ImagesPerSec float64 `json:"images_per_s"`
	PeakMiB      float64 `json:"peak_mib"`     // bytes in use at most
	ReservedMiB  float64 `json:"reserved_mib"` // bytes held from the device at most
	Seconds      float64 `json:"seconds"`
	Err          string  `json:"error,omitempty"`
}

// Bench runs c on be.
func Bench(be gpu.Backend, c BenchCase) (res BenchResult) {
	res = BenchResult{BenchCase: c}
	fail := func(err error) BenchResult {
		res.Err = err.Error()
		return res
	}
	b, err := backbone.New(c.Arch, backbone.Options{Seed: 1})
	if err != nil {
		return fail(err)
	}
	net, err := gpu.NewNet(be, b)
	if err != nil {
		return fail(err)
	}
	defer net.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	x, err := be.NewTensor(c.Batch, 3, c.Size, c.Size)
	if err != nil {
		return fail(err)
	}
	defer be.Release(x)
	if err := be.Upload(x, randn(rng, x.Len())); err != nil {
		return fail(err)
	}
	d := b.EmbedDim()
	dEmb, err := be.NewTensor(c.Batch, d)
	if err != nil {
		return fail(err)
	}
	defer be.Release(dEmb)
	g := make([]float32, c.Batch*d)
	for i := range g {
		g[i] = 1 / float32(c.Batch*d)
	}
	if err := be.Upload(dEmb, g); err != nil {
		return fail(err)
	}
	step := func() error {
		p, err := net.Forward(x, gpu.Mode{Train: c.Train, Grad: c.Train})
		if err != nil {
			return err
		}
		defer p.Release()
		if c.Train {
			return p.Backward(dEmb)
		}
		return nil
	}
	for range c.Warmup {
		if err := step(); err != nil {
			return fail(err)
		}
	}
	if err := be.Synchronize(); err != nil {
		return fail(err)
	}
	be.Allocator().ResetPeak()
	t0 := time.Now()
	for range c.Steps {
		if err := step(); err != nil {
			return fail(err)
		}
	}
	if err := be.Synchronize(); err != nil {
		return fail(err)
	}
	res.Seconds = time.Since(t0).Seconds()
	res.ImagesPerSec = float64(c.Batch*c.Steps) / res.Seconds
	st := be.Allocator().Stats()
	res.PeakMiB, res.ReservedMiB = float64(st.PeakInUse)/(1<<20), float64(st.PeakReserved)/(1<<20)
	return res
}
