package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslight-go/sslight/trainer/gpu/check"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-phase", "ops"}, ""},
		{[]string{"-phase", "warp"}, "want info, ops"},
		{[]string{"-phase", "report"}, "needs the record files"},
		{[]string{"-phase", "ops", "-variants", "cudnn,fast"}, `unknown "fast"`},
	} {
		_, err := parseFlags(tc.args)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.err)
		}
	}
}

// TestOpsPhaseOnCPU runs the ops phase on the CPU backend and reads its
// records back through the report: the check's CPU-side reference path,
// end to end.
func TestOpsPhaseOnCPU(t *testing.T) {
	o, err := parseFlags([]string{"-phase", "ops", "-device", "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	var out, log bytes.Buffer
	if err := run(o, &out, &log); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "records.jsonl")
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := check.ParseResults(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ops) != len(check.OpCases()) || len(res.Errors) != 0 {
		t.Fatalf("%d op records and %d errors for %d cases:\n%s", len(res.Ops), len(res.Errors), len(check.OpCases()), log.String())
	}
	for _, r := range res.Ops {
		if !r.Pass || r.Variant != "cpu" {
			t.Errorf("%+v", r)
		}
	}
	o, _ = parseFlags([]string{"-phase", "report", file})
	var table bytes.Buffer
	if err := run(o, &table, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "verdict: every parity check passed") {
		t.Fatalf("report:\n%s", table.String())
	}
}

// TestCUDAPhaseWithoutDriver: on a machine without the driver a phase
// fails with the library error as its record, and the run goes on.
func TestCUDAPhaseWithoutDriver(t *testing.T) {
	t.Setenv("SSLIGHT_CUDA_LIBS", t.TempDir())
	o, _ := parseFlags([]string{"-phase", "ops", "-variants", "cudnn,own"})
	var out, log bytes.Buffer
	if err := run(o, &out, &log); err != nil {
		t.Fatal(err)
	}
	res, err := check.ParseResults(&out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) == 0 {
		t.Skip("a CUDA device opened on this machine")
	}
	if len(res.Errors) != 2 || !strings.Contains(res.Errors[0].Err, "libcuda.so.1") {
		t.Fatalf("errors %+v: want one per variant naming the driver", res.Errors)
	}
}
