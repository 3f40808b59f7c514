package configs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseUnknownKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		msg        string // the whole message
	}{
		{
			name: "nested typo",
			yaml: "TRAIN:\n  BATCH_SIZE: 64\nMULTI_VIEWS_TRANSFORMS:\n  LOCAL_CROPS_NUMBER: 6\n  LOCAL_CROP_SIZ: 96\n",
			msg:  "x.yaml: unknown key MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZ (line 5); did you mean MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE?",
		},
		{
			name: "section typo",
			yaml: "MULTI_VIEW_TRANSFORMS:\n  LOCAL_CROP_SIZE: 96\n",
			msg:  "x.yaml: unknown key MULTI_VIEW_TRANSFORMS (line 1); did you mean MULTI_VIEWS_TRANSFORMS?",
		},
		{
			name: "top-level typo",
			yaml: "SEED: 1\nSSL_METOD: DINO\n",
			msg:  "x.yaml: unknown key SSL_METOD (line 2); did you mean SSL_METHOD?",
		},
		{
			name: "wrong case",
			yaml: "dino:\n  teacher_temp: 0.07\n",
			msg:  "x.yaml: unknown key dino (line 1); did you mean DINO?",
		},
		{
			name: "the reference's own typo is the valid spelling",
			yaml: "DINOHead:\n  NORM_LAST_LAYER: false\n",
			msg:  "x.yaml: unknown key DINOHead.NORM_LAST_LAYER (line 2); did you mean DINOHead.NORM_LAST_YEAR?",
		},
		{
			name: "key in the wrong section",
			yaml: "DINO:\n  BOTTLENECK_DIM: 128\n",
			msg:  "x.yaml: unknown key DINO.BOTTLENECK_DIM (line 2); did you mean DINOHead.BOTTLENECK_DIM?",
		},
		{
			name: "nothing close",
			yaml: "TRAIN:\n  BATCH_SIZE: 64\nFOO: 1\n",
			msg:  "x.yaml: unknown key FOO (line 3)",
		},
		{
			name: "eval-side key",
			yaml: "EVAL_METHOD: Linear\n",
			msg:  "x.yaml: unknown key EVAL_METHOD (line 1)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "x.yaml")
			var uk *UnknownKeyError
			if !errors.As(err, &uk) {
				t.Fatalf("error %v (%T), want *UnknownKeyError", err, err)
			}
			if err.Error() != tc.msg {
				t.Errorf("message\n got %q\nwant %q", err.Error(), tc.msg)
			}
		})
	}
}

func TestParseTypeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		key        string
		line       int
		msgHas     string
	}{
		{"string for int", "MULTI_VIEWS_TRANSFORMS:\n  LOCAL_CROP_SIZE: big\n", "MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE", 2, `want an integer, got "big"`},
		{"float for int", "TRAIN:\n  BATCH_SIZE: 12.5\n", "TRAIN.BATCH_SIZE", 2, "want an integer, got the number 12.5"},
		{"quoted number for int", "SEED: '3'\n", "SEED", 1, `want an integer, got "3"`},
		{"bool for int", "WORKERS: true\n", "WORKERS", 1, "want an integer, got the boolean true"},
		{"list for int", "LOG_STEP: [1, 2]\n", "LOG_STEP", 1, "want an integer, got a list"},
		{"null for int", "LOG_STEP:\n", "LOG_STEP", 1, "want an integer, got an empty value"},
		{"int overflow", "DATA:\n  PIXEL_LIMIT: 99999999999999999999\n", "DATA.PIXEL_LIMIT", 2, "want an integer"},
		{"string for float", "SOLVER:\n  BASE_LR: fast\n", "SOLVER.BASE_LR", 2, `want a number, got "fast"`},
		{"nan", "SOLVER:\n  BASE_LR: .nan\n", "SOLVER.BASE_LR", 2, "want a finite number"},
		{"inf", "SOLVER:\n  MIN_LR: -.inf\n", "SOLVER.MIN_LR", 2, "want a finite number"},
		{"scalar for list", "MULTI_VIEWS_TRANSFORMS:\n  LAMBDAS: 0.4\n", "MULTI_VIEWS_TRANSFORMS.LAMBDAS", 2, "want a list of numbers"},
		{"bad list element", "DATA:\n  MEAN: [0.5, x, 0.5]\n", "DATA.MEAN[1]", 2, `want a number, got "x"`},
		{"float in int list", "MULTI_VIEWS_TRANSFORMS:\n  NMB_CROPS:\n    - 2\n    - 6.5\n", "MULTI_VIEWS_TRANSFORMS.NMB_CROPS[1]", 4, "want an integer"},
		{"nested list", "DATA:\n  STD: [[1], 2, 3]\n", "DATA.STD[0]", 2, "got a list"},
		{"number for string", "SSL_METHOD: 3\n", "SSL_METHOD", 1, "want a string (quote values that look like numbers or booleans), got the integer 3"},
		{"bool for string", "STAGE: True\n", "STAGE", 1, "got the boolean True"},
		{"string for bool", "USE_FP16: maybe\n", "USE_FP16", 1, `want true or false, got "maybe"`},
		{"quoted yes for bool", "USE_FP16: 'yes'\n", "USE_FP16", 1, "want true or false"},
		{"scalar for section", "SOLVER: LARS\n", "SOLVER", 1, `want a mapping of keys, got "LARS"`},
		{"list for section", "TRAIN: [1]\n", "TRAIN", 1, "want a mapping of keys, got a list"},
		{"null section", "TRAIN:\nSEED: 1\n", "TRAIN", 1, "got an empty value"},
		{"mapping for leaf", "SEED:\n  A: 1\n", "SEED", 2, "got a mapping"},
		{"top level list", "- TRAIN\n", "", 1, "top level (line 1): want a mapping of keys, got a list"},
		{"top level scalar", "hello\n", "", 1, "want a mapping of keys"},
		{"timestamp for string", "OUTPUT_DIR: 2024-01-01\n", "OUTPUT_DIR", 1, "want a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "t.yaml")
			var te *TypeError
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T), want *TypeError", err, err)
			}
			if te.Key != tc.key || te.Line != tc.line || te.Source != "t.yaml" {
				t.Errorf("key %q line %d source %q, want %q %d t.yaml", te.Key, te.Line, te.Source, tc.key, tc.line)
			}
			if !strings.Contains(err.Error(), tc.msgHas) || !strings.HasPrefix(err.Error(), "t.yaml: ") {
				t.Errorf("message %q, want it to start with the source and contain %q", err.Error(), tc.msgHas)
			}
		})
	}
}

// TestParseAccepts covers what the reference's loader (PyYAML + yacs)
// accepts and sslight must accept too.
func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(c *Config) bool
	}{
		{"empty file", "", func(c *Config) bool { return c.Hash() == Default().Hash() }},
		{"comments only", "# nothing\n\n# here\n", func(c *Config) bool { return c.Hash() == Default().Hash() }},
		{"empty document", "---\n", func(c *Config) bool { return c.Hash() == Default().Hash() }},
		{"python booleans", "DISTRIBUTED: False\nUSE_FP16: True\n", func(c *Config) bool { return !c.Distributed && c.UseFP16 }},
		{"yaml 1.1 booleans", "DISTRIBUTED: no\nUSE_FP16: on\nLOG_GRAD: OFF\n", func(c *Config) bool { return !c.Distributed && c.UseFP16 && !c.LogGrad }},
		{"int where float", "SOLVER:\n  BASE_LR: 1\n  MIN_LR: 0\n", func(c *Config) bool { return c.Solver.BaseLR == 1 && c.Solver.MinLR == 0 }},
		{"ints in float list", "MULTI_VIEWS_TRANSFORMS:\n  GLOBAL_CROPS_SCALE: [1, 1]\n", func(c *Config) bool {
			return slices.Equal(c.MultiViewsTransforms.GlobalCropsScale, []float64{1, 1})
		}},
		{"exponent forms", "SOLVER:\n  WEIGHT_DECAY: 1.0e-6\n  WEIGHT_DECAY_END: 1e-6\n", func(c *Config) bool {
			return c.Solver.WeightDecay == 1e-6 && c.Solver.WeightDecayEnd == 1e-6
		}},
		{"empty string value", "TRAIN:\n  CHECKPOINT_FILE_PATH:\n", func(c *Config) bool { return c.Train.CheckpointFilePath == "" }},
		{"quoted strings", "DIST_BACKEND: 'gloo'\nDIST_URL: \"tcp://h:1\"\n", func(c *Config) bool {
			return c.DistBackend == "gloo" && c.DistURL == "tcp://h:1"
		}},
		{"trailing spaces", "STAGE: TRAIN   \nMULTI_VIEWS_TRANSFORMS:\n  LOCAL_CROPS_NUMBER: 6  \n", func(c *Config) bool { return c.Stage == "TRAIN" }},
		{"block lists", "DATA:\n  MEAN:\n    - 0.1\n    - 0.2\n    - 0.3\n", func(c *Config) bool { return slices.Equal(c.Data.Mean, []float64{0.1, 0.2, 0.3}) }},
		{"empty list", "SOLVER:\n  MILESTONES: []\n", func(c *Config) bool { return len(c.Solver.Milestones) == 0 }},
		{"flow mapping", "TRAIN: {BATCH_SIZE: 64, CHECKPOINT_PERIOD: 5}\n", func(c *Config) bool {
			return c.Train.BatchSize == 64 && c.Train.CheckpointPeriod == 5 && c.Train.NumClasses == 1000
		}},
		{"anchors and aliases", "TRAIN:\n  BATCH_SIZE: &b 64\nVAL:\n  BATCH_SIZE: *b\nDATA:\n  MEAN: &m [0.5, 0.5, 0.5]\n  STD: *m\n", func(c *Config) bool {
			return c.Val.BatchSize == 64 && slices.Equal(c.Data.Std, []float64{0.5, 0.5, 0.5})
		}},
		{"hex int", "SEED: 0x10\n", func(c *Config) bool { return c.Seed == 16 }},
		{"partial section keeps other defaults", "SOLVER:\n  BASE_LR: 0.1\n", func(c *Config) bool {
			return c.Solver.BaseLR == 0.1 && c.Solver.TotalEpochs == 300 && c.Solver.OptimizingMethod == "LARS"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "ok.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tc.check(c) {
				t.Errorf("unexpected values:\n%s", c.CanonicalJSON())
			}
		})
	}
}

func TestParseStructuralErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, msg string
	}{
		{"duplicate key", "SEED: 1\nWORKERS: 2\nSEED: 3\n", "d.yaml: duplicate key SEED (line 3; first given at line 1)"},
		{"duplicate nested key", "TRAIN:\n  BATCH_SIZE: 1\n  BATCH_SIZE: 2\n", "d.yaml: duplicate key TRAIN.BATCH_SIZE (line 3; first given at line 2)"},
		{"two documents", "SEED: 1\n---\nSEED: 2\n", "d.yaml: more than one YAML document (the second starts at line 2); a config is one document"},
		{"syntax", "TRAIN:\n  BATCH_SIZE: [1,\n", "d.yaml: yaml: line"},
		{"tab indentation", "TRAIN:\n\tBATCH_SIZE: 1\n", "d.yaml: yaml: line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "d.yaml")
			if err == nil || !strings.HasPrefix(err.Error(), tc.msg) {
				t.Errorf("error %v, want prefix %q", err, tc.msg)
			}
		})
	}
	var dk *DuplicateKeyError
	if _, err := Parse([]byte("SEED: 1\nSEED: 1\n"), "d"); !errors.As(err, &dk) || dk.Key != "SEED" {
		t.Errorf("want *DuplicateKeyError for SEED, got %v", err)
	}
}

// TestParseReportsEveryProblem: a user fixing a file sees all mistakes at
// once, not one per run.
func TestParseReportsEveryProblem(t *testing.T) {
	src := "TRAIN:\n  BATCH_SIZ: 1\nSOLVER:\n  BASE_LR: x\nSEDD: 3\n"
	_, err := Parse([]byte(src), "m.yaml")
	if err == nil {
		t.Fatal("no error")
	}
	want := "m.yaml: unknown key TRAIN.BATCH_SIZ (line 2); did you mean TRAIN.BATCH_SIZE?\n" +
		"m.yaml: SOLVER.BASE_LR (line 4): want a number, got \"x\"\n" +
		"m.yaml: unknown key SEDD (line 5); did you mean SEED?"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}

	// Garbage is cut off after maxProblems.
	var b strings.Builder
	for i := range 50 {
		b.WriteString("K")
		b.WriteString(strings.Repeat("X", i+1))
		b.WriteString(": 1\n")
	}
	_, err = Parse([]byte(b.String()), "g.yaml")
	if n := strings.Count(err.Error(), "\n") + 1; n != maxProblems+1 || !strings.HasSuffix(err.Error(), "g.yaml: more problems not shown") {
		t.Errorf("%d lines, want %d ending in a truncation note:\n%s", n, maxProblems+1, err)
	}
}

// TestParseLeavesNoPartialList: a list with one bad element must not be
// half-applied (the caller gets an error, but Parse must not write garbage
// into a config that a buggy caller might still use).
func TestParseFailureReturnsNil(t *testing.T) {
	c, err := Parse([]byte("DATA:\n  MEAN: [0.1, bad, 0.3]\n"), "p")
	if err == nil || c != nil {
		t.Errorf("Parse = %v, %v; want nil config and an error", c, err)
	}
}
