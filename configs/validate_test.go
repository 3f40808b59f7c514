package configs

import (
	"errors"
	"strings"
	"testing"
)

// validationKeys returns the key of every *ValidationError in err.
func validationKeys(t *testing.T, err error) []string {
	t.Helper()
	var keys []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		var ve *ValidationError
		if errors.As(e, &ve) && ve == e {
			keys = append(keys, ve.Key)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		t.Errorf("unexpected error in Validate result: %v (%T)", e, e)
	}
	walk(err)
	return keys
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   map[string]string // Set calls on the dino_cnn_sslight preset
		key    string            // the key the (only) problem names
		msgHas string
	}{
		{"scale above 1", map[string]string{"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE": "0.3,1.2"}, "MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE[1]", "must be in (0, 1]"},
		{"scale zero", map[string]string{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_SCALE": "0,0.3"}, "MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_SCALE[0]", "must be in (0, 1]"},
		{"scale reversed", map[string]string{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_SCALE": "0.3,0.05"}, "MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_SCALE", "min 0.3 is larger than max 0.05"},
		{"scale one number", map[string]string{"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE": "0.3"}, "MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE", "must be two numbers"},
		{"local size zero", map[string]string{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE": "0"}, "MULTI_VIEWS_TRANSFORMS.LOCAL_CROP_SIZE", "must be > 0, got 0"},
		{"global size negative", map[string]string{"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE": "-224"}, "MULTI_VIEWS_TRANSFORMS.GLOBAL_CROP_SIZE", "must be > 0"},
		{"local crops vs NMB_CROPS", map[string]string{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_NUMBER": "10"}, "MULTI_VIEWS_TRANSFORMS.NMB_CROPS", "NMB_CROPS[1]=6 does not match LOCAL_CROPS_NUMBER=10"},
		{"three global views", map[string]string{"MULTI_VIEWS_TRANSFORMS.NMB_CROPS": "3,6"}, "MULTI_VIEWS_TRANSFORMS.NMB_CROPS", "NMB_CROPS[0] (global views) must be 2, got 3"},
		{"lambdas sum", map[string]string{"MULTI_VIEWS_TRANSFORMS.LAMBDAS": "0.4,0.5"}, "MULTI_VIEWS_TRANSFORMS.LAMBDAS", "must sum to 1"},
		{"lambdas count", map[string]string{"MULTI_VIEWS_TRANSFORMS.LAMBDAS": "1"}, "MULTI_VIEWS_TRANSFORMS.LAMBDAS", "must be two numbers"},
		{"lambda negative", map[string]string{"MULTI_VIEWS_TRANSFORMS.LAMBDAS": "-0.0005,1.0"}, "MULTI_VIEWS_TRANSFORMS.LAMBDAS[0]", "must be in [0, 1], got -0.0005"},
		{"probability above 1", map[string]string{"MULTI_VIEWS_TRANSFORMS.SOLARIZATION_PROB": "0,1.5"}, "MULTI_VIEWS_TRANSFORMS.SOLARIZATION_PROB[1]", "must be in [0, 1], got 1.5"},
		{"blur needs 3", map[string]string{"MULTI_VIEWS_TRANSFORMS.GAUSSIAN_BLUR_PROB": "1,0.1"}, "MULTI_VIEWS_TRANSFORMS.GAUSSIAN_BLUR_PROB", "must hold 3 probabilities, got 2"},
		{"hue", map[string]string{"MULTI_VIEWS_TRANSFORMS.COLOR_JITTER_INTENSITY": "0.4,0.4,0.2,0.6"}, "MULTI_VIEWS_TRANSFORMS.COLOR_JITTER_INTENSITY[3]", "hue must be in [0, 0.5]"},
		{"two-view probability", map[string]string{"TWO_VIEWS_TRANSFORMS.GREYSCALE_PROB": "0.2,-0.1"}, "TWO_VIEWS_TRANSFORMS.GREYSCALE_PROB[1]", "must be in [0, 1]"},
		{"assign out of range", map[string]string{"MULTI_VIEWS_TRANSFORMS.CROPS_FOR_ASSIGN": "0,8"}, "MULTI_VIEWS_TRANSFORMS.CROPS_FOR_ASSIGN[1]", "must be a view index in [0, 8), got 8"},
		{"method lower case", map[string]string{"SSL_METHOD": "dino"}, "SSL_METHOD", `must be one of DINO, SWAV, MOCO, got "dino" (spelled DINO)`},
		{"method unknown", map[string]string{"SSL_METHOD": "BYOL"}, "SSL_METHOD", `must be one of DINO, SWAV, MOCO, got "BYOL"`},
		{"arch", map[string]string{"MODEL.BACKBONE_ARCH": "vit_base"}, "MODEL.BACKBONE_ARCH", "must be one of mobilenet_v2, resnet18, resnet34, resnet50, vit_tiny, vit_small"},
		{"width", map[string]string{"MODEL.WIDTH": "0"}, "MODEL.WIDTH", "must be a finite number > 0"},
		{"width on vit", map[string]string{"MODEL.BACKBONE_ARCH": "vit_small", "MODEL.WIDTH": "0.5"}, "MODEL.WIDTH", "applies to CNN backbones only"},
		{"stem on vit", map[string]string{"MODEL.BACKBONE_ARCH": "vit_tiny", "MODEL.SMALL_IMAGE_STEM": "true"}, "MODEL.SMALL_IMAGE_STEM", "applies to CNN backbones only"},
		{"warm-up both ways", map[string]string{"SOLVER.WARMUP_EPOCHS": "10", "SOLVER.WARMUP_ITERS": "39"}, "SOLVER.WARMUP_ITERS", "cannot be combined with SOLVER.WARMUP_EPOCHS=10"},
		{"teacher warm-up both ways", map[string]string{"DINO.WARMUP_TEACHER_TEMP_ITERS": "195"}, "DINO.WARMUP_TEACHER_TEMP_ITERS", "cannot be combined with DINO.WARMUP_TEACHER_TEMP_EPOCHS=50"},
		{"freeze both ways", map[string]string{"SOLVER.FREEZE_LAST_LAYER_ITERS": "4"}, "SOLVER.FREEZE_LAST_LAYER_ITERS", "cannot be combined with SOLVER.FREEZE_LAST_LAYER=1"},
		{"teacher warm-up too long", map[string]string{"DINO.WARMUP_TEACHER_TEMP_EPOCHS": "201"}, "DINO.WARMUP_TEACHER_TEMP_EPOCHS", "longer than SOLVER.TOTAL_EPOCHS=200"},
		{"optimizer case", map[string]string{"SOLVER.OPTIMIZING_METHOD": "adamw"}, "SOLVER.OPTIMIZING_METHOD", "(spelled AdamW)"},
		{"scheduler typo", map[string]string{"SOLVER.SCHEDULER": "cosine"}, "SOLVER.SCHEDULER", `must be one of cos, multistep, got "cosine"`},
		{"milestones order", map[string]string{"SOLVER.SCHEDULER": "multistep", "SOLVER.MILESTONES": "120,80"}, "SOLVER.MILESTONES[1]", "must be increasing"},
		{"momentum 1", map[string]string{"SOLVER.MOMENTUM": "1"}, "SOLVER.MOMENTUM", "must be in [0, 1)"},
		{"base lr", map[string]string{"SOLVER.BASE_LR": "0"}, "SOLVER.BASE_LR", "must be a finite number > 0"},
		{"batch", map[string]string{"TRAIN.BATCH_SIZE": "0"}, "TRAIN.BATCH_SIZE", "must be > 0"},
		{"mean length", map[string]string{"DATA.MEAN": "0.5"}, "DATA.MEAN", "must be three numbers"},
		{"std zero", map[string]string{"DATA.STD": "0.2,0,0.2"}, "DATA.STD[1]", "must be a finite number > 0"},
		{"format", map[string]string{"DATA.FORMAT": "tfrecord"}, "DATA.FORMAT", "must be one of imagenet, coco, idx, folder"},
		{"pixel limit", map[string]string{"DATA.PIXEL_LIMIT": "0"}, "DATA.PIXEL_LIMIT", "must be > 0"},
		{"stage", map[string]string{"STAGE": "pretrain"}, "STAGE", "must be one of TRAIN, VAL, TEST, FT"},
		{"seed", map[string]string{"SEED": "4294967296"}, "SEED", "must be in [0, 4294967295]"},
		{"node rank", map[string]string{"NODE_RANK": "1"}, "NODE_RANK", "must be in [0, N_NODES=1)"},
		{"dino temperature", map[string]string{"DINO.STUDENT_TEMP": "0"}, "DINO.STUDENT_TEMP", "must be a finite number > 0"},
		{"swav sinkhorn", map[string]string{"SWAV.SINKHORN_ITERATIONS": "0"}, "SWAV.SINKHORN_ITERATIONS", "must be > 0"},
		{"moco momentum", map[string]string{"MOCO.MOMENTUM": "1.5"}, "MOCO.MOMENTUM", "must be in [0, 1]"},
		{"drop path", map[string]string{"VIT.DROP_PATH_RATE": "1"}, "VIT.DROP_PATH_RATE", "must be in [0, 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Preset("dino_cnn_sslight")
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.edit {
				if err := c.Set(k, v); err != nil {
					t.Fatalf("Set(%s, %s): %v", k, v, err)
				}
			}
			err = c.Validate()
			keys := validationKeys(t, err)
			if len(keys) != 1 || keys[0] != tc.key {
				t.Fatalf("problems at %v, want exactly one at %s; error:\n%v", keys, tc.key, err)
			}
			if !strings.Contains(err.Error(), tc.msgHas) || !strings.HasPrefix(err.Error(), tc.key+": ") {
				t.Errorf("message %q, want %q prefix and %q inside", err.Error(), tc.key+": ", tc.msgHas)
			}
		})
	}
}

// TestValidateAccepts: edits that look odd but are legitimate.
func TestValidateAccepts(t *testing.T) {
	for _, edit := range []map[string]string{
		{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_NUMBER": "10", "MULTI_VIEWS_TRANSFORMS.NMB_CROPS": "2,10"},
		{"MULTI_VIEWS_TRANSFORMS.LOCAL_CROPS_NUMBER": "0", "MULTI_VIEWS_TRANSFORMS.NMB_CROPS": "2,0"},
		{"MULTI_VIEWS_TRANSFORMS.GLOBAL_CROPS_SCALE": "1,1"},
		{"MULTI_VIEWS_TRANSFORMS.LAMBDAS": "1,0"},
		{"MULTI_VIEWS_TRANSFORMS.LAMBDAS": "0.3333,0.6667"},
		{"SOLVER.WARMUP_EPOCHS": "0", "SOLVER.WARMUP_ITERS": "500"},
		{"SOLVER.SCHEDULER": "multistep", "SOLVER.MILESTONES": "60,80"},
		{"STAGE": "ft"},
		{"SEED": "4294967295"},
		{"MODEL.BACKBONE_ARCH": "resnet50", "MODEL.WIDTH": "2"},
		{"SSL_METHOD": "SWAV"},
	} {
		c, err := Preset("dino_cnn_sslight")
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range edit {
			if err := c.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%v: %v", edit, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Train.BatchSize = 0
	c.SSLMethod = "Dino"
	c.MultiViewsTransforms.NmbCrops = []int{2, 10}
	keys := validationKeys(t, c.Validate())
	want := []string{"TRAIN.BATCH_SIZE", "MULTI_VIEWS_TRANSFORMS.NMB_CROPS", "SSL_METHOD"}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("problems at %v, want %v", keys, want)
	}
	var ve *ValidationError
	if !errors.As(c.Validate(), &ve) || ve.Key != "TRAIN.BATCH_SIZE" {
		t.Errorf("errors.As should find the first problem, got %v", ve)
	}
}
