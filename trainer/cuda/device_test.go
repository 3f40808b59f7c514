package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ebitengine/purego"
)

// built caches the shared objects fakeLibs compiled, by source: gcc runs
// once per source and test binary.
var built sync.Map // source path → *builtLib

type builtLib struct {
	once sync.Once
	so   string
	err  error
}

// TestMain removes the compiled fakes.
func TestMain(m *testing.M) {
	code := m.Run()
	built.Range(func(_, v any) bool {
		if b := v.(*builtLib); b.so != "" {
			os.RemoveAll(filepath.Dir(b.so))
		}
		return true
	})
	os.Exit(code)
}

// fakeLibs builds src (testdata/fakecuda.c) into a shared object and links
// it into a fresh folder under the driver's, NVRTC's and cuBLAS's sonames
// (cuDNN stays missing unless names adds it). It skips without gcc.
func fakeLibs(t *testing.T, src string, names ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: the fake CUDA libraries cannot be built")
	}
	v, _ := built.LoadOrStore(src, &builtLib{})
	b := v.(*builtLib)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "fakecuda")
		if err != nil {
			b.err = err
			return
		}
		b.so = filepath.Join(dir, "libfake.so")
		if out, err := exec.Command(gcc, "-shared", "-fPIC", "-O1", "-o", b.so, src, "-lm").CombinedOutput(); err != nil {
			b.err = fmt.Errorf("gcc: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	dir := t.TempDir()
	for _, n := range append([]string{"libcuda.so.1", "libnvrtc.so.13", "libcublas.so.13"}, names...) {
		if err := os.Symlink(b.so, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// onlyUnder opens libraries inside dir and refuses the machine's own.
func onlyUnder(dir string) Opener {
	return func(p string) (uintptr, error) {
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			return 0, errors.New("outside the test folder")
		}
		return Dlopen(p)
	}
}

func openFake(t *testing.T, o Options) (*Device, string) {
	t.Helper()
	dir := fakeLibs(t, "testdata/fakecuda.c")
	o.Getenv = env(map[string]string{EnvLibs: dir})
	o.Opener = onlyUnder(dir)
	d, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, dir
}

func TestOpenFakeDevice(t *testing.T) {
	d, dir := openFake(t, Options{})
	in := d.Info()
	if in.Name != "Fake GPU" || in.Major != 9 || in.Minor != 0 || in.SMs != 132 || in.TotalMemory != 80<<30 {
		t.Fatalf("info %+v", in)
	}
	if in.Target != (Target{Arch: 90}) || in.DriverVersion != 13000 || in.NVRTCVersion != "13.0" || in.BLASVersion != 130100 {
		t.Fatalf("versions %+v", in)
	}
	if in.DriverPath != filepath.Join(dir, "libcuda.so.1") || in.DNNPath != "" || d.HasDNN() || !d.HasBLAS() {
		t.Fatalf("libraries %+v (dnn %v blas %v)", in, d.HasDNN(), d.HasBLAS())
	}
	free, total, err := d.MemInfo()
	if err != nil || free != 70<<30 || total != 80<<30 {
		t.Fatalf("MemInfo = %d, %d, %v", free, total, err)
	}
	if _, err := d.PlanConv(ConvSpec{}, 0); !errors.Is(err, ErrNoDNN) {
		t.Fatalf("PlanConv without cuDNN: %v, want ErrNoDNN", err)
	}
}

func TestFakeMemoryRoundTrip(t *testing.T) {
	d, _ := openFake(t, Options{})
	src := []float32{1, 2, 3, 4, 5, 6}
	a, err := d.Malloc(4 * len(src))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := d.Malloc(4 * len(src))
	defer d.Free(a)
	defer d.Free(b)
	if err := d.CopyHtoD(a, src, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.CopyDtoD(b, a, 4*len(src), 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Memset(b, 8, 0); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(src))
	if err := d.CopyDtoH(got, b, 0); err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 0, 3, 4, 5, 6}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after copy and memset: %v, want %v", got, want)
		}
	}
	if err := d.Memset(b, 6, 0); err == nil {
		t.Fatal("Memset of 6 bytes accepted")
	}
	if _, err := d.Malloc(0); err == nil {
		t.Fatal("Malloc(0) accepted")
	}

	pinned, err := d.HostAlloc(4)
	if err != nil {
		t.Fatal(err)
	}
	copy(pinned, []float32{9, 8, 7, 6})
	if err := d.CopyHtoDAsync(a, pinned[1:3], 0); err != nil {
		t.Fatal(err)
	}
	if err := d.CopyHtoDAsync(a, src, 0); err == nil || !strings.Contains(err.Error(), "HostAlloc") {
		t.Fatalf("async copy from pageable memory: %v, want a refusal", err)
	}
	if err := d.CopyDtoH(got[:2], a, 0); err != nil || got[0] != 8 || got[1] != 7 {
		t.Fatalf("async copy: %v %v", got[:2], err)
	}
	if err := d.HostFree(pinned); err != nil {
		t.Fatal(err)
	}
	if err := d.HostFree(src); err == nil {
		t.Fatal("HostFree of Go memory accepted")
	}
}

func TestFakeLaunchPassesArguments(t *testing.T) {
	d, dir := openFake(t, Options{})
	log, err := d.LoadModule("probe.cu", "extern \"C\" __global__ void probe() {}", []string{"-default-device"})
	if err != nil || log != "ok" {
		t.Fatalf("LoadModule: %q, %v", log, err)
	}
	h, err := Dlopen(filepath.Join(dir, "libnvrtc.so.13"))
	if err != nil {
		t.Fatal(err)
	}
	var lastOptions func() string
	purego.RegisterLibFunc(&lastOptions, h, "fakeLastOptions")
	if got := lastOptions(); got != "-arch=sm_90 -default-device " {
		t.Errorf("NVRTC options %q, want the device's architecture then ours", got)
	}
	out, _ := d.Malloc(4 * 11)
	defer d.Free(out)
	if err := d.Launch("probe", D3(3, 2, 1), D1(128), 256, 0, out, -7, float32(2.5), 0.25, int64(1)<<40); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 11)
	if err := d.CopyDtoH(got, out, 0); err != nil {
		t.Fatal(err)
	}
	want := []float32{-7, 2.5, 0.25, float32(int64(1) << 40), 3, 2, 1, 128, 1, 1, 256}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("the kernel received %v, want %v", got, want)
		}
	}
	if err := d.Launch("missing", D1(1), D1(1), 0, 0); err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("unknown kernel: %v", err)
	}
	if err := d.Launch("probe", D1(1), D1(1), 0, 0, "string"); err == nil {
		t.Fatal("a string argument was accepted")
	}
}

// refGemm is the row-major definition of Gemm, on host slices.
func refGemm(g Gemm, a, b, c []float32) {
	for bi := 0; bi < g.Batch; bi++ {
		for i := 0; i < g.M; i++ {
			for j := 0; j < g.N; j++ {
				var s float64
				for k := 0; k < g.K; k++ {
					ai, bj := bi*g.StrideA+i*g.LDA+k, bi*g.StrideB+k*g.LDB+j
					if g.TransA {
						ai = bi*g.StrideA + k*g.LDA + i
					}
					if g.TransB {
						bj = bi*g.StrideB + j*g.LDB + k
					}
					av, bv := a[ai], b[bj]
					s += float64(av) * float64(bv)
				}
				ci := bi*g.StrideC + i*g.LDC + j
				c[ci] = float32(float64(g.Alpha)*s + float64(g.Beta)*float64(c[ci]))
			}
		}
	}
}

// TestFakeSgemmRowMajor runs row-major products through the column-major
// rewrite into the fake's textbook column-major SGEMM.
func TestFakeSgemmRowMajor(t *testing.T) {
	d, _ := openFake(t, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, batch := range []int{1, 3} {
				g := Gemm{TransA: ta, TransB: tb, M: 5, N: 7, K: 4, Alpha: 1.5, Beta: 0.5, Batch: batch}
				ra, ca := g.M, g.K
				if ta {
					ra, ca = g.K, g.M
				}
				rb, cb := g.K, g.N
				if tb {
					rb, cb = g.N, g.K
				}
				g.LDA, g.LDB, g.LDC = ca+1, cb+2, g.N+3 // padded rows
				g.StrideA, g.StrideB, g.StrideC = ra*g.LDA, rb*g.LDB, g.M*g.LDC
				host := func(n int) []float32 {
					s := make([]float32, n)
					for i := range s {
						s[i] = float32(rng.NormFloat64())
					}
					return s
				}
				a, b, c := host(batch*g.StrideA), host(batch*g.StrideB), host(batch*g.StrideC)
				want := append([]float32(nil), c...)
				refGemm(g, a, b, want)
				dev := func(s []float32) DevPtr {
					p, _ := d.Malloc(4 * len(s))
					if err := d.CopyHtoD(p, s, 0); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { d.Free(p) })
					return p
				}
				g.A, g.B, g.C = dev(a), dev(b), dev(c)
				if err := d.Sgemm(0, g); err != nil {
					t.Fatal(err)
				}
				got := make([]float32, len(c))
				if err := d.CopyDtoH(got, g.C, 0); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if math.Abs(float64(got[i]-want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("transA %v transB %v batch %d: C[%d] = %g, want %g", ta, tb, batch, i, got[i], want[i])
					}
				}
			}
		}
	}
	if err := d.Sgemm(0, Gemm{M: 2, N: 2, K: 2, LDA: 1, LDB: 2, LDC: 2, Batch: 1}); err == nil {
		t.Fatal("a row stride shorter than the row was accepted")
	}
}

func TestFakeTF32MathMode(t *testing.T) {
	for _, tf32 := range []bool{false, true} {
		_, dir := openFake(t, Options{TF32: tf32})
		h, err := Dlopen(filepath.Join(dir, "libcublas.so.13"))
		if err != nil {
			t.Fatal(err)
		}
		var mode func() int32
		purego.RegisterLibFunc(&mode, h, "fakeMathMode")
		want := int32(blasDefaultMath)
		if tf32 {
			want = blasTF32Math
		}
		if got := mode(); got != want {
			t.Errorf("TF32 %v: cuBLAS math mode %d, want %d", tf32, got, want)
		}
	}
}

func TestFakeNoDevice(t *testing.T) {
	t.Setenv("FAKE_NO_DEVICE", "1")
	dir := fakeLibs(t, "testdata/fakecuda.c")
	_, err := Open(Options{Getenv: env(map[string]string{EnvLibs: dir}), Opener: onlyUnder(dir)})
	if err == nil {
		t.Fatal("Open succeeded although cuInit failed")
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Func != "cuInit" || ce.Code != 100 {
		t.Fatalf("error %v: want cuInit's CUDA_ERROR_NO_DEVICE", err)
	}
	for _, want := range []string{"CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected", filepath.Join(dir, "libcuda.so.1")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestDriverMissingFunctions(t *testing.T) {
	src := filepath.Join(t.TempDir(), "old.c")
	if err := os.WriteFile(src, []byte("int cuInit(unsigned f) { return 0; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := fakeLibs(t, src)
	_, err := Open(Options{Getenv: env(map[string]string{EnvLibs: dir}), Opener: onlyUnder(dir)})
	if err == nil || !strings.Contains(err.Error(), "lacks cuDriverGetVersion") || !strings.Contains(err.Error(), "cuLaunchKernel") {
		t.Fatalf("error %v: want the missing driver functions named", err)
	}
}

func TestPackArgs(t *testing.T) {
	buf := make([]byte, 8*8)
	for i := range buf {
		buf[i] = 0xff
	}
	err := PackArgs(buf, []any{DevPtr(0x1122334455667788), -2, int32(3), uint32(4), float32(1), 2.0, int64(-1), uint64(5)})
	if err != nil {
		t.Fatal(err)
	}
	want := [][8]byte{
		{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11},
		{0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0}, // a C int: the high half is cleared
		{3, 0, 0, 0, 0, 0, 0, 0},
		{4, 0, 0, 0, 0, 0, 0, 0},
		{0, 0, 0x80, 0x3f, 0, 0, 0, 0},
		{0, 0, 0, 0, 0, 0, 0, 0x40},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{5, 0, 0, 0, 0, 0, 0, 0},
	}
	for i, w := range want {
		if [8]byte(buf[8*i:8*i+8]) != w {
			t.Errorf("slot %d = %x, want %x", i, buf[8*i:8*i+8], w)
		}
	}
	if err := PackArgs(buf, []any{1 << 40}); err == nil {
		t.Error("an int beyond 32 bits was accepted")
	}
	if err := PackArgs(buf[:8], []any{1, 2}); err == nil {
		t.Error("a short buffer was accepted")
	}
}

// TestKernelCache compiles a module once into a cache folder, then, as a
// new process would (the in-process cache emptied), loads it from there
// without compiling.
func TestKernelCache(t *testing.T) {
	cache := t.TempDir()
	d, dir := openFake(t, Options{KernelCache: cache})
	h, err := Dlopen(filepath.Join(dir, "libnvrtc.so.13"))
	if err != nil {
		t.Fatal(err)
	}
	var compiles func() int32
	purego.RegisterLibFunc(&compiles, h, "fakeCompiles")
	const src = "extern \"C\" __global__ void probe() { /* cached */ }"
	before := compiles()
	if _, err := d.LoadModule("cached.cu", src, nil); err != nil {
		t.Fatal(err)
	}
	if compiles() != before+1 {
		t.Fatalf("%d compilations, want 1", compiles()-before)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "*.img"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v, want one image", files)
	}
	compiled.mu.Lock()
	compiled.images = nil
	compiled.mu.Unlock()
	if _, err := d.LoadModule("cached.cu", src, nil); err != nil {
		t.Fatal(err)
	}
	if compiles() != before+1 {
		t.Fatal("the cached image was compiled again")
	}
}

// TestFakeDNNPlan plans a convolution against the fake cuDNN, whose lists
// put a tensor-core algorithm and one needing too much workspace before the
// usable one: without TF32 both are skipped and the exact workspace size
// replaces the heuristic's estimate.
func TestFakeDNNPlan(t *testing.T) {
	spec := ConvSpec{N: 2, C: 4, H: 9, W: 7, O: 6, KH: 3, KW: 3, StrideH: 2, StrideW: 1, PadH: 1, PadW: 0, DilH: 1, DilW: 1, Groups: 2}
	for _, tc := range []struct {
		tf32  bool
		limit int
		algo  int
		ws    int
		fails bool
	}{
		{false, 1 << 20, 5, 4096, false},
		{false, 100, 0, 0, true},
		{true, 1 << 20, 2, 0, false},
	} {
		dir := fakeLibs(t, "testdata/fakecuda.c", "libcudnn.so.9")
		d, err := Open(Options{TF32: tc.tf32, Getenv: env(map[string]string{EnvLibs: dir}), Opener: onlyUnder(dir)})
		if err != nil {
			t.Fatal(err)
		}
		if !d.HasDNN() || d.Info().DNNVersion != 91000 {
			t.Fatalf("cuDNN not loaded: %+v", d.Info())
		}
		p, err := d.PlanConv(spec, tc.limit)
		d.Close()
		if tc.fails {
			if err == nil || !strings.Contains(err.Error(), "no algorithm fits") {
				t.Errorf("limit %d: %v, want no algorithm", tc.limit, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []ConvAlgo{p.Fwd, p.BwdData, p.BwdFilter} {
			if a.ID != tc.algo || a.Workspace != tc.ws {
				t.Errorf("TF32 %v: algorithm %+v, want %d with %d bytes", tc.tf32, a, tc.algo, tc.ws)
			}
		}
	}
	if err := (ConvSpec{N: 1, C: 3, H: 4, W: 4, O: 2, KH: 5, KW: 5, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Groups: 1}).Check(); err == nil {
		t.Error("a 5x5 kernel over a 4x4 input passed Check")
	}
}
