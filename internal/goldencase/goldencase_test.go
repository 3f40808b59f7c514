package goldencase

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirs(t *testing.T) {
	// This package sits two folders below the repository root.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(wd))
	t.Setenv("SSLIGHT_GOLDEN_DIR", "")
	for _, tc := range []struct {
		name      string
		got, want string
	}{
		{"Dir", Dir("augment"), filepath.Join(root, "testdata", "golden", "augment")},
		{"RepoDir", RepoDir("coco"), filepath.Join(root, "testdata", "golden", "coco")},
		{"SharedDir", SharedDir("backbones"), filepath.Join(filepath.Dir(root), "shared", "golden", "backbones")},
	} {
		if tc.got != tc.want {
			t.Errorf("%s without SSLIGHT_GOLDEN_DIR = %s, want %s", tc.name, tc.got, tc.want)
		}
	}
	t.Setenv("SSLIGHT_GOLDEN_DIR", "/held/back")
	for _, tc := range []struct {
		name      string
		got, want string
	}{
		{"Dir", Dir("augment"), "/held/back/augment"},
		{"RepoDir", RepoDir("coco"), filepath.Join(root, "testdata", "golden", "coco")},
		{"SharedDir", SharedDir("backbones"), "/held/back/backbones"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s with SSLIGHT_GOLDEN_DIR=/held/back = %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}

func TestTolerance(t *testing.T) {
	// Binary fractions, so the edge is exact: 0.25 + 0.5·|±2| = 1.25.
	tl := Tolerance{Abs: 0.25, Rel: 0.5, PerOutput: map[string]Tolerance{"q": {Abs: 0}}}
	for _, tc := range []struct {
		name      string
		tol       Tolerance
		got, want float64
		within    bool
	}{
		{"on the edge", tl, 3.25, 2, true},
		{"past the edge", tl, 3.375, 2, false},
		{"rel uses |want|", tl, -0.75, -2, true},
		{"rel does not use |got|", tl, 0.5, 0, false}, // 0.25 + 0.5·|got| would be 0.5
		{"NaN got", tl, math.NaN(), 0, false},
		{"NaN want", tl, 0, math.NaN(), false},
		{"per_output q exact", tl.For("q"), 1, 1, true},
		{"per_output q", tl.For("q"), 1.0000001, 1, false},
		{"other output keeps the pair", tl.For("loss"), 2.5, 1.5, true},
	} {
		if got := tc.tol.Within(tc.got, tc.want); got != tc.within {
			t.Errorf("%s: Within(%v, %v) = %v, want %v", tc.name, tc.got, tc.want, got, tc.within)
		}
	}
}

func TestUnmarshalStrict(t *testing.T) {
	var a Array
	if err := UnmarshalStrict([]byte(`{"shape": [2], "dtype": "float32", "data": [1, 2]}`), &a); err != nil {
		t.Fatal(err)
	}
	if got := a.Float32s(t, "a"); len(got) != 2 || got[1] != 2 {
		t.Errorf("Float32s = %v, want [1 2]", got)
	}
	err := UnmarshalStrict([]byte(`{"shape": [1], "dtype": "float32", "data": [1], "stride": [1]}`), &a)
	if err == nil || !strings.Contains(err.Error(), `"stride"`) {
		t.Errorf("unknown field: err %v, want one naming \"stride\"", err)
	}
}

func TestCaseFilesAndReadCase(t *testing.T) {
	// The committed augment cases: sorted, and each one a case object.
	files := CaseFiles(t, RepoDir("augment"))
	for i := 1; i < len(files); i++ {
		if files[i-1] >= files[i] {
			t.Fatalf("files out of order: %s before %s", files[i-1], files[i])
		}
	}
	c := ReadCase(t, filepath.Join(RepoDir("augment"), "hflip_face.json"))
	if c.Kind != "augment_hflip" || c.Expected["image"] == nil || c.Inputs["image"] == nil {
		t.Errorf("hflip_face: kind %q, expected %d outputs, inputs %d", c.Kind, len(c.Expected), len(c.Inputs))
	}
}
