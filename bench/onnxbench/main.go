// Command onnxbench measures sslight's ONNX export and, beside
// bench/onnx_opencv.py, inference: bench/onnx_ratio.sh runs both.
//
//	onnxbench -mode export -arch resnet18 -size 224 -dir /tmp/b
//
// writes a checkpoint of the architecture (random weights, BatchNorm
// statistics away from their initial values) under -dir, exports it with
// trainer/export (BatchNorm folded, dynamic batch) to -dir/model.onnx,
// writes the evaluation views of the photos of -photos as -dir/x.npy
// [N, 3, size, size], and prints the export time and the file size.
//
//	GOMAXPROCS=1 onnxbench -mode infer -dir /tmp/b -reps 5
//
// loads that checkpoint with trainer/features (the evaluation's extractor)
// and times the eval-mode forward pass over x.npy, one batch of all its
// images per pass, after one untimed pass. Each mode prints one JSON line.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sslight-go/sslight/augment"
	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/npy"
	"github.com/sslight-go/sslight/sinks/safetensors"
	"github.com/sslight-go/sslight/trainer/backbone"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/export"
	"github.com/sslight-go/sslight/trainer/features"
)

func main() {
	mode := flag.String("mode", "export", "export or infer")
	arch := flag.String("arch", "resnet18", "backbone architecture")
	width := flag.Float64("width", 1, "MODEL.WIDTH")
	stem := flag.Bool("small-image-stem", false, "MODEL.SMALL_IMAGE_STEM")
	patch := flag.Int("patch", 16, "ViT patch size")
	size := flag.Int("size", 224, "input side")
	dir := flag.String("dir", "", "work folder")
	photos := flag.String("photos", "testdata/photos", "folder of *.jpg for x.npy")
	images := flag.Int("images", 8, "images in x.npy")
	reps := flag.Int("reps", 5, "timed passes (infer)")
	flag.Parse()
	var err error
	switch {
	case *dir == "":
		err = fmt.Errorf("-dir is required")
	case *mode == "export":
		err = runExport(*dir, *arch, *photos, *width, *stem, *patch, *size, *images)
	case *mode == "infer":
		err = runInfer(*dir, *reps)
	default:
		err = fmt.Errorf("-mode %q: want export or infer", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "onnxbench:", err)
		os.Exit(1)
	}
}

func runExport(dir, arch, photos string, width float64, stem bool, patch, size, n int) error {
	ctx := context.Background()
	cfg := configs.Default()
	cfg.Model.BackboneArch, cfg.Model.Width, cfg.Model.SmallImageStem, cfg.ViT.PatchSize = arch, width, stem, patch
	cfg.MultiViewsTransforms.GlobalCropSize = size
	bb, err := backbone.New(arch, backbone.Options{Seed: 1, Width: width, SmallImageStem: stem, PatchSize: patch})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, e := range backbone.BNBuffers(bb) {
		for i := range e.F32 {
			if strings.HasSuffix(e.Name, ".running_var") {
				e.F32[i] = float32(0.5 + rng.Float64())
			} else {
				e.F32[i] = float32(rng.NormFloat64() * 0.1)
			}
		}
	}
	ck := checkpoint.Dir(dir, 1)
	if err := os.MkdirAll(ck, 0o755); err != nil {
		return err
	}
	if err := safetensors.WriteFile(filepath.Join(ck, checkpoint.BackboneFile), backbone.StateDict(bb)); err != nil {
		return err
	}
	meta := checkpoint.Meta{Method: cfg.SSLMethod, Arch: arch, Width: width, SmallImageStem: stem, PatchSize: patch,
		EmbedDim: bb.EmbedDim(), Step: 1, ConfigHash: cfg.Hash(), Config: cfg.CanonicalJSON()}
	if err := jsonfile.Write(ctx, filepath.Join(ck, checkpoint.MetaFile), meta); err != nil {
		return err
	}
	o := export.DefaultOptions()
	o.Checkpoint, o.Size, o.Out = ck, size, filepath.Join(dir, "model.onnx")
	start := time.Now()
	sum, err := export.Run(ctx, o)
	if err != nil {
		return err
	}
	elapsed := time.Since(start).Seconds()
	x, err := views(photos, n, size)
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "x.npy"))
	if err != nil {
		return err
	}
	if err := npy.WriteFloat32(f, []int{n, 3, size, size}, x); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"arch": sum.Arch, "size": size, "export_s": round4(elapsed),
		"bytes": sum.Bytes, "nodes": sum.Nodes, "params": backbone.NumParams(bb), "gomaxprocs": runtime.GOMAXPROCS(0)})
}

// views are the first n photos of dir (cycled) as ImageNet-normalised
// evaluation views.
func views(dir string, n, size int) ([]float32, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no JPEGs in %s (%v)", dir, err)
	}
	sort.Strings(files)
	out := make([]float32, 0, n*3*size*size)
	for i := 0; i < n; i++ {
		r, err := os.Open(files[i%len(files)])
		if err != nil {
			return nil, err
		}
		im, err := jpeg.Decode(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", files[i%len(files)], err)
		}
		var src, view augment.Image
		if err := augment.FromStdImage(&src, im); err != nil {
			return nil, err
		}
		if err := augment.EvalTransform(&view, &src, size); err != nil {
			return nil, err
		}
		x := make([]float32, 3*size*size)
		if err := augment.ToTensorNormalize(x, &view, augment.ImageNetMean, augment.ImageNetStd); err != nil {
			return nil, err
		}
		out = append(out, x...)
	}
	return out, nil
}

func runInfer(dir string, reps int) error {
	ctx := context.Background()
	m, err := features.LoadCheckpoint(ctx, dir, checkpoint.Student)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(dir, "x.npy"))
	if err != nil {
		return err
	}
	shape, x, err := npy.ReadFloat32(f, nil)
	f.Close()
	if err != nil {
		return err
	}
	n, s := shape[0], shape[2]
	m.BatchSize = n
	imgs := make([][]float32, n)
	for i := range imgs {
		imgs[i] = x[i*3*s*s : (i+1)*3*s*s]
	}
	if _, err := m.Extract(imgs, s, s); err != nil { // warm-up: builds the graph
		return err
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	for r := 0; r < reps; r++ {
		if _, err := m.Extract(imgs, s, s); err != nil {
			return err
		}
	}
	elapsed := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"impl": "sslight", "images": n * reps, "seconds": round4(elapsed),
		"images_per_s": round4(float64(n*reps) / elapsed), "images_per_cpu_s": round4(float64(n*reps) / cpu),
		"gomaxprocs": runtime.GOMAXPROCS(0)})
}

func round4(v float64) float64 { return float64(int64(v*1e4+0.5)) / 1e4 }

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
