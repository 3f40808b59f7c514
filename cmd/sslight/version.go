package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/sslight-go/sslight/internal/buildinfo"
	"github.com/sslight-go/sslight/trainer/cuda"
)

// writeVersion prints what a bug report needs: the module version and
// commit, the Go toolchain, the build tags that pick the fast paths
// (turbojpeg, openblas) and whether the NVIDIA libraries are found here.
func writeVersion(w io.Writer) {
	in := buildinfo.Read()
	fmt.Fprintf(w, "sslight %s, commit %s", in.Version, in.Commit)
	if in.Time != "" {
		fmt.Fprintf(w, " (%s", in.Time)
		if in.Modified {
			fmt.Fprint(w, ", with uncommitted changes")
		}
		fmt.Fprint(w, ")")
	}
	cgo := "off"
	if in.CGO {
		cgo = "on"
	}
	fmt.Fprintf(w, "\n%s %s/%s, cgo %s, build tags: %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, cgo, orNone(strings.Join(in.Tags, " ")))
	jpeg, blas := "Go's image/jpeg", "gonum (pure Go)"
	if in.HasTag("turbojpeg") {
		jpeg = "libjpeg-turbo"
	}
	if in.HasTag("openblas") {
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
