package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/nn"
)

func init() {
	register(&command{
		name:    "bench",
		summary: "measure: model (a backbone's parameters, GFLOPs, training and inference images/s, peak RSS)",
		run:     runBench,
	})
}

// benchModes are the measurements `sslight bench` knows, by name.
var benchModes = &modeSet{
	command: "bench", noun: "benchmark",
	header: "Usage: sslight bench <benchmark> [flags]\n\nBenchmarks:\n",
	modes: map[string]mode{
		"model": {"a backbone's parameters, GFLOPs, training-step and inference images/s, peak RSS", runBenchModel},
	},
}

func runBench(ctx context.Context, args []string) error { return benchModes.run(ctx, args) }

const benchModelDescription = `Build a backbone and print what the paper's table reports about it, then
time it on random images:

  parameters  learnable parameters of the forward pass, classifier excluded
              (the paper's "Params", e.g. resnet18 11.2M)
  GFLOPs      one forward pass of one --size x --size image, counted as the
              paper counts (fvcore's convention: a multiply-accumulate is one
              FLOP; convolutions, linears, attention matmuls, norms and the
              final average pool; resnet18 1.8 at 224)
  train       images/s of a training step on a batch: forward in train mode
              (batch statistics), the mean of the embedding as the loss,
              backward to every parameter, a plain SGD update
  inference   images/s of an eval-mode forward pass (feature extraction)
  peak RSS    the process's resident-memory high-water mark (VmHWM) during
              each phase; the phases run one after the other and the mark is
              reset in between where Linux allows (/proc/self/clear_refs)

Each phase runs --warmup untimed steps, then --steps timed ones. --steps 0
prints the parameters and GFLOPs only (instant, any size). --threads sets
GOMAXPROCS, the number of CPUs the ops spread images over. Build with
-tags openblas (Debian libopenblas-dev) for OpenBLAS's SGEMM: several times
faster than the pure-Go gonum BLAS the default build uses; the "blas" line
says which one ran. Memory can be capped with GOMEMLIMIT as for any Go
program.

Examples:
  sslight bench model --arch resnet18 --steps 0            # 11.18 M, 1.82 GFLOPs
  sslight bench model --arch vit_tiny --patch 32 --steps 0 # 5.94 M, 0.31 GFLOPs
  sslight bench model --arch mobilenet_v2 --size 96 --batch 64 --steps 5 --threads 2
  sslight bench model --arch resnet18 --width 0.25 --small-stem --size 32 --batch 256 --json

bench/backbone_ratio.sh runs this beside the same model in PyTorch.`

// benchModelConfig is what `sslight bench model` measures.
type benchModelConfig struct {
	arch      string
	opts      backbone.Options
	size      int
	batch     int
	steps     int
	warmup    int
	threads   int
	mode      string // both, train or infer
	seed      uint64
	jsonLines bool
}

// benchModelReport is the result, printed as a table or one JSON line.
type benchModelReport struct {
	Arch       string  `json:"arch"`
	Patch      int     `json:"patch,omitempty"`
	Width      float64 `json:"width,omitempty"` // CNNs only
	SmallStem  bool    `json:"small_stem"`
	Size       int     `json:"size"`
	Batch      int     `json:"batch"`
	Steps      int     `json:"steps"`
	Threads    int     `json:"threads"`
	BLAS       string  `json:"blas"`
	Params     int     `json:"params"`
	FLOPs      int64   `json:"flops"`
	GFLOPs     float64 `json:"gflops"`
	Train      *phase  `json:"train,omitempty"`
	Infer      *phase  `json:"infer,omitempty"`
	PeakRSSMiB float64 `json:"peak_rss_mib"` // of the whole process
}

// phase is one timed loop.
type phase struct {
	ImagesPerS    float64 `json:"images_per_s"`
	ImagesPerCPUS float64 `json:"images_per_cpu_s,omitempty"`
	SecondsPerRun float64 `json:"seconds_per_step"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"`
}

func runBenchModel(ctx context.Context, args []string) error {
	return benchModelCommand(ctx, args, os.Stdout)
}

// benchModelCommand is `sslight bench model` writing its report to w.
func benchModelCommand(ctx context.Context, args []string, w io.Writer) error {
	fs := newFlagSet("bench model", "--arch ARCH [--patch 16|32] [--width W] [--small-stem] [--size 224] [--batch 32] [--steps 5] [--threads N]", benchModelDescription)
	arch := fs.String("arch", "", "architecture: "+strings.Join(backbone.Archs(), ", "))
	patch := fs.Int("patch", 0, "ViT patch size, 16 or 32 (default 16; ViTs only)")
	width := fs.Float64("width", 1, "CNN width multiplier, MODEL.WIDTH (CNNs only)")
	smallStem := fs.Bool("small-stem", false, "stride-1 stem for small images, MODEL.SMALL_IMAGE_STEM (CNNs only)")
	size := fs.Int("size", 224, "input height and width in pixels")
	batch := fs.Int("batch", 32, "images per step")
	steps := fs.Int("steps", 5, "timed steps per phase (0: parameters and GFLOPs only)")
	warmup := fs.Int("warmup", 1, "untimed steps before each timed phase")
	threads := fs.Int("threads", 0, "GOMAXPROCS for the run (0: leave it, currently "+strconv.Itoa(runtime.GOMAXPROCS(0))+")")
	mode := fs.String("mode", "both", "phases to time: both, train or infer (one per process gives clean peak RSS figures)")
	seed := fs.Uint64("seed", 1, "seed of the weights and of the random images")
	jsonOut := fs.Bool("json", false, "print one JSON line instead of the table")
	if err := fs.parse(args); err != nil {
		return err
	}
	cfg := benchModelConfig{arch: *arch, size: *size, batch: *batch, steps: *steps, warmup: *warmup,
		threads: *threads, mode: *mode, seed: *seed, jsonLines: *jsonOut,
		opts: backbone.Options{Seed: *seed, PatchSize: *patch, Width: *width, SmallImageStem: *smallStem}}
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.threads > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cfg.threads))
	}
	rep, err := benchModel(ctx, cfg)
	if err != nil {
		return err
	}
	return rep.write(w, cfg.jsonLines)
}

func (c benchModelConfig) validate() error {
	switch {
	case c.arch == "":
		return fmt.Errorf("--arch is required (one of %s)", strings.Join(backbone.Archs(), ", "))
	case c.size < 1:
		return fmt.Errorf("--size %d: want a positive number of pixels", c.size)
	case c.batch < 1:
		return fmt.Errorf("--batch %d: want at least 1", c.batch)
	case c.steps < 0 || c.warmup < 0:
		return fmt.Errorf("--steps %d, --warmup %d: want 0 or more", c.steps, c.warmup)
	case c.threads < 0:
		return fmt.Errorf("--threads %d: want 0 (leave GOMAXPROCS) or more", c.threads)
	case c.mode != "both" && c.mode != "train" && c.mode != "infer":
		return fmt.Errorf("--mode %q: want both, train or infer", c.mode)
	case c.opts.PatchSize != 0 && !strings.HasPrefix(c.arch, "vit"):
		return fmt.Errorf("--patch applies to ViTs, not %s", c.arch)
	}
	return nil
}

// benchModel counts and, unless cfg.steps is 0, times one backbone.
func benchModel(ctx context.Context, cfg benchModelConfig) (*benchModelReport, error) {
	b, err := backbone.New(cfg.arch, cfg.opts)
	if err != nil {
		return nil, err
	}
	flops, err := backbone.FLOPs(b, cfg.size, cfg.size)
	if err != nil {
		return nil, err
	}
	rep := &benchModelReport{Arch: cfg.arch, Width: cfg.opts.Width, SmallStem: cfg.opts.SmallImageStem,
		Size: cfg.size, Batch: cfg.batch, Steps: cfg.steps, Threads: runtime.GOMAXPROCS(0),
		BLAS: fmt.Sprintf("%T", gorgonia.WhichBLAS()), Params: backbone.NumParams(b),
		FLOPs: flops, GFLOPs: float64(flops) / 1e9}
	if rep.Width == 0 {
		rep.Width = 1
	}
	if strings.HasPrefix(cfg.arch, "vit") {
		rep.Patch = max(cfg.opts.PatchSize, 16)
		rep.Width = 0
	}
	if cfg.steps > 0 {
		// Inference first: what a phase leaves behind is garbage by the next
		// one, but the smaller leftover goes first all the same.
		for _, train := range []bool{false, true} {
			if (train && cfg.mode == "infer") || (!train && cfg.mode == "train") {
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
	rep.PeakRSSMiB = peakRSSMiB()
	return rep, nil
}

// timePhase builds a fresh backbone (same seed, same weights) and a graph
// over one random batch, and times cfg.steps runs of it: forward, backward
// and SGD when train (as trainer/backbone's benchStep), the eval-mode
// forward pass otherwise.
func timePhase(ctx context.Context, cfg benchModelConfig, train bool) (*phase, error) {
	// Start each phase from what is really live, so its peak is its own. A
	// parameter keeps its node in every graph it joined, hence a fresh
	// backbone per phase: the last phase's graph then goes with its model.
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()
	b, err := backbone.New(cfg.arch, cfg.opts)
	if err != nil {
		return nil, err
	}

	g := gorgonia.NewGraph()
	rng := rand.New(rand.NewPCG(cfg.seed, 0xbe7c))
	x := tensor.New(tensor.WithShape(cfg.batch, 3, cfg.size, cfg.size), tensor.Of(tensor.Float32))
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
	}
	if !train {
		// As feature extraction runs it: activations share buffers.
		if _, err := nn.ShareBuffers(g, out.Embedding); err != nil {
			return nil, err
		}
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
	for range cfg.warmup {
		if err := step(); err != nil {
			return nil, err
		}
	}
	cpu0, start := cpuSeconds(), time.Now()
	for range cfg.steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := step(); err != nil {
			return nil, err
		}
	}
	wall, cpu := time.Since(start).Seconds(), cpuSeconds()-cpu0
	images := float64(cfg.batch * cfg.steps)
	p := &phase{ImagesPerS: images / wall, SecondsPerRun: wall / float64(cfg.steps), PeakRSSMiB: peakRSSMiB()}
	if cpu > 0 {
		p.ImagesPerCPUS = images / cpu
	}
	return p, nil
}

func (r *benchModelReport) write(w io.Writer, jsonLine bool) error {
	if jsonLine {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode report: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
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
		p    *phase
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

// peakRSSMiB is the process's resident-set high-water mark in MiB, 0
// where /proc/self/status is missing or has no VmHWM line.
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	kb, err := parseVmHWM(f)
	if err != nil {
		return 0
	}
	return float64(kb) / 1024
}

// parseVmHWM reads the VmHWM line ("VmHWM:\t  301192 kB") of a
// /proc/<pid>/status file and returns its value in kB.
func parseVmHWM(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(v), " ")
		kb, err := strconv.ParseInt(num, 10, 64)
		if err != nil || kb < 0 || unit != "kB" {
			return 0, fmt.Errorf("proc status: bad VmHWM line %q", sc.Text())
		}
		return kb, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("proc status: %w", err)
	}
	return 0, errors.New("proc status: no VmHWM line")
}

// resetPeakRSS sets VmHWM back to the current RSS (Linux ≥ 4.0); where
// that is refused the marks stay process-wide.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
