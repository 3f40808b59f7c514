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
	"sort"
	"testing"
)

// Dir returns the folder of the golden cases of one kind of test ("losses",
// "augment", ...): $SSLIGHT_GOLDEN_DIR/<sub> when that variable is set (to
// run held-back cases), else RepoDir(sub).
func Dir(sub string) string {
	if d := os.Getenv("SSLIGHT_GOLDEN_DIR"); d != "" {
		return filepath.Join(d, sub)
	}
	return RepoDir(sub)
}

// RepoDir returns testdata/golden/<sub> at the repository root, whatever
// SSLIGHT_GOLDEN_DIR says: the copies committed with the code, for a test
// that needs one particular committed case even while the variable points
// at held-back cases that may not include it.
func RepoDir(sub string) string {
	root, ok := repoRoot()
	if !ok {
		return filepath.Join("testdata", "golden", sub)
	}
	return filepath.Join(root, "testdata", "golden", sub)
}

// SharedDir returns the folder of golden cases too large to commit (the
// backbone weights, 84 MB): $SSLIGHT_GOLDEN_DIR/<sub> when that variable is
// set, else ../shared/golden/<sub> beside the repository root. The folder
// may be absent; callers skip their test then.
func SharedDir(sub string) string {
	if d := os.Getenv("SSLIGHT_GOLDEN_DIR"); d != "" {
		return filepath.Join(d, sub)
	}
	root, ok := repoRoot()
	if !ok {
		return filepath.Join("..", "shared", "golden", sub)
	}
	return filepath.Join(filepath.Dir(root), "shared", "golden", sub)
}

// repoRoot finds the repository root by walking up from the working
// directory to go.mod; ok is false when there is none.
func repoRoot() (root string, ok bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", false
		}
		dir = up
	}
}

// Case is the README's case object with its kind-specific parts left raw,
// for a harness to decode strictly once it knows the kind.
type Case struct {
	Kind        string                     `json:"kind"`
	Description string                     `json:"description"`
	Config      json.RawMessage            `json:"config"`
	Inputs      map[string]json.RawMessage `json:"inputs"`
	Expected    map[string]json.RawMessage `json:"expected"`
	Tolerance   Tolerance                  `json:"tolerance"`
}

// CaseFiles returns the *.json case files of dir in name order, failing t
// when there are none, so a misplaced folder cannot pass as zero cases.
func CaseFiles(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden cases in %s", dir)
	}
	sort.Strings(files)
	return files
}

// ReadCase reads the case file at path, failing t when it cannot be read or
// holds a field outside the case object.
func ReadCase(t testing.TB, path string) Case {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c Case
	if err := UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
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
	if err := UnmarshalStrict(raw, v); err != nil {
		t.Fatalf("cannot interpret %s: %v", what, err)
	}
}

// UnmarshalStrict is DecodeStrict for harnesses that report errors as
// values: it decodes raw into v and returns an error on fields v does not
// have.
func UnmarshalStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
