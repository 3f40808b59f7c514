package configs

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSet(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		get        func(c *Config) any
		want       any
	}{
		{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE", "96", func(c *Config) any { return c.MultiViewsTransforms.LocalCropSize }, 96},
		{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE", " 128 ", func(c *Config) any { return c.MultiViewsTransforms.LocalCropSize }, 128},
		{"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE", "[0.3,1.0]", func(c *Config) any { return c.MultiViewsTransforms.GlobalCropsScale }, []float64{0.3, 1}},
		{"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE", "0.3,1.0", func(c *Config) any { return c.MultiViewsTransforms.GlobalCropsScale }, []float64{0.3, 1}},
		{"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE", "[ 0.3 , 1 ]", func(c *Config) any { return c.MultiViewsTransforms.GlobalCropsScale }, []float64{0.3, 1}},
		{"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE", "(0.3, 1.0)", func(c *Config) any { return c.MultiViewsTransforms.GlobalCropsScale }, []float64{0.3, 1}},
		{"MULTI_VIEWS_TRANSFORMS.LAMBDAS", "0.4, 0.6", func(c *Config) any { return c.MultiViewsTransforms.Lambdas }, []float64{0.4, 0.6}},
		{"MULTI_VIEWS_TRANSFORMS.NMB_CROPS", "[2,10]", func(c *Config) any { return c.MultiViewsTransforms.NmbCrops }, []int{2, 10}},
		{"SOLVER.MILESTONES", "[]", func(c *Config) any { return c.Solver.Milestones }, []int{}},
		{"DATA.MEAN", "0.5", func(c *Config) any { return c.Data.Mean }, []float64{0.5}},
		{"SOLVER.BASE_LR", "1e-3", func(c *Config) any { return c.Solver.BaseLR }, 1e-3},
		{"SOLVER.BASE_LR", "2", func(c *Config) any { return c.Solver.BaseLR }, 2.0},
		{"DATA.PIXEL_LIMIT", "4294967296", func(c *Config) any { return c.Data.PixelLimit }, int64(1) << 32},
		{"USE_FP16", "true", func(c *Config) any { return c.UseFP16 }, true},
		{"DISTRIBUTED", "False", func(c *Config) any { return c.Distributed }, false},
		{"LOG_GRAD", "no", func(c *Config) any { return c.LogGrad }, false},
		{"MODEL.SMALL_IMAGE_STEM", "ON", func(c *Config) any { return c.Model.SmallImageStem }, true},
		{"OUTPUT_DIR", "gs://bucket/run 1", func(c *Config) any { return c.OutputDir }, "gs://bucket/run 1"},
		{"TRAIN.CHECKPOINT_FILE_PATH", "", func(c *Config) any { return c.Train.CheckpointFilePath }, ""},
		{"DINOHead.NORM_LAST_YEAR", "false", func(c *Config) any { return c.DINOHead.NormLastLayer }, false},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			c := Default()
			if err := c.Set(tc.key, tc.value); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		msg        string
		target     any
	}{
		{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZ", "96", "unknown key MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZ; did you mean MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE?", new(*UnknownKeyError)},
		{"solver.base_lr", "0.1", "unknown key solver.base_lr; did you mean SOLVER.BASE_LR?", new(*UnknownKeyError)},
		{"LOCAL_CROP_SIZE", "96", "unknown key LOCAL_CROP_SIZE", new(*UnknownKeyError)},
		{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE", "96.0", `MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE: want an integer, got "96.0"`, new(*TypeError)},
		{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE", "", `MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE: want an integer, got ""`, new(*TypeError)},
		{"SOLVER.BASE_LR", "NaN", `SOLVER.BASE_LR: want a finite number, got "NaN"`, new(*TypeError)},
		{"SOLVER.BASE_LR", "inf", `SOLVER.BASE_LR: want a finite number, got "inf"`, new(*TypeError)},
		{"USE_FP16", "1", `USE_FP16: want true or false, got "1"`, new(*TypeError)},
		{"MULTI_VIEWS_TRANSFORMS.LAMBDAS", "[0.4;0.6]", `MULTI_VIEWS_TRANSFORMS.LAMBDAS[0]: want a finite number, got "0.4;0.6"`, new(*TypeError)},
		{"MULTI_VIEWS_TRANSFORMS.NMB_CROPS", "2,6.5", `MULTI_VIEWS_TRANSFORMS.NMB_CROPS[1]: want an integer, got "6.5"`, new(*TypeError)},
		{"MULTI_VIEWS_TRANSFORMS.NMB_CROPS", "[2,]", `MULTI_VIEWS_TRANSFORMS.NMB_CROPS[1]: want an integer, got ""`, new(*TypeError)},
		{"SEED", "99999999999999999999", `SEED: want an integer, got "99999999999999999999"`, new(*TypeError)},
		{"OUTPUT_DIR", "\xff", `OUTPUT_DIR: want valid UTF-8 text, got "\xff"`, new(*TypeError)},
		{"SOLVER", "x", "SOLVER is a section, not a key; set one of its keys, e.g. SOLVER.OPTIMIZING_METHOD", nil},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			c := Default()
			before := c.Hash()
			err := c.Set(tc.key, tc.value)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tc.msg {
				t.Errorf("message\n got %q\nwant %q", err.Error(), tc.msg)
			}
			if tc.target != nil && !errors.As(err, tc.target) {
				t.Errorf("error type %T, want %T", err, tc.target)
			}
			if c.Hash() != before {
				t.Error("a failed Set changed the config")
			}
		})
	}
}

// TestSetEveryKey: every key Keys lists can be set from text, and the text
// YAML writes for the default value sets it back to the same value.
func TestSetEveryKey(t *testing.T) {
	def := Default()
	text := flatten(t, def.CanonicalJSON())
	// Run-time keys the hash leaves out (they say where the arithmetic
	// runs, not what is trained).
	runtimeKeys := map[string]bool{"TRAIN.DEVICE": true}
	for _, k := range Keys() {
		if runtimeKeys[k] {
			c := Default()
			if err := c.Set(k, "cuda"); err != nil || c.Hash() != def.Hash() || c.Train.Device != "cuda" {
				t.Errorf("Set(%s, cuda): %v; the hash must not change (%v)", k, err, c.Hash() != def.Hash())
			}
			continue
		}
		v, ok := text[k]
		if !ok {
			t.Errorf("Keys() lists %s, which the canonical JSON lacks", k)
			continue
		}
		v = strings.Trim(v, `"`) // strings are set verbatim
		c := Default()
		if err := c.Set(k, v); err != nil {
			t.Errorf("Set(%s, %s): %v", k, v, err)
			continue
		}
		if c.Hash() != def.Hash() {
			t.Errorf("Set(%s, %s) changed the config", k, v)
		}
	}
	if len(Keys()) != len(text)+len(runtimeKeys) {
		t.Errorf("Keys() has %d keys, the canonical JSON %d", len(Keys()), len(text))
	}
}
