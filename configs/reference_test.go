package configs

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// referenceYAMLs are the reference's src/config/exp_yamls, copied unchanged
// into testdata/configs/reference, and the preset each corresponds to.
var referenceYAMLs = map[string]string{
	"dino/dino_cnn_baseline.yaml": "dino_cnn_baseline",
	"dino/dino_cnn_sslight.yaml":  "dino_cnn_sslight",
	"dino/dino_vit_baseline.yaml": "dino_vit_baseline",
	"dino/dino_vit_sslight.yaml":  "dino_vit_sslight",
	"moco/moco_cnn_baseline.yaml": "moco_cnn_baseline",
	"moco/moco_cnn_sslight.yaml":  "moco_cnn_sslight",
	"swav/swav_cnn_baseline.yaml": "swav_cnn_baseline",
	"swav/swav_cnn_sslight.yaml":  "swav_cnn_sslight",
}

// TestDefaultMatchesReference compares Default with the reference's
// defaults.py as executed by Python (plus the documented extension
// defaults), byte for byte in canonical form.
func TestDefaultMatchesReference(t *testing.T) {
	exp := loadExpected(t)
	want := exp.Cases["<defaults>"]
	got := Default()
	if c := got.CanonicalJSON(); string(c) != want.Canonical {
		t.Errorf("Default differs from the reference defaults:\n%s", describeDiff(t, c, []byte(want.Canonical)))
	}
	if h := got.Hash(); h != want.SHA256 {
		t.Errorf("Default().Hash() = %s, Python computed %s", h, want.SHA256)
	}
	if h := got.AugmentationHash(); h != want.AugmentationSHA256 {
		t.Errorf("Default().AugmentationHash() = %s, Python computed %s", h, want.AugmentationSHA256)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Default().Validate(): %v", err)
	}
}

// TestReferenceYAMLsParseUnchanged parses every experiment YAML of the
// reference as shipped, and checks all values against the reference loader
// (Python: PyYAML + yacs merge rules) and the hashes against Python's.
func TestReferenceYAMLsParseUnchanged(t *testing.T) {
	exp := loadExpected(t)
	files, err := filepath.Glob(filepath.Join(testdataDir, "reference", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(referenceYAMLs) {
		t.Fatalf("found %d reference YAMLs, want %d: %v", len(files), len(referenceYAMLs), files)
	}
	for _, path := range files {
		name := filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			want, ok := exp.Cases[name]
			if !ok {
				t.Fatalf("no expectation for %s in expected.json", name)
			}
			cfg := mustParseFile(t, path)
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if c := cfg.CanonicalJSON(); string(c) != want.Canonical {
				t.Errorf("values differ from the reference loader's:\n%s", describeDiff(t, c, []byte(want.Canonical)))
			}
			if h := cfg.Hash(); h != want.SHA256 {
				t.Errorf("Hash = %s, Python computed %s", h, want.SHA256)
			}
			if h := cfg.AugmentationHash(); h != want.AugmentationSHA256 {
				t.Errorf("AugmentationHash = %s, Python computed %s", h, want.AugmentationSHA256)
			}
		})
	}
}

// TestReferenceKeyValues spot-checks values read from the reference files,
// typed in by hand from those files.
func TestReferenceKeyValues(t *testing.T) {
	type want struct {
		global, local []float64
		nLocal        int
		localSize     int
		lambdas       []float64
		nmb           []int
		arch, method  string
		optimizer     string
		baseLR, minLR float64
	}
	cases := map[string]want{
		"dino/dino_cnn_baseline.yaml": {[]float64{0.14, 1}, []float64{0.05, 0.14}, 6, 96, []float64{0.142857, 0.857143}, []int{2, 6}, "mobilenet_v2", "DINO", "LARS", 0.48, 0.0048},
		"dino/dino_cnn_sslight.yaml":  {[]float64{0.3, 1}, []float64{0.05, 0.3}, 6, 128, []float64{0.4, 0.6}, []int{2, 6}, "mobilenet_v2", "DINO", "LARS", 0.48, 0.0048},
		"dino/dino_vit_baseline.yaml": {[]float64{0.25, 1}, []float64{0.05, 0.25}, 10, 96, []float64{0.090909, 0.909091}, []int{2, 10}, "vit_tiny", "DINO", "AdamW", 0.0005, 0.00001},
		"dino/dino_vit_sslight.yaml":  {[]float64{0.3, 1}, []float64{0.05, 0.3}, 10, 128, []float64{0.4, 0.6}, []int{2, 10}, "vit_tiny", "DINO", "AdamW", 0.0005, 0.00001},
		"moco/moco_cnn_baseline.yaml": {[]float64{0.14, 1}, []float64{0.05, 0.14}, 6, 96, []float64{0.142857, 0.857143}, []int{2, 6}, "mobilenet_v2", "MOCO", "LARS", 0.48, 0.0048},
		"moco/moco_cnn_sslight.yaml":  {[]float64{0.3, 1}, []float64{0.05, 0.3}, 6, 128, []float64{0.4, 0.6}, []int{2, 6}, "mobilenet_v2", "MOCO", "LARS", 0.48, 0.0048},
		"swav/swav_cnn_baseline.yaml": {[]float64{0.14, 1}, []float64{0.05, 0.14}, 6, 96, []float64{0.142857, 0.857143}, []int{2, 6}, "mobilenet_v2", "SWAV", "LARS", 0.3, 0.0048},
		"swav/swav_cnn_sslight.yaml":  {[]float64{0.3, 1}, []float64{0.05, 0.3}, 6, 128, []float64{0.4, 0.6}, []int{2, 6}, "mobilenet_v2", "SWAV", "LARS", 0.3, 0.0048},
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			c := mustParseFile(t, filepath.Join(testdataDir, "reference", name))
			m := c.MultiViewsTransforms
			got := want{m.GlobalCropsScale, m.LocalCropsScale, m.LocalCropsNumber, m.LocalCropSize, m.Lambdas, m.NmbCrops,
				c.Model.BackboneArch, c.SSLMethod, c.Solver.OptimizingMethod, c.Solver.BaseLR, c.Solver.MinLR}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
			// Values every reference experiment shares.
			if c.Train.BatchSize != 128 || c.Solver.TotalEpochs != 200 || c.Workers != 4 || c.LogStep != 20 {
				t.Errorf("BATCH_SIZE %d TOTAL_EPOCHS %d WORKERS %d LOG_STEP %d, want 128 200 4 20",
					c.Train.BatchSize, c.Solver.TotalEpochs, c.Workers, c.LogStep)
			}
		})
	}
	// Method-specific values.
	vit := mustParseFile(t, filepath.Join(testdataDir, "reference", "dino/dino_vit_sslight.yaml"))
	if vit.DINOHead.OutputDim != 65536 || vit.DINOHead.NormLastLayer || vit.DINOHead.UseBNInHead ||
		vit.Solver.WeightDecay != 0.04 || vit.Solver.WeightDecayEnd != 0.4 || vit.DINO.WarmupTeacherTempEpochs != 30 {
		t.Errorf("ViT head/solver: %+v %+v %+v", vit.DINOHead, vit.Solver, vit.DINO)
	}
	cnn := mustParseFile(t, filepath.Join(testdataDir, "reference", "dino/dino_cnn_sslight.yaml"))
	if cnn.DINOHead.OutputDim != 4096 || !cnn.DINOHead.UseBNInHead || !cnn.DINOHead.NormLastLayer ||
		cnn.DINO.WarmupTeacherTempEpochs != 50 || cnn.Model.ModelMomentum != 0.996 || cnn.Solver.FreezeLastLayer != 1 {
		t.Errorf("CNN head/DINO: %+v %+v", cnn.DINOHead, cnn.DINO)
	}
	swav := mustParseFile(t, filepath.Join(testdataDir, "reference", "swav/swav_cnn_sslight.yaml"))
	if swav.SwAV.QueueLength != 3840 || swav.SwAV.NmbPrototypes != 3000 || swav.Solver.StartWarmup != 0.075 ||
		!slices.Equal(swav.MultiViewsTransforms.ColorJitterIntensity, []float64{0.8, 0.8, 0.8, 0.2}) ||
		!slices.Equal(swav.MultiViewsTransforms.SolarizationProb, []float64{0, 0}) ||
		!slices.Equal(swav.MultiViewsTransforms.GaussianBlurProb, []float64{0.5, 0.5, 0.5}) {
		t.Errorf("SwAV: %+v %+v", swav.SwAV, swav.MultiViewsTransforms)
	}
	moco := mustParseFile(t, filepath.Join(testdataDir, "reference", "moco/moco_cnn_baseline.yaml"))
	if moco.MoCo.QueueLength != 65536 || moco.MoCo.Momentum != 0.999 || moco.MoCo.Temperature != 0.2 || moco.MoCo.OutputDim != 128 {
		t.Errorf("MoCo: %+v", moco.MoCo)
	}
}

// TestPresetsEqualReference: each reference-derived preset holds exactly the
// values of its reference file, although it is reformatted and commented.
func TestPresetsEqualReference(t *testing.T) {
	for file, preset := range referenceYAMLs {
		t.Run(preset, func(t *testing.T) {
			ref := mustParseFile(t, filepath.Join(testdataDir, "reference", file))
			p, err := Preset(preset)
			if err != nil {
				t.Fatal(err)
			}
			if p.Hash() != ref.Hash() {
				t.Errorf("preset differs from %s:\n%s", file, describeDiff(t, p.CanonicalJSON(), ref.CanonicalJSON()))
			}
		})
	}
}
