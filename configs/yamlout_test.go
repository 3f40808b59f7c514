package configs

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// trickyConfig holds values that are easy to write wrongly: strings that
// read as other types, floats that need exponents, exact binary fractions.
func trickyConfig() *Config {
	c := Default()
	c.OutputDir = "yes"
	c.DistBackend = "123"
	c.DistURL = ""
	c.TensorboardPath = "a: b # not a comment"
	c.Train.Dataset = "null"
	c.Train.FileName = "1.0e-6"
	c.Train.SubsetFilePath = "ünïcødé/路径"
	c.Val.Dataset = "True"
	c.Val.FileName = "line1\nline2"
	c.Val.SubsetFilePath = "  padded  "
	c.Data.PathToDataDir = "gs://bucket/prefix/"
	c.Stage = "ft"
	c.Solver.WeightDecay = 1e-7
	c.Solver.WeightDecayEnd = 1e21
	c.Solver.BaseLR = 0.1 + 0.2
	c.Solver.MinLR = math.Copysign(0, -1)
	c.Solver.StartWarmup = 5e-324
	c.Model.Width = 3
	c.Data.PixelLimit = math.MaxInt64
	c.Seed = 4294967295
	c.Solver.Milestones = []int{}
	c.Data.Mean = []float64{1e-300, 2, 0.30000000000000004}
	return c
}

func TestYAMLRoundTrip(t *testing.T) {
	cases := map[string]*Config{"default": Default(), "tricky": trickyConfig()}
	for _, n := range PresetNames() {
		cases[n] = mustPreset(t, n)
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := c.YAML()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(out, name+" (written)")
			if err != nil {
				t.Fatalf("Parse(YAML()): %v\n%s", err, out)
			}
			if back.Hash() != c.Hash() {
				t.Errorf("round trip changed values:\n%s", describeDiff(t, back.CanonicalJSON(), c.CanonicalJSON()))
			}
			// Lists compare equal too (nil vs empty aside).
			for i, l := range leaves(back) {
				orig := leaves(c)[i].v
				if l.v.Kind() == reflect.Slice && l.v.Len() == 0 && orig.Len() == 0 {
					continue
				}
				if !reflect.DeepEqual(l.v.Interface(), orig.Interface()) && !(l.v.Kind() == reflect.Float64 && l.v.Float() == orig.Float()) {
					t.Errorf("%s: %v after round trip, was %v", l.key, l.v, orig)
				}
			}
			// Writing is deterministic.
			again, _ := back.YAML()
			if !bytes.Equal(again, out) {
				t.Errorf("YAML() not stable:\n%s\n---\n%s", out, again)
			}
		})
	}
}

func TestYAMLLayout(t *testing.T) {
	out, err := mustPreset(t, "dino_cnn_sslight").YAML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"TRAIN:\n  DATASET: imagenet1k\n", // reference order, 2-space indent
		"  GLOBAL_CROPS_SCALE: [0.3, 1.0]\n",
		"  LAMBDAS: [0.4, 0.6]\n",
		"  WEIGHT_DECAY: 0.000001\n",
		"  START_WARMUP: 0.0\n", // PyYAML needs the point to see a float
		"  NORM_LAST_YEAR: true\n",
		"  MILESTONES: [60, 80]\n",
		"SSL_METHOD: DINO\n",
		"  PIXEL_LIMIT: 178956970\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("YAML lacks %q:\n%s", want, s)
		}
	}
	if !strings.HasPrefix(s, "TRAIN:") || !strings.HasSuffix(s, "OUTPUT_DIR: \"./tmp\"\n") {
		t.Errorf("unexpected start or end:\n%s", s)
	}
	tricky, err := trickyConfig().YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`OUTPUT_DIR: "yes"`, `DIST_BACKEND: "123"`, `DATASET: "null"`, `DATASET: "True"`, `FILE_NAME: "1.0e-6"`, "WEIGHT_DECAY: 1.0e-7", "WEIGHT_DECAY_END: 1.0e+21", "WIDTH: 3.0"} {
		if !strings.Contains(string(tricky), want) {
			t.Errorf("tricky YAML lacks %q:\n%s", want, tricky)
		}
	}
}

func TestYAMLRefusesUnwritableValues(t *testing.T) {
	c := Default()
	c.Data.Std[1] = math.NaN()
	if _, err := c.YAML(); err == nil || !strings.Contains(err.Error(), "DATA.STD") {
		t.Errorf("YAML() with NaN: %v", err)
	}
	c = Default()
	c.OutputDir = "\xff"
	if _, err := c.YAML(); err == nil || !strings.Contains(err.Error(), "OUTPUT_DIR") {
		t.Errorf("YAML() with invalid UTF-8: %v", err)
	}
}

// referenceLoader runs testdata/configs/refconfig.py on YAML files and
// returns, per file, what the reference's loader makes of it (canonical
// JSON, or "ERROR ..."). It skips the test when python3 with PyYAML is not
// installed.
func referenceLoader(t *testing.T, files []string) []string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: the reference-loader checks need python3 with PyYAML")
	}
	if err := exec.Command(py, "-c", "import yaml").Run(); err != nil {
		t.Skip("PyYAML not installed: the reference-loader checks need python3 with PyYAML")
	}
	args := append([]string{filepath.Join(testdataDir, "refconfig.py"), "canon", filepath.Join(testdataDir, "expected.json")}, files...)
	out, err := exec.Command(py, args...).Output()
	if err != nil {
		t.Fatalf("refconfig.py: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(files) {
		t.Fatalf("refconfig.py printed %d lines for %d files", len(lines), len(files))
	}
	return lines
}

// TestReferenceLoaderReadsOurYAML: the presets (including the Fashion-MNIST
// ones, which no reference file covers) and everything YAML writes load in
// a re-implementation of the reference's loader (PyYAML, and yacs's
// refusal of unknown keys and type changes) to the same values.
func TestReferenceLoaderReadsOurYAML(t *testing.T) {
	dir := t.TempDir()
	var names, files []string
	var cfgs []*Config
	add := func(name string, c *Config, file string) {
		names, cfgs, files = append(names, name), append(cfgs, c), append(files, file)
	}
	cases := map[string]*Config{"default": Default(), "tricky": trickyConfig()}
	for _, n := range PresetNames() {
		cases[n] = mustPreset(t, n)
		add("preset "+n, cases[n], n+".yaml")
	}
	for name, c := range cases {
		out, err := c.YAML()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(file, out, 0o644); err != nil {
			t.Fatal(err)
		}
		add("YAML() of "+name, c, file)
	}
	for i, got := range referenceLoader(t, files) {
		if strings.HasPrefix(got, "ERROR") {
			t.Errorf("%s: the reference loader refuses it: %s", names[i], got)
			continue
		}
		if want := cfgs[i].CanonicalJSON(); got != string(want) {
			t.Errorf("%s: the reference loader reads other values:\n%s", names[i], describeDiff(t, []byte(got), want))
		}
	}
}
