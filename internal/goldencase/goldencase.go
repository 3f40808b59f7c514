// Package goldencase reads the golden case files of ../shared/golden (copied
// into testdata/golden), the expected values the PyTorch reference,
// torchvision/PIL and pycocotools produced, for the test harnesses of
// several packages: where the cases live, the array encoding, and the
// tolerance rule. The case format is specified in the golden README:
// {"kind", "description", "config", "inputs", "expected", "tolerance"}.
package goldencase

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the folder of the golden cases of one kind of test ("losses",
// "augment", ...): $SSLIGHT_GOLDEN_DIR/<sub> when that variable is set (to
// run held-back cases), else testdata/golden/<sub> at the repository root,
// found by walking up from the working directory to go.mod.
func Dir(sub string) string {
	if d := os.Getenv("SSLIGHT_GOLDEN_DIR"); d != "" {
		return filepath.Join(d, sub)
	}
	dir, err := os.Getwd()
	if err != nil {
		return filepath.Join("testdata", "golden", sub)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "golden", sub)
		}
		up := filepath.Dir(dir)
		if up == dir {
			return filepath.Join("testdata", "golden", sub)
		}
		dir = up
	}
}

// Array is the README's array encoding: row-major data of a shape.
type Array struct {
	Shape []int     `json:"shape"`
	Dtype string    `json:"dtype"`
	Data  []float64 `json:"data"`
}

// Float32s returns a float32 array's values, failing t when the array is
// null, of another dtype or of a size its shape disagrees with. The values
// are exact: the files hold the shortest decimals that read back as the
// same float32.
func (a *Array) Float32s(t testing.TB, what string) []float32 {
	t.Helper()
	if a == nil {
		t.Fatalf("%s: array is null", what)
	}
	if a.Dtype != "float32" {
		t.Fatalf("%s: dtype %q, want float32", what, a.Dtype)
	}
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	if n != len(a.Data) {
		t.Fatalf("%s: %d values for shape %v", what, len(a.Data), a.Shape)
	}
	out := make([]float32, len(a.Data))
	for i, v := range a.Data {
		out[i] = float32(v)
	}
	return out
}

// Tolerance is a case's tolerance: got matches want when
// |got − want| ≤ Abs + Rel·|want|; PerOutput overrides it for named outputs.
type Tolerance struct {
	Abs       float64              `json:"abs"`
	Rel       float64              `json:"rel"`
	PerOutput map[string]Tolerance `json:"per_output"`
}

// For returns the tolerance of the named output.
func (tl Tolerance) For(name string) Tolerance {
	if o, ok := tl.PerOutput[name]; ok {
		return o
	}
	return tl
}

// Within reports whether got matches want.
func (tl Tolerance) Within(got, want float64) bool {
	return math.Abs(got-want) <= tl.Abs+tl.Rel*math.Abs(want)
}

// DecodeStrict decodes raw into v, failing t on fields v does not have, so
// a case the harness cannot fully interpret fails instead of passing.
func DecodeStrict(t testing.TB, what string, raw json.RawMessage, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("cannot interpret %s: %v", what, err)
	}
}
