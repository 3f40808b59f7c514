package kernels

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	ks, err := Parse("x.cu", `
extern "C" __global__ void a(float *y, const float *x, int n, float s, double e, long long st, const double *p) {}
__device__ int helper(int v) { return v; }
extern "C" __global__ void b(float* y,
                             int n) {}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || ks[0].Name != "a" || ks[1].Name != "b" {
		t.Fatalf("kernels %+v", ks)
	}
	want := []Param{Ptr, Ptr, Int, Float, Double, LongLong, Ptr}
	if !slices.Equal(ks[0].Params, want) || !slices.Equal(ks[1].Params, []Param{Ptr, Int}) {
		t.Fatalf("parameters %v and %v", ks[0].Params, ks[1].Params)
	}
	for _, bad := range []string{
		`extern "C" __global__ void c(int *p) {}`,
		`extern "C" __global__ void c(unsigned n) {}`,
		`extern "C" __global__ void c(half h) {}`,
	} {
		if _, err := Parse("bad.cu", bad); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

// TestSources checks the embedded sources: every kernel's signature
// reads, names are unique (Kernels panics otherwise), the ops' kernels are
// there, and NVRTC's source starts with its prelude.
func TestSources(t *testing.T) {
	ks := Kernels()
	names := map[string]bool{}
	for _, k := range ks {
		names[k.Name] = true
	}
	for _, n := range []string{"sgemm_rm", "im2col", "col2im", "dw_fwd", "dw_bwd_data", "dw_bwd_filter", "bn_partial",
		"bn_finish_fwd", "bn_apply", "bn_finish_bwd", "bn_dx", "ln_fwd", "ln_bwd_dx", "maxpool_fwd", "maxpool_bwd",
		"gap_fwd", "softmax_rows", "softmax_bwd", "qkv_split", "tokens_fwd", "cls_bwd", "act_fwd", "act_bwd", "drop_path"} {
		if !names[n] {
			t.Errorf("kernel %s missing", n)
		}
	}
	src := NVRTCSource()
	if !strings.HasPrefix(src, "#line 1 \"prelude_nvrtc.h\"") || !strings.Contains(src, "DYNAMIC_SHARED") {
		t.Error("NVRTC's source does not start with the prelude")
	}
	for _, f := range Files {
		if !strings.Contains(src, "#line 1 \""+f+"\"") {
			t.Errorf("%s missing from the source", f)
		}
	}
	if strings.Contains(EmuTable(), "prelude_nvrtc.h") {
		t.Error("the emulation's table includes NVRTC's prelude")
	}
}
