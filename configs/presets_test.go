package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestPresetNames(t *testing.T) {
	want := []string{
		"dino_cnn_baseline", "dino_cnn_sslight",
		"dino_fmnist_baseline", "dino_fmnist_sslight",
		"dino_vit_baseline", "dino_vit_sslight",
		"moco_cnn_baseline", "moco_cnn_sslight",
		"swav_cnn_baseline", "swav_cnn_sslight",
	}
	if got := PresetNames(); !slices.Equal(got, want) {
		t.Errorf("PresetNames() = %v, want %v", got, want)
	}
}

// TestPresetsParseAndValidate: every preset loads strictly and is valid.
func TestPresetsParseAndValidate(t *testing.T) {
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			cfg, err := Preset(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			// The embedded text is what Preset parsed.
			text, err := PresetYAML(name)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(text, name)
			if err != nil || again.Hash() != cfg.Hash() {
				t.Errorf("PresetYAML text parses to a different config (%v)", err)
			}
			// The file on disk is the embedded one.
			disk, err := os.ReadFile(name + ".yaml")
			if err != nil || string(disk) != string(text) {
				t.Errorf("embedded %s.yaml differs from the file (%v)", name, err)
			}
		})
	}
}

// TestBaselineVsSSLight: each baseline/SSLight pair differs in exactly the
// keys the paper changes (and, for the demo, the output folder).
func TestBaselineVsSSLight(t *testing.T) {
	paper := []string{
		"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE",
		"MULTI_VIEWS_TRANSFORMS.LAMBDAS",
		"MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_SCALE",
		"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE",
	}
	for _, family := range []string{"dino_cnn", "dino_vit", "moco_cnn", "swav_cnn", "dino_fmnist"} {
		t.Run(family, func(t *testing.T) {
			base, err := Preset(family + "_baseline")
			if err != nil {
				t.Fatal(err)
			}
			light, err := Preset(family + "_sslight")
			if err != nil {
				t.Fatal(err)
			}
			want := paper
			if family == "dino_fmnist" {
				want = append(slices.Clone(paper), "OUTPUT_DIR")
				slices.Sort(want)
			}
			got := diffKeys(flatten(t, base.CanonicalJSON()), flatten(t, light.CanonicalJSON()))
			if !slices.Equal(got, want) {
				t.Errorf("keys that differ: %v, want %v", got, want)
			}
			m := light.MultiViewsTransforms
			if !slices.Equal(m.GlobalCropsScale, []float64{0.3, 1}) || !slices.Equal(m.LocalCropsScale, []float64{0.05, 0.3}) ||
				!slices.Equal(m.Lambdas, []float64{0.4, 0.6}) {
				t.Errorf("SSLight views: %+v", m)
			}
		})
	}
}

// TestFashionMNISTPresets checks the demo presets against the values asked
// for in the issue, typed in by hand.
func TestFashionMNISTPresets(t *testing.T) {
	type views struct {
		global, local []float64
		localSize     int
		lambdas       []float64
	}
	for _, tc := range []struct {
		name string
		v    views
	}{
		{"dino_fmnist_baseline", views{[]float64{0.14, 1}, []float64{0.05, 0.14}, 12, []float64{0.142857, 0.857143}}},
		{"dino_fmnist_sslight", views{[]float64{0.3, 1}, []float64{0.05, 0.3}, 16, []float64{0.4, 0.6}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Preset(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			m := c.MultiViewsTransforms
			if got := (views{m.GlobalCropsScale, m.LocalCropsScale, m.LocalCropSize, m.Lambdas}); !reflect.DeepEqual(got, tc.v) {
				t.Errorf("views %+v, want %+v", got, tc.v)
			}
			checks := []struct {
				key       string
				got, want any
			}{
				{"GLOBAL_CROP_SIZE", m.GlobalCropSize, 28},
				{"LOCAL_CROPS_NUMBER", m.LocalCropsNumber, 6},
				{"NMB_CROPS", m.NmbCrops, []int{2, 6}},
				{"BACKBONE_ARCH", c.Model.BackboneArch, "resnet18"},
				{"WIDTH", c.Model.Width, 0.25},
				{"SMALL_IMAGE_STEM", c.Model.SmallImageStem, true},
				{"MODEL_MOMENTUM", c.Model.ModelMomentum, 0.996},
				{"DINOHead.USE_BN_IN_HEAD", c.DINOHead.UseBNInHead, true},
				{"DINOHead.HIDDEN_SIZE", c.DINOHead.HiddenSize, 512},
				{"DINOHead.BOTTLENECK_DIM", c.DINOHead.BottleneckDim, 128},
				{"DINOHead.OUTPUT_DIM", c.DINOHead.OutputDim, 1024},
				{"BATCH_SIZE", c.Train.BatchSize, 128},
				{"TOTAL_EPOCHS", c.Solver.TotalEpochs, 5},
				{"OPTIMIZING_METHOD", c.Solver.OptimizingMethod, "LARS"},
				{"BASE_LR", c.Solver.BaseLR, 0.48},
				{"MIN_LR", c.Solver.MinLR, 0.0048},
				{"WEIGHT_DECAY", c.Solver.WeightDecay, 1e-6},
				{"WARMUP_EPOCHS", c.Solver.WarmupEpochs, 0},
				{"WARMUP_ITERS", c.Solver.WarmupIters, 39},
				{"FREEZE_LAST_LAYER", c.Solver.FreezeLastLayer, 0},
				{"FREEZE_LAST_LAYER_ITERS", c.Solver.FreezeLastLayerIters, 4},
				{"WARMUP_TEACHER_TEMP", c.DINO.WarmupTeacherTemp, 0.04},
				{"TEACHER_TEMP", c.DINO.TeacherTemp, 0.07},
				{"WARMUP_TEACHER_TEMP_EPOCHS", c.DINO.WarmupTeacherTempEpochs, 0},
				{"WARMUP_TEACHER_TEMP_ITERS", c.DINO.WarmupTeacherTempIters, 195},
				{"FORMAT", c.Data.Format, "idx"},
				{"MEAN", c.Data.Mean, []float64{0.2860, 0.2860, 0.2860}},
				{"STD", c.Data.Std, []float64{0.3530, 0.3530, 0.3530}},
				{"SSL_METHOD", c.SSLMethod, "DINO"},
				{"NUM_CLASSES", c.Train.NumClasses, 10},
			}
			for _, ch := range checks {
				if !reflect.DeepEqual(ch.got, ch.want) {
					t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
				}
			}
		})
	}
}

func TestPresetErrors(t *testing.T) {
	for _, tc := range []struct {
		name, suggestion string
	}{
		{"dino_cnn_sslite", "dino_cnn_sslight"},
		{"DINO_CNN_SSLIGHT", "dino_cnn_sslight"},
		{"nothing_like_it", ""},
		{"../configs/dino_cnn_sslight", ""},
		{"", ""},
	} {
		_, err := Preset(tc.name)
		if !errors.Is(err, ErrUnknownPreset) {
			t.Errorf("Preset(%q) error %v, want ErrUnknownPreset", tc.name, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "dino_fmnist_sslight") {
			t.Errorf("Preset(%q) error should list the presets: %s", tc.name, msg)
		}
		hasHint := strings.Contains(msg, "did you mean "+tc.suggestion+"?")
		if tc.suggestion != "" && !hasHint || tc.suggestion == "" && strings.Contains(msg, "did you mean") {
			t.Errorf("Preset(%q) error %q, want suggestion %q", tc.name, msg, tc.suggestion)
		}
	}
	if _, err := PresetYAML("nope"); !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("PresetYAML(nope): %v", err)
	}
}

func TestPresetYAMLIsACopy(t *testing.T) {
	a, err := PresetYAML("dino_cnn_sslight.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a[0] = 'X'
	b, _ := PresetYAML("dino_cnn_sslight")
	if b[0] == 'X' {
		t.Error("PresetYAML returned the embedded bytes themselves; a caller can corrupt every later Preset")
	}
}

func TestLoad(t *testing.T) {
	sslight, err := Preset("dino_cnn_sslight")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	user := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(user, []byte("SSL_METHOD: SWAV\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want string // hash, or "" for an error
		is   error
	}{
		{"preset:dino_cnn_sslight", sslight.Hash(), nil},
		{"dino_cnn_sslight", sslight.Hash(), nil},
		{"dino_cnn_sslight.yaml", sslight.Hash(), nil},
		{"../testdata/configs/reference/dino/dino_cnn_sslight.yaml", sslight.Hash(), nil},
		{"preset:nope", "", ErrUnknownPreset},
		{filepath.Join(dir, "missing.yaml"), "", os.ErrNotExist},
	} {
		cfg, err := Load(tc.path)
		switch {
		case tc.want == "" && (err == nil || !errors.Is(err, tc.is)):
			t.Errorf("Load(%q) error = %v, want %v", tc.path, err, tc.is)
		case tc.want != "" && err != nil:
			t.Errorf("Load(%q): %v", tc.path, err)
		case tc.want != "" && cfg.Hash() != tc.want:
			t.Errorf("Load(%q) loaded a different config", tc.path)
		}
	}
	cfg, err := Load(user)
	if err != nil || cfg.SSLMethod != "SWAV" {
		t.Errorf("Load(file) = %v, %v", cfg, err)
	}

	// A local file wins over a preset of the same name.
	t.Chdir(dir)
	if err := os.WriteFile("dino_cnn_sslight", []byte("SEED: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load("dino_cnn_sslight")
	if err != nil || cfg.Seed != 7 {
		t.Errorf("Load should read the local file before the preset: %v, %v", cfg, err)
	}
	// Errors from a file carry its name and line.
	if err := os.WriteFile("bad.yaml", []byte("TRAIN:\n  BATCH_SIZ: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load("bad.yaml")
	if err == nil || err.Error() != "bad.yaml: unknown key TRAIN.BATCH_SIZ (line 2); did you mean TRAIN.BATCH_SIZE?" {
		t.Errorf("Load(bad.yaml) error = %v", err)
	}
	// An empty file, or one of comments and blanks, would train the
	// defaults without a word: refused, naming the file. An explicit empty
	// mapping says "the defaults" on purpose.
	for name, body := range map[string]string{"empty.yaml": "", "comments.yaml": "# my run\n\n   \n# nothing yet\n"} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(name); err == nil || !strings.Contains(err.Error(), name+": the file is empty") {
			t.Errorf("Load(%s) error = %v, want the empty-file error", name, err)
		}
	}
	if err := os.WriteFile("braces.yaml", []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err := Load("braces.yaml"); err != nil || cfg.Hash() != Default().Hash() {
		t.Errorf("Load(braces.yaml) = %v, want the defaults", err)
	}
}
