package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

type nvrtcAPI struct {
	lib *Library

	nvrtcVersion              func(major, minor *int32) int32
	nvrtcCreateProgram        func(prog *uintptr, src, name string, numHeaders int32, headers, includeNames unsafe.Pointer) int32
	nvrtcCompileProgram       func(prog uintptr, numOptions int32, options unsafe.Pointer) int32
	nvrtcGetProgramLogSize    func(prog uintptr, size *uint64) int32
	nvrtcGetProgramLog        func(prog uintptr, log *byte) int32
	nvrtcGetCUBINSize         func(prog uintptr, size *uint64) int32
	nvrtcGetCUBIN             func(prog uintptr, buf *byte) int32
	nvrtcGetPTXSize           func(prog uintptr, size *uint64) int32
	nvrtcGetPTX               func(prog uintptr, buf *byte) int32
	nvrtcDestroyProgram       func(prog *uintptr) int32
	nvrtcGetErrorString       func(code int32) string
	nvrtcGetNumSupportedArchs func(n *int32) int32
	nvrtcGetSupportedArchs    func(archs *int32) int32
}

func bindNVRTC(l *Library) (*nvrtcAPI, error) {
	r := &nvrtcAPI{lib: l}
	b := &binder{lib: l}
	b.fn(&r.nvrtcVersion, "nvrtcVersion")
	b.fn(&r.nvrtcCreateProgram, "nvrtcCreateProgram")
	b.fn(&r.nvrtcCompileProgram, "nvrtcCompileProgram")
	b.fn(&r.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize")
	b.fn(&r.nvrtcGetProgramLog, "nvrtcGetProgramLog")
	b.fn(&r.nvrtcGetCUBINSize, "nvrtcGetCUBINSize")
	b.fn(&r.nvrtcGetCUBIN, "nvrtcGetCUBIN")
	b.fn(&r.nvrtcGetPTXSize, "nvrtcGetPTXSize")
	b.fn(&r.nvrtcGetPTX, "nvrtcGetPTX")
	b.fn(&r.nvrtcDestroyProgram, "nvrtcDestroyProgram")
	b.fn(&r.nvrtcGetErrorString, "nvrtcGetErrorString")
	b.optional(&r.nvrtcGetNumSupportedArchs, "nvrtcGetNumSupportedArchs")
	b.optional(&r.nvrtcGetSupportedArchs, "nvrtcGetSupportedArchs")
	return r, b.err()
}

func (r *nvrtcAPI) check(fn string, code int32) error {
	if code == 0 {
		return nil
	}
	return &Error{Func: fn, Code: int(code), Msg: r.nvrtcGetErrorString(code)}
}

// version returns NVRTC's "major.minor".
func (r *nvrtcAPI) version() string {
	var major, minor int32
	if r.nvrtcVersion(&major, &minor) != 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d", major, minor)
}

// supportedArchs returns the compute capabilities NVRTC compiles for, as
// major·10+minor, ascending (nil when the library cannot say).
func (r *nvrtcAPI) supportedArchs() []int {
	if r.nvrtcGetNumSupportedArchs == nil || r.nvrtcGetSupportedArchs == nil {
		return nil
	}
	var n int32
	if r.nvrtcGetNumSupportedArchs(&n) != 0 || n <= 0 {
		return nil
	}
	a := make([]int32, n)
	if r.nvrtcGetSupportedArchs(&a[0]) != 0 {
		return nil
	}
	out := make([]int, n)
	for i, v := range a {
		out[i] = int(v)
	}
	slices.Sort(out)
	return out
}

// Target is what NVRTC compiles for: a real architecture (a CUBIN the
// driver loads as is) or a virtual one (PTX the driver compiles further).
type Target struct {
	Arch int  // compute capability as major·10+minor
	PTX  bool // compute_XY PTX instead of an sm_XY CUBIN
}

// Option returns NVRTC's -arch option for t.
func (t Target) Option() string {
	if t.PTX {
		return fmt.Sprintf("-arch=compute_%d", t.Arch)
	}
	return fmt.Sprintf("-arch=sm_%d", t.Arch)
}

// ChooseTarget picks the target for a device of compute capability cc
// (major·10+minor) given the architectures NVRTC supports: a CUBIN for cc
// itself when it is supported (or when NVRTC cannot list its
// architectures), else PTX for the newest supported one below cc, which the
// driver compiles for the device. It fails when every supported
// architecture is newer than the device.
func ChooseTarget(cc int, supported []int) (Target, error) {
	if len(supported) == 0 || slices.Contains(supported, cc) {
		return Target{Arch: cc}, nil
	}
	best := -1
	for _, a := range supported {
		if a <= cc {
			best = max(best, a)
		}
	}
	if best < 0 {
		return Target{}, fmt.Errorf("cuda: NVRTC compiles for compute capabilities %v, none at or below the device's %d.%d", supported, cc/10, cc%10)
	}
	return Target{Arch: best, PTX: true}, nil
}

// compiled holds the images this process compiled, keyed by source hash,
// target and options: each source compiles once per process.
var compiled struct {
	mu     sync.Mutex
	images map[string]*compileEntry
}

type compileEntry struct {
	once  sync.Once
	image []byte
	log   string
	err   error
}

// compileKey identifies one compilation.
func compileKey(src string, t Target, opts []string) string {
	h := sha256.New()
	h.Write([]byte(src))
	fmt.Fprintf(h, "\x00%s\x00%s", t.Option(), strings.Join(opts, "\x00"))
	return hex.EncodeToString(h.Sum(nil))
}

// compile returns the image for src, compiling it on first use in this
// process (or reading it from cacheDir, when set, where an earlier process
// left it); the returned log is NVRTC's (warnings).
func (r *nvrtcAPI) compile(name, src string, t Target, opts []string, cacheDir string) ([]byte, string, error) {
	key := compileKey(src, t, opts)
	compiled.mu.Lock()
	if compiled.images == nil {
		compiled.images = map[string]*compileEntry{}
	}
	e, ok := compiled.images[key]
	if !ok {
		e = &compileEntry{}
		compiled.images[key] = e
	}
	compiled.mu.Unlock()
	e.once.Do(func() {
		file := ""
		if cacheDir != "" {
			file = filepath.Join(cacheDir, key+".img")
			if b, err := os.ReadFile(file); err == nil && len(b) > 0 {
				e.image = b
				return
			}
		}
		e.image, e.log, e.err = r.compileNow(name, src, t, opts)
		if e.err == nil && file != "" {
			// Best effort: a cache that cannot be written only costs time.
			if os.MkdirAll(cacheDir, 0o755) == nil {
				tmp := file + fmt.Sprintf(".%d", os.Getpid())
				if os.WriteFile(tmp, e.image, 0o644) == nil {
					_ = os.Rename(tmp, file)
				}
			}
		}
	})
	return e.image, e.log, e.err
}

func (r *nvrtcAPI) compileNow(name, src string, t Target, opts []string) ([]byte, string, error) {
	var prog uintptr
	if err := r.check("nvrtcCreateProgram", r.nvrtcCreateProgram(&prog, src, name, 0, nil, nil)); err != nil {
		return nil, "", err
	}
	defer r.nvrtcDestroyProgram(&prog)
	all := append([]string{t.Option()}, opts...)
	copts, free, err := cStrings(all)
	if err != nil {
		return nil, "", err
	}
	defer free()
	compileErr := r.check("nvrtcCompileProgram", r.nvrtcCompileProgram(prog, int32(len(all)), copts))
	var n uint64
	log := ""
	if r.nvrtcGetProgramLogSize(prog, &n) == 0 && n > 1 {
		buf := make([]byte, n)
		if r.nvrtcGetProgramLog(prog, &buf[0]) == 0 {
			log = strings.TrimRight(string(buf[:n-1]), "\x00\n")
		}
	}
	if compileErr != nil {
		return nil, log, fmt.Errorf("cuda: compiling %s with %s: %w\n%s", name, strings.Join(all, " "), compileErr, log)
	}
	getSize, get, what := r.nvrtcGetCUBINSize, r.nvrtcGetCUBIN, "CUBIN"
	if t.PTX {
		getSize, get, what = r.nvrtcGetPTXSize, r.nvrtcGetPTX, "PTX"
	}
	if err := r.check("nvrtcGet"+what+"Size", getSize(prog, &n)); err != nil {
		return nil, log, err
	}
	if n == 0 {
		return nil, log, fmt.Errorf("cuda: NVRTC produced an empty %s for %s", what, name)
	}
	image := make([]byte, n)
	if err := r.check("nvrtcGet"+what, get(prog, &image[0])); err != nil {
		return nil, log, err
	}
	return image, log, nil
}

// NVRTC is the runtime compiler alone, without a driver or a device: to
// check that kernels compile (CompileOnly) on a machine without a GPU.
type NVRTC struct {
	api *nvrtcAPI
}

// OpenNVRTC finds and binds NVRTC with Open's search (getenv nil:
// os.Getenv; opener nil: Dlopen).
func OpenNVRTC(getenv func(string) string, opener Opener) (*NVRTC, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if opener == nil {
		opener = Dlopen
	}
	folders := SearchFolders(getenv)
	l, tried := Locate(NVRTCLib, folders, opener)
	if l == nil {
		return nil, &LibraryError{Missing: []LibSpec{NVRTCLib}, Folders: folders, Found: map[string]string{},
			Tried: map[string][]Attempt{NVRTCLib.Name: tried}}
	}
	api, err := bindNVRTC(l)
	if err != nil {
		return nil, err
	}
	return &NVRTC{api: api}, nil
}

// Version is NVRTC's "major.minor".
func (n *NVRTC) Version() string { return n.api.version() }

// Path is the library's file.
func (n *NVRTC) Path() string { return n.api.lib.Path }

// SupportedArchs are the compute capabilities NVRTC compiles for
// (major·10+minor, ascending; nil when it cannot say).
func (n *NVRTC) SupportedArchs() []int { return n.api.supportedArchs() }

// CompileOnly compiles src for t without the per-process cache and returns
// the image and NVRTC's log.
func (n *NVRTC) CompileOnly(name, src string, t Target, opts []string) ([]byte, string, error) {
	return n.api.compileNow(name, src, t, opts)
}
