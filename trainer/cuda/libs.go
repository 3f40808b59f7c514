package cuda

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// EnvLibs names the environment variable holding the folders searched
// first, colon-separated.
const EnvLibs = "SSLIGHT_CUDA_LIBS"

// LibSpec describes one library: what it is and the file names it goes by,
// most specific first.
type LibSpec struct {
	// Name is what the library is, for messages ("CUDA driver").
	Name string
	// Sonames are the file names tried in each folder, in order.
	Sonames []string
	// Required libraries make Open fail when they are missing; the others
	// have fallbacks (the package's own kernels).
	Required bool
	// Fallback says what runs without an optional library.
	Fallback string
	// Companions are libraries of the same folder loaded first (with their
	// symbols global) when the library is found there: the ones it opens by
	// name at run time, which the dynamic loader would otherwise look for
	// only in LD_LIBRARY_PATH and its cache. A companion that is missing or
	// does not load is skipped. A name ending in '*' is a glob.
	Companions []string
}

// The libraries Open looks for.
var (
	DriverLib = LibSpec{Name: "CUDA driver", Sonames: []string{"libcuda.so.1", "libcuda.so"}, Required: true}
	NVRTCLib  = LibSpec{Name: "NVRTC", Sonames: []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"}, Required: true,
		Companions: []string{"libnvrtc-builtins.so*"}}
	BLASLib = LibSpec{Name: "cuBLAS", Sonames: []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so"},
		Fallback:   "sslight's GEMM kernel",
		Companions: []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}}
	DNNLib = LibSpec{Name: "cuDNN", Sonames: []string{"libcudnn.so.9", "libcudnn.so"},
		Fallback: "sslight's convolution and BatchNorm kernels",
		Companions: []string{"libcudnn_graph.so.9", "libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9",
			"libcudnn_heuristic.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9"}}
)

// Folder is one place searched, with the reason it is searched.
type Folder struct {
	Dir  string
	From string // "SSLIGHT_CUDA_LIBS", "LD_LIBRARY_PATH" or "system"
}

func (f Folder) String() string {
	if f.From == "system" {
		return f.Dir
	}
	return fmt.Sprintf("%s (%s)", f.Dir, f.From)
}

// systemFolders are searched after the environment's folders: Debian's and
// Red Hat's library folders, the CUDA toolkit's, the NVIDIA container
// runtime's and WSL's.
var systemFolders = []string{
	"/usr/lib/x86_64-linux-gnu",
	"/usr/lib/aarch64-linux-gnu",
	"/usr/lib64",
	"/usr/local/cuda/lib64",
	"/usr/local/cuda/targets/x86_64-linux/lib",
	"/usr/local/nvidia/lib64",
	"/usr/local/nvidia/lib",
	"/usr/lib/wsl/lib",
	"/usr/lib",
	"/lib/x86_64-linux-gnu",
	"/lib64",
}

// SearchFolders returns the folders searched, in order: EnvLibs, then
// LD_LIBRARY_PATH, then the system folders; each folder once (at its first
// place), empty entries dropped.
func SearchFolders(getenv func(string) string) []Folder {
	var out []Folder
	seen := map[string]bool{}
	add := func(dir, from string) {
		dir = filepath.Clean(dir)
		if dir == "." || seen[dir] {
			return
		}
		seen[dir] = true
		out = append(out, Folder{Dir: dir, From: from})
	}
	for _, env := range []string{EnvLibs, "LD_LIBRARY_PATH"} {
		for _, d := range strings.Split(getenv(env), ":") {
			if d = strings.TrimSpace(d); d != "" {
				add(d, env)
			}
		}
	}
	for _, d := range systemFolders {
		add(d, "system")
	}
	return out
}

// Attempt is a library file that exists but did not load.
type Attempt struct {
	Path string
	Err  error
}

// Library is an opened shared library.
type Library struct {
	Spec   LibSpec
	Path   string // the file opened, or the soname when the loader's cache found it
	handle uintptr
}

// Opener opens a shared library by path (or, for the loader's cache, by
// soname) and returns its handle: dlopen in production, a fake in tests.
type Opener func(path string) (uintptr, error)

// ErrNotFound is wrapped by the errors of libraries that were not found.
var ErrNotFound = errors.New("library not found")

// Locate finds spec in folders: every soname in the first folder, then in
// the next, and so on; a file that exists but does not open is recorded and
// the search goes on. When no folder has it, each soname is handed to open
// as is (the dynamic loader's cache). The attempts are returned either way.
func Locate(spec LibSpec, folders []Folder, open Opener) (*Library, []Attempt) {
	var tried []Attempt
	for _, f := range folders {
		for _, name := range spec.Sonames {
			p := filepath.Join(f.Dir, name)
			if st, err := os.Stat(p); err != nil || st.IsDir() {
				continue
			}
			h, err := open(p)
			if err != nil {
				tried = append(tried, Attempt{Path: p, Err: err})
				continue
			}
			openCompanions(spec, f.Dir, open)
			return &Library{Spec: spec, Path: p, handle: h}, tried
		}
	}
	for _, name := range spec.Sonames {
		if h, err := open(name); err == nil {
			return &Library{Spec: spec, Path: name, handle: h}, tried
		}
	}
	return nil, tried
}

func openCompanions(spec LibSpec, dir string, open Opener) {
	for _, c := range spec.Companions {
		paths := []string{filepath.Join(dir, c)}
		if strings.HasSuffix(c, "*") {
			paths, _ = filepath.Glob(filepath.Join(dir, c))
		}
		for _, p := range paths {
			if _, err := os.Stat(p); err == nil {
				_, _ = open(p) // best effort: the library may not need it
			}
		}
	}
}

// LibraryError reports the libraries Open could not find. Error names every
// library looked for (found or not), every folder searched and what to do.
type LibraryError struct {
	Missing  []LibSpec            // the required libraries not found
	Found    map[string]string    // library name → path, for those found
	Optional []LibSpec            // optional libraries not found
	Folders  []Folder             // the folders searched, in order
	Tried    map[string][]Attempt // library name → files that did not load
}

func (e *LibraryError) Error() string {
	var b strings.Builder
	b.WriteString("cuda: cannot open a CUDA device: ")
	for i, s := range e.Missing {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "the %s (%s) was not found", s.Name, strings.Join(s.Sonames, " or "))
		for _, a := range e.Tried[s.Name] {
			fmt.Fprintf(&b, ", %s exists but did not load (%v)", a.Path, a.Err)
		}
	}
	for _, s := range e.Optional {
		fmt.Fprintf(&b, "; the %s (%s, optional) was not found either", s.Name, strings.Join(s.Sonames, " or "))
	}
	for _, name := range slices.Sorted(maps.Keys(e.Found)) {
		fmt.Fprintf(&b, "; found the %s at %s", name, e.Found[name])
	}
	b.WriteString("; searched ")
	for i, f := range e.Folders {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.String())
	}
	b.WriteString(" and the dynamic loader's cache; ")
	driver := false
	for _, s := range e.Missing {
		driver = driver || s.Name == DriverLib.Name
	}
	if driver {
		b.WriteString("install the NVIDIA driver (it provides libcuda.so.1), or ")
	} else {
		b.WriteString("install the CUDA runtime libraries (pip's nvidia-cuda-nvrtc, nvidia-cublas and nvidia-cudnn wheels will do), or ")
	}
	fmt.Fprintf(&b, "set %s to the folders holding the CUDA libraries, colon-separated", EnvLibs)
	return b.String()
}

// Unwrap lets errors.Is(err, ErrNotFound) hold.
func (e *LibraryError) Unwrap() error { return ErrNotFound }

// Libraries are the libraries one Open found.
type Libraries struct {
	Driver, NVRTC, BLAS, DNN *Library // BLAS and DNN may be nil
	Folders                  []Folder
}

// FindLibraries locates every library Open uses. It fails with a
// *LibraryError when the driver or NVRTC is missing.
func FindLibraries(getenv func(string) string, open Opener) (*Libraries, error) {
	folders := SearchFolders(getenv)
	libs := &Libraries{Folders: folders}
	e := &LibraryError{Folders: folders, Found: map[string]string{}, Tried: map[string][]Attempt{}}
	for _, slot := range []struct {
		spec LibSpec
		dst  **Library
	}{{DriverLib, &libs.Driver}, {NVRTCLib, &libs.NVRTC}, {BLASLib, &libs.BLAS}, {DNNLib, &libs.DNN}} {
		l, tried := Locate(slot.spec, folders, open)
		if len(tried) > 0 {
			e.Tried[slot.spec.Name] = tried
		}
		switch {
		case l != nil:
			*slot.dst = l
			e.Found[slot.spec.Name] = l.Path
		case slot.spec.Required:
			e.Missing = append(e.Missing, slot.spec)
		default:
			e.Optional = append(e.Optional, slot.spec)
		}
	}
	if len(e.Missing) > 0 {
		return nil, e
	}
	return libs, nil
}
