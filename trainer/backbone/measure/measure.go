// Package measure reports what the paper's tables say about a backbone
// (learnable parameters, GFLOPs at an input size) and times it on random
// images: a training step (forward in train mode, the mean embedding as
// the loss, backward to every parameter, a plain SGD update) and an
// eval-mode forward pass as feature extraction runs it, each with its
// images per second, images per CPU-second and peak resident memory.
// `sslight bench model` prints its Report; bench/backbone_ratio.sh reads
// the JSON form beside the same model in PyTorch.
package measure

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/internal/procstat"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/nn"
)

// Phases to time (Config.Mode).
const (
	ModeBoth  = "both"
	ModeTrain = "train"
	ModeInfer = "infer"
)

// Config is one measurement.
type Config struct {
	// Arch and Options build the backbone (Options.Seed also seeds the
	// random images).
	Arch    string
	Options backbone.Options
	// Size is the input height and width, Batch the images per step.
	Size, Batch int
	// Steps timed steps follow Warmup untimed ones in each phase; Steps 0
	// counts parameters and FLOPs only.
	Steps, Warmup int
	// Threads is GOMAXPROCS for the run (0 leaves it); it is restored
	// afterwards.
	Threads int
	// Mode is ModeBoth (""), ModeTrain or ModeInfer.
	Mode string
}

// Report is the result; its JSON field names are what
// bench/backbone_ratio.sh reads.
type Report struct {
	Arch      string  `json:"arch"`
	Patch     int     `json:"patch,omitempty"`
	Width     float64 `json:"width,omitempty"` // CNNs only
	SmallStem bool    `json:"small_stem"`
	Size      int     `json:"size"`
	Batch     int     `json:"batch"`
	Steps     int     `json:"steps"`
	Threads   int     `json:"threads"`
	// BLAS is the gorgonia BLAS implementation that ran (OpenBLAS with
	// the openblas build tag, else gonum's pure Go).
	BLAS string `json:"blas"`
	// Params are the learnable parameters of the forward pass, classifier
	// excluded; FLOPs those of one image, counted as fvcore counts them (a
	// multiply-accumulate is one FLOP).
	Params int     `json:"params"`
	FLOPs  int64   `json:"flops"`
	GFLOPs float64 `json:"gflops"`
	Train  *Phase  `json:"train,omitempty"`
	Infer  *Phase  `json:"infer,omitempty"`
	// PeakRSSMiB is the whole process's resident-memory high-water mark.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// Phase is one timed loop.
type Phase struct {
	ImagesPerS float64 `json:"images_per_s"`
	// ImagesPerCPUS is 0 where CPU time is not measured.
	ImagesPerCPUS float64 `json:"images_per_cpu_s,omitempty"`
	SecondsPerRun float64 `json:"seconds_per_step"`
	// PeakRSSMiB is the high-water mark during the phase (process-wide
	// where the mark cannot be reset).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

func (c Config) check() error {
	switch {
	case c.Size < 1:
		return fmt.Errorf("measure: size %d: want a positive number of pixels", c.Size)
	case c.Batch < 1:
		return fmt.Errorf("measure: batch %d: want at least 1", c.Batch)
	case c.Steps < 0 || c.Warmup < 0:
		return fmt.Errorf("measure: steps %d, warm-up %d: want 0 or more", c.Steps, c.Warmup)
	case c.Threads < 0:
		return fmt.Errorf("measure: threads %d: want 0 (leave GOMAXPROCS) or more", c.Threads)
	case c.Mode != "" && c.Mode != ModeBoth && c.Mode != ModeTrain && c.Mode != ModeInfer:
		return fmt.Errorf("measure: mode %q: want %s, %s or %s", c.Mode, ModeBoth, ModeTrain, ModeInfer)
	}
	return nil
}

// Run counts and, unless cfg.Steps is 0, times one backbone. Inference is
// timed before training: what a phase leaves behind is garbage by the next
// one, but the smaller leftover goes first all the same.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Threads > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cfg.Threads))
	}
	b, err := backbone.New(cfg.Arch, cfg.Options)
	if err != nil {
		return nil, err
	}
	flops, err := backbone.FLOPs(b, cfg.Size, cfg.Size)
	if err != nil {
		return nil, err
	}
	rep := &Report{Arch: cfg.Arch, Width: cfg.Options.Width, SmallStem: cfg.Options.SmallImageStem,
		Size: cfg.Size, Batch: cfg.Batch, Steps: cfg.Steps, Threads: runtime.GOMAXPROCS(0),
		BLAS: fmt.Sprintf("%T", gorgonia.WhichBLAS()), Params: backbone.NumParams(b),
		FLOPs: flops, GFLOPs: float64(flops) / 1e9}
	if rep.Width == 0 {
		rep.Width = 1
	}
	if strings.HasPrefix(cfg.Arch, "vit") {
		rep.Patch = max(cfg.Options.PatchSize, 16)
		rep.Width = 0
	}
	if cfg.Steps > 0 {
		for _, train := range []bool{false, true} {
			if (train && cfg.Mode == ModeInfer) || (!train && cfg.Mode == ModeTrain) {
				continue
			}
			p, err := timePhase(ctx, cfg, train)
			if err != nil {
				return nil, err
			}
			if train {
				rep.Train = p
			} else {
				rep.Infer = p
			}
		}
	}
	rep.PeakRSSMiB = procstat.PeakRSSMiB()
	return rep, nil
}

// timePhase builds a fresh backbone (same seed, same weights) and a graph
// over one random batch, and times cfg.Steps runs of it: forward, backward
// and SGD when train (as trainer/backbone's benchStep), the eval-mode
// forward pass otherwise.
func timePhase(ctx context.Context, cfg Config, train bool) (*Phase, error) {
	// Start each phase from what is really live, so its peak is its own. A
	// parameter keeps its node in every graph it joined, hence a fresh
	// backbone per phase: the last phase's graph then goes with its model.
	runtime.GC()
	debug.FreeOSMemory()
	procstat.ResetPeakRSS()
	b, err := backbone.New(cfg.Arch, cfg.Options)
	if err != nil {
		return nil, err
	}

	g := gorgonia.NewGraph()
	rng := rand.New(rand.NewPCG(cfg.Options.Seed, 0xbe7c))
	x := tensor.New(tensor.WithShape(cfg.Batch, 3, cfg.Size, cfg.Size), tensor.Of(tensor.Float32))
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = float32(rng.NormFloat64())
	}
	in := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(x.Shape()...), gorgonia.WithName("x"), gorgonia.WithValue(x))
	out, err := b.Forward(in, train)
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	params := b.Params()
	var wrt gorgonia.Nodes
	if train {
		loss, err := gorgonia.Mean(out.Embedding)
		if err != nil {
			return nil, fmt.Errorf("loss: %w", err)
		}
		for _, p := range params {
			wrt = append(wrt, p.Node(g))
		}
		if _, err := gorgonia.Grad(loss, wrt...); err != nil {
			return nil, fmt.Errorf("backward: %w", err)
		}
	} else if _, err := nn.ShareBuffers(g, out.Embedding); err != nil {
		// As feature extraction runs it: activations share buffers.
		return nil, err
	}
	vm := gorgonia.NewTapeMachine(g)
	defer nn.CloseMachine(vm)
	step := func() error {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			return err
		}
		for j, n := range wrt {
			gv, err := n.Grad()
			if err != nil {
				return fmt.Errorf("gradient of %s: %w", params[j].Name, err)
			}
			d, gd := params[j].Data(), gv.Data().([]float32)
			for k := range d {
				d[k] -= 1e-4 * gd[k]
			}
		}
		return nil
	}
	for range cfg.Warmup {
		if err := step(); err != nil {
			return nil, err
		}
	}
	cpu0, start := procstat.CPUSeconds(), time.Now()
	for range cfg.Steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := step(); err != nil {
			return nil, err
		}
	}
	wall, cpu := time.Since(start).Seconds(), procstat.CPUSeconds()-cpu0
	images := float64(cfg.Batch * cfg.Steps)
	p := &Phase{ImagesPerS: images / wall, SecondsPerRun: wall / float64(cfg.Steps), PeakRSSMiB: procstat.PeakRSSMiB()}
	if cpu > 0 {
		p.ImagesPerCPUS = images / cpu
	}
	return p, nil
}

// WriteJSON writes the report as one JSON line.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteTable writes the report as a table for people.
func (r *Report) WriteTable(w io.Writer) error {
	var s strings.Builder
	model := r.Arch
	if r.Patch > 0 {
		model += fmt.Sprintf(" patch %d", r.Patch)
	} else {
		model += fmt.Sprintf(" width %g", r.Width)
		if r.SmallStem {
			model += ", small-image stem"
		}
	}
	fmt.Fprintf(&s, "model       %s\n", model)
	fmt.Fprintf(&s, "parameters  %.2f M (%d, classifier excluded)\n", float64(r.Params)/1e6, r.Params)
	fmt.Fprintf(&s, "GFLOPs      %.3f at %dx%d (%d multiply-accumulates, fvcore's convention)\n", r.GFLOPs, r.Size, r.Size, r.FLOPs)
	if r.Train != nil || r.Infer != nil {
		fmt.Fprintf(&s, "threads     %d (GOMAXPROCS), blas %s\n", r.Threads, r.BLAS)
	}
	for _, p := range []struct {
		name string
		p    *Phase
	}{{"train", r.Train}, {"inference", r.Infer}} {
		if p.p == nil {
			continue
		}
		fmt.Fprintf(&s, "%-11s %.1f images/s (batch %d, %d steps, %.3f s/step", p.name, p.p.ImagesPerS, r.Batch, r.Steps, p.p.SecondsPerRun)
		if p.p.ImagesPerCPUS > 0 {
			fmt.Fprintf(&s, ", %.1f images per CPU-second", p.p.ImagesPerCPUS)
		}
		fmt.Fprintf(&s, "), peak RSS %.0f MiB\n", p.p.PeakRSSMiB)
	}
	if r.PeakRSSMiB > 0 {
		fmt.Fprintf(&s, "peak RSS    %.0f MiB (whole process)\n", r.PeakRSSMiB)
	}
	_, err := io.WriteString(w, s.String())
	return err
}
