package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// writeVersion prints what a bug report needs: the module version and
// commit, the Go toolchain, the build tags that pick the fast paths
// (turbojpeg, openblas) and whether the NVIDIA libraries are found here.
func writeVersion(w io.Writer) {
	version, commit, when, modified, tags, cgo := "(devel)", "unknown", "", false, "", "off"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			case "-tags":
				tags = s.Value
			case "CGO_ENABLED":
				if s.Value == "1" {
					cgo = "on"
				}
			}
		}
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	fmt.Fprintf(w, "sslight %s, commit %s", version, commit)
	if when != "" {
		fmt.Fprintf(w, " (%s", when)
		if modified {
			fmt.Fprint(w, ", with uncommitted changes")
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, "\n%s %s/%s, cgo %s, build tags: %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, cgo, orNone(strings.ReplaceAll(tags, ",", " ")))
	has := func(tag string) bool { return strings.Contains(","+tags+",", ","+tag+",") }
	jpeg, blas := "Go's image/jpeg", "gonum (pure Go)"
	if has("turbojpeg") {
		jpeg = "libjpeg-turbo"
	}
	if has("openblas") {
		blas = "OpenBLAS"
	}
	fmt.Fprintf(w, "JPEG decoding: %s; SGEMM: %s\n", jpeg, blas)
	libs, err := cuda.FindLibraries(os.Getenv, cuda.Dlopen)
	if err != nil {
		fmt.Fprintln(w, "CUDA: not available here (--device cuda will fail): no NVIDIA driver or NVRTC found; set SSLIGHT_CUDA_LIBS to their folders if they are installed elsewhere")
		return
	}
	fmt.Fprintf(w, "CUDA: driver %s, NVRTC %s", libs.Driver.Path, libs.NVRTC.Path)
	if libs.BLAS != nil {
		fmt.Fprintf(w, ", cuBLAS %s", libs.BLAS.Path)
	}
	if libs.DNN != nil {
		fmt.Fprintf(w, ", cuDNN %s", libs.DNN.Path)
	}
	fmt.Fprintln(w, " (found; the GPU path has not yet run on a GPU)")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
