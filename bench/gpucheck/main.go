// Command gpucheck is the device check's Go side (bench/gpu_check.sh runs
// it on a GPU machine): one phase per run, results as JSON lines on
// stdout, progress on stderr.
//
//	gpucheck -phase info                  the device and the libraries
//	gpucheck -phase ops [-variants ...]   every op against trainer/nn's kernels
//	gpucheck -phase backbones             every backbone against the CPU trainer
//	gpucheck -phase bench                 throughput and peak memory
//	gpucheck -phase report FILE...        the summary table of the records in FILEs
//
// -device cpu runs the phases on the executor's CPU backend (and, in cgo
// builds, -device emu on the host emulation), to try the check without a
// GPU. The binary needs no cgo and no CUDA at build time: the libraries are
// found when it runs (SSLIGHT_CUDA_LIBS, LD_LIBRARY_PATH, system folders).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sslight-go/sslight/trainer/cuda"
	"github.com/sslight-go/sslight/trainer/gpu"
	"github.com/sslight-go/sslight/trainer/gpu/check"
)

// exitRecorded is the exit status of a phase that failed and wrote its
// error record (bench/gpu_check.sh adds none of its own then).
const exitRecorded = 3

// options are the flags.
type options struct {
	phase    string
	device   string
	variants []string
	tf32     bool
	steps    int
	warmup   int
	budget   time.Duration
	archs    string
	files    []string
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		os.Exit(2)
	}
	if err := run(o, os.Stdout, os.Stderr); err != nil {
		check.Emit(os.Stdout, check.ErrorRecord{Phase: "error", Stage: o.phase, Err: err.Error()})
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		os.Exit(exitRecorded)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("gpucheck", flag.ContinueOnError)
	var o options
	var variants string
	fs.StringVar(&o.phase, "phase", "", "info, ops, backbones, bench or report")
	fs.StringVar(&o.device, "device", "cuda", "cuda, cpu (the executor's CPU backend) or emu (the host emulation, cgo builds)")
	fs.StringVar(&variants, "variants", "cudnn,own", "configurations for -phase ops and backbones: cudnn (cuDNN convolutions, cuBLAS), own (sslight's kernels only), cudnn-bn (cuDNN BatchNorm too)")
	fs.BoolVar(&o.tf32, "tf32", false, "let cuBLAS and cuDNN use TF32 (the parity tolerances assume FP32)")
	fs.IntVar(&o.steps, "steps", 10, "timed steps per measurement")
	fs.IntVar(&o.warmup, "warmup", 3, "warm-up steps per measurement")
	fs.DurationVar(&o.budget, "budget", 2*time.Minute, "time after which a phase starts no new case")
	fs.StringVar(&o.archs, "archs", "", "comma-separated architectures to keep in -phase backbones and bench (empty: all)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.files = fs.Args()
	o.variants = strings.Split(variants, ",")
	switch o.phase {
	case "info", "ops", "backbones", "bench":
	case "report":
		if len(o.files) == 0 {
			return o, errors.New("-phase report needs the record files")
		}
	default:
		return o, fmt.Errorf("-phase %q: want info, ops, backbones, bench or report", o.phase)
	}
	for _, v := range o.variants {
		if _, ok := variantConfigs[v]; !ok {
			return o, fmt.Errorf("-variants: unknown %q (want cudnn, own, cudnn-bn)", v)
		}
	}
	return o, nil
}

// variantConfigs are the device configurations the phases compare.
var variantConfigs = map[string]gpu.DeviceConfig{
	"cudnn":    {},
	"own":      {NoDNN: true, NoBLAS: true},
	"cudnn-bn": {DNNBatchNorm: true},
}

// emuBackend is set by emu.go in cgo builds.
var emuBackend func() (gpu.Backend, func(), error)

// backend opens the backend of a variant and returns it with its closer.
func backend(o options, variant string) (gpu.Backend, func(), error) {
	switch o.device {
	case "cpu":
		return gpu.NewCPU(), func() {}, nil
	case "emu":
		if emuBackend == nil {
			return nil, nil, errors.New("-device emu needs a cgo build")
		}
		return emuBackend()
	case "cuda":
		c := variantConfigs[variant]
		c.TF32, c.KernelCache = o.tf32, os.Getenv("SSLIGHT_KERNEL_CACHE")
		d, err := gpu.OpenDevice(c)
		if err != nil {
			return nil, nil, err
		}
		return d.Backend, func() { d.Close() }, nil
	}
	return nil, nil, fmt.Errorf("-device %q: want cuda, cpu or emu", o.device)
}

func keep(o options, arch string) bool {
	if o.archs == "" {
		return true
	}
	for _, a := range strings.Split(o.archs, ",") {
		if strings.TrimSpace(a) == arch {
			return true
		}
	}
	return false
}

func run(o options, out, log io.Writer) error {
	deadline := time.Now().Add(o.budget)
	switch o.phase {
	case "report":
		var readers []io.Reader
		for _, f := range o.files {
			fh, err := os.Open(f)
			if err != nil {
				fmt.Fprintf(out, "(cannot read %s: %v)\n", f, err)
				continue
			}
			defer fh.Close()
			readers = append(readers, fh)
		}
		res, err := check.ParseResults(io.MultiReader(readers...))
		if err != nil {
			return err
		}
		res.Table(out)
		return nil
	case "info":
		return info(o, out, log)
	}
	failed := 0
	variants := o.variants
	switch {
	case o.device != "cuda":
		variants = []string{o.device}
	case o.phase == "bench":
		variants = variants[:1]
	}
	for _, v := range variants {
		be, closeFn, err := backend(o, v)
		if err != nil {
			check.Emit(out, check.ErrorRecord{Phase: "error", Stage: o.phase + " " + v, Err: err.Error()})
			failed++
			continue
		}
		switch o.phase {
		case "ops":
			failed += check.RunOps(be, v, deadline, out, log)
		case "backbones":
			var cases []check.BackboneCase
			for _, c := range check.DeviceBackboneCases() {
				if keep(o, c.Arch) {
					cases = append(cases, c)
				}
			}
			if o.device != "cuda" {
				cases = check.BackboneCases() // the small ones: the CPU and the emulation are slow
			}
			failed += check.RunBackbones(be, v, cases, deadline, out, log)
		case "bench":
			var cases []check.BenchCase
			for _, c := range check.BenchCases(o.steps, o.warmup) {
				if keep(o, c.Arch) {
					cases = append(cases, c)
				}
			}
			check.RunBench(be, cases, deadline, out, log)
		}
		closeFn()
	}
	if failed > 0 {
		fmt.Fprintf(log, "%s: %d failed\n", o.phase, failed)
	}
	return nil
}

func info(o options, out, log io.Writer) error {
	if o.device != "cuda" {
		return check.Emit(out, check.InfoRecord{Phase: "info", Device: o.device, Details: map[string]any{}})
	}
	t0 := time.Now()
	d, err := gpu.OpenDevice(gpu.DeviceConfig{TF32: o.tf32, KernelCache: os.Getenv("SSLIGHT_KERNEL_CACHE")})
	if err != nil {
		return err
	}
	defer d.Close()
	compile := time.Since(t0)
	in := d.CUDA.Info()
	free, total, err := d.CUDA.MemInfo()
	if err != nil {
		return err
	}
	ver := func(v int, major, minor int) string {
		if v == 0 {
			return "not loaded"
		}
		return fmt.Sprintf("%d.%d (%d)", v/major, v%major/minor, v)
	}
	details := map[string]any{
		"compute_capability": fmt.Sprintf("%d.%d", in.Major, in.Minor),
		"sms":                in.SMs,
		"memory_gib":         fmt.Sprintf("%.1f (%.1f free)", float64(total)/(1<<30), float64(free)/(1<<30)),
		"driver":             ver(in.DriverVersion, 1000, 10),
		"nvrtc":              in.NVRTCVersion,
		"cublas":             ver(in.BLASVersion, 10000, 100),
		"cudnn":              ver(in.DNNVersion, 10000, 100),
		"target":             in.Target.Option(),
		"kernels_compile_s":  fmt.Sprintf("%.1f", compile.Seconds()),
		"tf32":               in.TF32,
		"libcuda":            in.DriverPath,
		"libnvrtc":           in.NVRTCPath,
		"libcublas":          in.BLASPath,
		"libcudnn":           in.DNNPath,
		"conv":               map[bool]string{true: "cuDNN", false: "sslight's kernels"}[d.Backend.UsesDNN()],
		"search":             os.Getenv(cuda.EnvLibs),
	}
	fmt.Fprintf(log, "device %s: %v\n", in.Name, details)
	return check.Emit(out, check.InfoRecord{Phase: "info", Device: in.Name, Details: details})
}
