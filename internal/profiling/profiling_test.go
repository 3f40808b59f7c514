package profiling

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartWritesTheProfilesAsked(t *testing.T) {
	dir := t.TempDir()
	cpu, tr := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "trace.out")
	t.Setenv(CPUProfileEnv, cpu)
	t.Setenv(TraceEnv, tr)
	var warn strings.Builder
	Start(&warn)()
	if warn.Len() != 0 {
		t.Errorf("warnings %q", warn.String())
	}
	for _, f := range []string{cpu, tr} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() == 0 {
			t.Errorf("%s is empty", f)
		}
	}
}

func TestStartWarnsAndGoesOn(t *testing.T) {
	t.Setenv(CPUProfileEnv, filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.pprof"))
	t.Setenv(TraceEnv, "")
	var warn strings.Builder
	Start(&warn)()
	if !strings.HasPrefix(warn.String(), "sslight: SSLIGHT_CPUPROFILE: ") {
		t.Errorf("warning %q", warn.String())
	}
}
