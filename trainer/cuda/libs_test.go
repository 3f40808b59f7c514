package cuda

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSearchFoldersOrder(t *testing.T) {
	got := SearchFolders(env(map[string]string{
		EnvLibs:           "/opt/a: /opt/b/::/usr/lib64",
		"LD_LIBRARY_PATH": "/opt/b:/opt/c",
	}))
	var dirs, froms []string
	for _, f := range got {
		dirs = append(dirs, f.Dir)
		froms = append(froms, f.From)
	}
	// The environment's folders first, in order, each once at its first
	// place (so /usr/lib64 counts as SSLIGHT_CUDA_LIBS's); then the system
	// folders.
	wantPrefix := []string{"/opt/a", "/opt/b", "/usr/lib64", "/opt/c", "/usr/lib/x86_64-linux-gnu"}
	if !slices.Equal(dirs[:len(wantPrefix)], wantPrefix) {
		t.Fatalf("folders start %v, want %v", dirs[:len(wantPrefix)], wantPrefix)
	}
	wantFrom := []string{EnvLibs, EnvLibs, EnvLibs, "LD_LIBRARY_PATH", "system"}
	if !slices.Equal(froms[:len(wantFrom)], wantFrom) {
		t.Fatalf("sources %v, want %v", froms[:len(wantFrom)], wantFrom)
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d] {
			t.Fatalf("%s listed twice in %v", d, dirs)
		}
		seen[d] = true
	}
	for _, d := range []string{"/usr/local/cuda/lib64", "/usr/local/nvidia/lib64"} {
		if !seen[d] {
			t.Errorf("system folder %s not searched", d)
		}
	}
}

// touch creates empty files (fake libraries) under dir.
func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLocateOrderAndFallbacks(t *testing.T) {
	root := t.TempDir()
	first, second := filepath.Join(root, "first"), filepath.Join(root, "second")
	// The first folder has only the unversioned name, the second the
	// versioned one: folder order wins over soname order.
	touch(t, first, "libcuda.so")
	touch(t, second, "libcuda.so.1")
	folders := []Folder{{Dir: first, From: EnvLibs}, {Dir: second, From: "LD_LIBRARY_PATH"}}
	var opened []string
	ok := func(p string) (uintptr, error) { opened = append(opened, p); return 7, nil }
	lib, tried := Locate(DriverLib, folders, ok)
	if lib == nil || lib.Path != filepath.Join(first, "libcuda.so") || len(tried) != 0 {
		t.Fatalf("Locate = %+v, %v; want %s", lib, tried, filepath.Join(first, "libcuda.so"))
	}

	// A file that does not load is recorded and the search goes on.
	opened = nil
	failFirst := func(p string) (uintptr, error) {
		opened = append(opened, p)
		if strings.HasPrefix(p, first) {
			return 0, errors.New("invalid ELF header")
		}
		return 9, nil
	}
	lib, tried = Locate(DriverLib, folders, failFirst)
	if lib == nil || lib.Path != filepath.Join(second, "libcuda.so.1") {
		t.Fatalf("Locate = %+v, want the second folder's", lib)
	}
	if len(tried) != 1 || tried[0].Path != filepath.Join(first, "libcuda.so") {
		t.Fatalf("attempts %v, want the first folder's file", tried)
	}

	// Nothing on disk: the sonames go to the loader's cache, in order.
	opened = nil
	none := func(p string) (uintptr, error) { opened = append(opened, p); return 0, errors.New("not found") }
	if lib, _ = Locate(DriverLib, []Folder{{Dir: filepath.Join(root, "empty")}}, none); lib != nil {
		t.Fatalf("found %+v in an empty folder", lib)
	}
	if !slices.Equal(opened, []string{"libcuda.so.1", "libcuda.so"}) {
		t.Fatalf("loader-cache attempts %v, want the sonames in order", opened)
	}
}

func TestLocateOpensCompanionsFirst(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "libnvrtc.so.13", "libnvrtc-builtins.so.13.0")
	var opened []string
	open := func(p string) (uintptr, error) { opened = append(opened, filepath.Base(p)); return 1, nil }
	if lib, _ := Locate(NVRTCLib, []Folder{{Dir: dir}}, open); lib == nil {
		t.Fatal("NVRTC not found")
	}
	if !slices.Equal(opened, []string{"libnvrtc.so.13", "libnvrtc-builtins.so.13.0"}) {
		t.Fatalf("opened %v, want NVRTC then its builtins from the same folder", opened)
	}
}

func TestFindLibrariesErrorNamesEverything(t *testing.T) {
	root := t.TempDir()
	bad := filepath.Join(root, "bad")
	// An empty file is no shared object: the real dlopen refuses it.
	touch(t, bad, "libcuda.so.1")
	_, err := FindLibraries(env(map[string]string{EnvLibs: bad, "LD_LIBRARY_PATH": filepath.Join(root, "ld")}),
		func(p string) (uintptr, error) {
			if !strings.HasPrefix(p, root) {
				return 0, errors.New("not in the test's folders") // keep the machine's libraries out
			}
			return Dlopen(p)
		})
	if err == nil {
		t.Fatal("FindLibraries succeeded with no libraries")
	}
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("error %v does not wrap ErrNotFound", err)
	}
	var le *LibraryError
	if !errors.As(err, &le) || len(le.Missing) != 2 {
		t.Fatalf("error %T %v: want a LibraryError missing the driver and NVRTC", err, err)
	}
	msg := err.Error()
	for _, want := range []string{
		"CUDA driver (libcuda.so.1 or libcuda.so) was not found",
		filepath.Join(bad, "libcuda.so.1") + " exists but did not load",
		"NVRTC (libnvrtc.so.13 or libnvrtc.so.12 or libnvrtc.so.11.2 or libnvrtc.so) was not found",
		"cuBLAS (libcublas.so.13 or libcublas.so.12 or libcublas.so, optional)",
		"cuDNN (libcudnn.so.9 or libcudnn.so, optional)",
		bad + " (SSLIGHT_CUDA_LIBS)",
		filepath.Join(root, "ld") + " (LD_LIBRARY_PATH)",
		"/usr/local/cuda/lib64",
		"the dynamic loader's cache",
		"install the NVIDIA driver",
		"set SSLIGHT_CUDA_LIBS",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	// The folders appear in search order.
	if i, j := strings.Index(msg, bad), strings.Index(msg, "/usr/local/cuda/lib64"); i < 0 || j < i {
		t.Errorf("folders out of order in %s", msg)
	}
}

func TestFindLibrariesWithoutNVRTCOnly(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "libcuda.so.1")
	_, err := FindLibraries(env(map[string]string{EnvLibs: dir}), func(p string) (uintptr, error) {
		if p == filepath.Join(dir, "libcuda.so.1") {
			return 1, nil
		}
		return 0, errors.New("no")
	})
	if err == nil {
		t.Fatal("no error without NVRTC")
	}
	msg := err.Error()
	if strings.Contains(msg, "CUDA driver (") || !strings.Contains(msg, "NVRTC (") {
		t.Fatalf("error should name NVRTC as missing, not the driver: %s", msg)
	}
	if !strings.Contains(msg, "found the CUDA driver at "+filepath.Join(dir, "libcuda.so.1")) {
		t.Errorf("error does not say where the driver was found: %s", msg)
	}
	if strings.Contains(msg, "install the NVIDIA driver") || !strings.Contains(msg, "nvidia-cuda-nvrtc") {
		t.Errorf("the advice should be about the runtime libraries: %s", msg)
	}
}

// TestOpenOnThisMachine opens the default device with the real search. On
// a machine without the NVIDIA driver (as the CI's) it must fail at once
// and name the driver; where a real driver is found but no GPU (the
// libraries of bench/cuda_nogpu_check.sh), every function must have bound
// and cuInit must be what fails.
func TestOpenOnThisMachine(t *testing.T) {
	d, err := Open(Options{})
	if err == nil {
		t.Logf("opened %+v", d.Info())
		d.Close()
		t.Skip("a CUDA device is present here; the no-driver error is not exercised")
	}
	var le *LibraryError
	var ce *Error
	switch {
	case errors.As(err, &le):
		if !strings.Contains(err.Error(), "libcuda.so.1") || !strings.Contains(err.Error(), EnvLibs) {
			t.Fatalf("error does not name the driver and %s: %v", EnvLibs, err)
		}
	case errors.As(err, &ce) && ce.Func == "cuInit":
		t.Logf("a real driver bound every function; without a GPU: %v", err)
	default:
		t.Fatalf("Open failed otherwise than for a missing driver or GPU: %v", err)
	}
}

func TestChooseTarget(t *testing.T) {
	tests := []struct {
		cc        int
		supported []int
		want      Target
		fails     bool
	}{
		{90, []int{75, 80, 90}, Target{Arch: 90}, false},
		{90, nil, Target{Arch: 90}, false},                           // NVRTC cannot say: trust the device
		{100, []int{75, 80, 90}, Target{Arch: 90, PTX: true}, false}, // newer GPU: PTX the driver JITs
		{61, []int{75, 80, 90}, Target{}, true},
	}
	for _, tc := range tests {
		got, err := ChooseTarget(tc.cc, tc.supported)
		if (err != nil) != tc.fails || got != tc.want {
			t.Errorf("ChooseTarget(%d, %v) = %+v, %v; want %+v (fails %v)", tc.cc, tc.supported, got, err, tc.want, tc.fails)
		}
	}
	if o := (Target{Arch: 90}).Option(); o != "-arch=sm_90" {
		t.Errorf("option %q", o)
	}
	if o := (Target{Arch: 90, PTX: true}).Option(); o != "-arch=compute_90" {
		t.Errorf("option %q", o)
	}
}
