package configs

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// lambdaSumTolerance is how far LAMBDAS may sum from 1: the reference
// writes 1/7, 6/7 as 0.142857, 0.857143 and 1/11, 10/11 with six digits.
const lambdaSumTolerance = 1e-3

// maxSeed bounds SEED like numpy.random.seed does, so a config that runs
// here also runs in the reference.
const maxSeed = 1<<32 - 1

// Validate checks values that parse but cannot be right. It reports every
// problem, each a [*ValidationError], joined with errors.Join. Checked:
//
//   - crop scales: two numbers in (0, 1], min <= max;
//   - sizes, counts, dimensions, batch sizes, epochs > 0 (counts of local
//     crops, queue lengths and warm-up lengths >= 0);
//   - NMB_CROPS is [2, LOCAL_CROPS_NUMBER]: the reference keeps both keys
//     and always makes two global views;
//   - LAMBDAS: two numbers in [0, 1] summing to 1 (±0.001);
//   - probabilities in [0, 1] with the lengths the augmentation reads;
//     colour-jitter intensities >= 0 with hue <= 0.5;
//   - SSL_METHOD is DINO, SWAV or MOCO, in capitals (the reference looks up
//     "<SSL_METHOD>Trainer", which is case-sensitive);
//   - MODEL.BACKBONE_ARCH is one of [BackboneArchs]; WIDTH and
//     SMALL_IMAGE_STEM only for CNNs;
//   - each epoch/iteration pair of the extensions (SOLVER.WARMUP_EPOCHS /
//     WARMUP_ITERS, DINO.WARMUP_TEACHER_TEMP_EPOCHS / _ITERS,
//     SOLVER.FREEZE_LAST_LAYER / _ITERS) has at most one non-zero member;
//   - the enumerations (optimiser, scheduler, stage, data format).
func (c *Config) Validate() error {
	v := &validator{}
	c.validateData(v)
	c.validateViews(v)
	c.validateModel(v)
	c.validateMethods(v)
	c.validateSolver(v)
	c.validateRun(v)
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, &ValidationError{Key: key, Problem: fmt.Sprintf(format, args...)})
}

func (v *validator) positive(key string, x int) {
	if x <= 0 {
		v.fail(key, "must be > 0, got %d", x)
	}
}

func (v *validator) nonNegative(key string, x int) {
	if x < 0 {
		v.fail(key, "must be >= 0, got %d", x)
	}
}

func (v *validator) positiveFloat(key string, x float64) {
	if !(x > 0) || math.IsInf(x, 0) {
		v.fail(key, "must be a finite number > 0, got %v", x)
	}
}

func (v *validator) nonNegativeFloat(key string, x float64) {
	if !(x >= 0) || math.IsInf(x, 0) {
		v.fail(key, "must be a finite number >= 0, got %v", x)
	}
}

func (v *validator) unit(key string, x float64) {
	if !(x >= 0 && x <= 1) {
		v.fail(key, "must be in [0, 1], got %v", x)
	}
}

func (v *validator) oneOf(key, got string, allowed []string) {
	if slices.Contains(allowed, got) {
		return
	}
	hint := ""
	for _, a := range allowed {
		if strings.EqualFold(a, got) {
			hint = fmt.Sprintf(" (spelled %s)", a)
		}
	}
	v.fail(key, "must be one of %s, got %q%s", strings.Join(allowed, ", "), got, hint)
}

// probs checks a probability list and its length.
func (v *validator) probs(key string, p []float64, n int) {
	if len(p) != n {
		v.fail(key, "must hold %d probabilities, got %d values", n, len(p))
	}
	for i, x := range p {
		v.unit(fmt.Sprintf("%s[%d]", key, i), x)
	}
}

// scale checks a RandomResizedCrop area range.
func (v *validator) scale(key string, s []float64) {
	if len(s) != 2 {
		v.fail(key, "must be two numbers (min, max), got %d values", len(s))
		return
	}
	for i, x := range s {
		if !(x > 0 && x <= 1) {
			v.fail(fmt.Sprintf("%s[%d]", key, i), "must be in (0, 1] (a fraction of the image area), got %v", x)
		}
	}
	if s[0] > s[1] {
		v.fail(key, "min %v is larger than max %v", s[0], s[1])
	}
}

// jitter checks (brightness, contrast, saturation, hue) as torchvision does.
func (v *validator) jitter(key string, j []float64) {
	if len(j) != 4 {
		v.fail(key, "must be four numbers (brightness, contrast, saturation, hue), got %d values", len(j))
		return
	}
	for i, x := range j[:3] {
		v.nonNegativeFloat(fmt.Sprintf("%s[%d]", key, i), x)
	}
	if !(j[3] >= 0 && j[3] <= 0.5) {
		v.fail(key+"[3]", "hue must be in [0, 0.5], got %v", j[3])
	}
}

// exclusive checks an epochs/iterations pair of which at most one is set.
func (v *validator) exclusive(epochsKey string, epochs int, itersKey string, iters int) {
	v.nonNegative(epochsKey, epochs)
	v.nonNegative(itersKey, iters)
	if epochs != 0 && iters != 0 {
		v.fail(itersKey, "cannot be combined with %s=%d: set one of them, and the other to 0", epochsKey, epochs)
	}
}

func (c *Config) validateData(v *validator) {
	v.positive("TRAIN.BATCH_SIZE", c.Train.BatchSize)
	v.positive("TRAIN.NUM_CLASSES", c.Train.NumClasses)
	v.positive("TRAIN.CHECKPOINT_PERIOD", c.Train.CheckpointPeriod)
	v.positive("VAL.BATCH_SIZE", c.Val.BatchSize)
	if c.Train.Device != "" {
		v.oneOf("TRAIN.DEVICE", c.Train.Device, []string{"cpu", "cuda", "auto"})
	}
	d := &c.Data
	if len(d.Mean) != 3 {
		v.fail("DATA.MEAN", "must be three numbers (R, G, B), got %d values", len(d.Mean))
	}
	for i, x := range d.Mean {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			v.fail(fmt.Sprintf("DATA.MEAN[%d]", i), "must be a finite number, got %v", x)
		}
	}
	if len(d.Std) != 3 {
		v.fail("DATA.STD", "must be three numbers (R, G, B), got %d values", len(d.Std))
	}
	for i, x := range d.Std {
		v.positiveFloat(fmt.Sprintf("DATA.STD[%d]", i), x)
	}
	if d.PixelLimit <= 0 {
		v.fail("DATA.PIXEL_LIMIT", "must be > 0, got %d", d.PixelLimit)
	}
	v.positive("DATA.SHARD_SIZE_MB", d.ShardSizeMB)
	v.oneOf("DATA.FORMAT", d.Format, []string{FormatImageNet, FormatCOCO, FormatIDX, FormatFolder})
}

func (c *Config) validateViews(v *validator) {
	t := &c.TwoViewsTransforms
	const tv = "TWO_VIEWS_TRANSFORMS."
	v.scale(tv+"GLOBAL_CROPS_SCALE", t.GlobalCropsScale)
	v.positive(tv+"GLOBAL_CROP_SIZE", t.GlobalCropSize)
	v.probs(tv+"RANDOM_HORIZONTAL_FLIP_PROB", t.RandomHorizontalFlipProb, 2)
	v.probs(tv+"GAUSSIAN_BLUR_PROB", t.GaussianBlurProb, 2)
	v.probs(tv+"COLOR_JITTER_PROB", t.ColorJitterProb, 2)
	v.jitter(tv+"COLOR_JITTER_INTENSITY", t.ColorJitterIntensity)
	v.probs(tv+"GREYSCALE_PROB", t.GreyscaleProb, 2)
	v.probs(tv+"CROP_PROB", t.CropProb, 2)
	v.probs(tv+"SOLARIZATION_PROB", t.SolarizationProb, 2)

	m := &c.MultiViewsTransforms
	const mv = "MULTI_VIEWS_TRANSFORMS."
	v.scale(mv+"GLOBAL_CROPS_SCALE", m.GlobalCropsScale)
	v.scale(mv+"LOCAL_CROPS_SCALE", m.LocalCropsScale)
	v.nonNegative(mv+"LOCAL_CROPS_NUMBER", m.LocalCropsNumber)
	v.positive(mv+"LOCAL_CROP_SIZE", m.LocalCropSize)
	v.positive(mv+"GLOBAL_CROP_SIZE", m.GlobalCropSize)
	v.probs(mv+"RANDOM_HORIZONTAL_FLIP_PROB", m.RandomHorizontalFlipProb, 2)
	v.probs(mv+"GAUSSIAN_BLUR_PROB", m.GaussianBlurProb, 3)
	v.probs(mv+"COLOR_JITTER_PROB", m.ColorJitterProb, 2)
	v.jitter(mv+"COLOR_JITTER_INTENSITY", m.ColorJitterIntensity)
	v.probs(mv+"GREYSCALE_PROB", m.GreyscaleProb, 2)
	v.probs(mv+"CROP_PROB", m.CropProb, 2)
	v.probs(mv+"SOLARIZATION_PROB", m.SolarizationProb, 2)

	views := 0
	switch {
	case len(m.NmbCrops) != 2:
		v.fail(mv+"NMB_CROPS", "must be two integers (global views, local views), got %d values", len(m.NmbCrops))
	default:
		if m.NmbCrops[0] != 2 {
			v.fail(mv+"NMB_CROPS", "NMB_CROPS[0] (global views) must be 2, got %d: the augmentation always makes two global views", m.NmbCrops[0])
		}
		if m.NmbCrops[1] != m.LocalCropsNumber {
			v.fail(mv+"NMB_CROPS", "NMB_CROPS[1]=%d does not match LOCAL_CROPS_NUMBER=%d: the augmentation makes LOCAL_CROPS_NUMBER local views and the losses expect NMB_CROPS[1]; set both to the same number",
				m.NmbCrops[1], m.LocalCropsNumber)
		}
		views = m.NmbCrops[0] + m.NmbCrops[1]
	}
	if len(m.CropsForAssign) == 0 {
		v.fail(mv+"CROPS_FOR_ASSIGN", "must list at least one view")
	}
	for i, x := range m.CropsForAssign {
		if x < 0 || (views > 0 && x >= views) {
			v.fail(fmt.Sprintf("%sCROPS_FOR_ASSIGN[%d]", mv, i), "must be a view index in [0, %d), got %d", views, x)
		}
	}
	if len(m.Lambdas) != 2 {
		v.fail(mv+"LAMBDAS", "must be two numbers (global weight α, local weight 1−α), got %d values", len(m.Lambdas))
	} else {
		v.unit(mv+"LAMBDAS[0]", m.Lambdas[0])
		v.unit(mv+"LAMBDAS[1]", m.Lambdas[1])
		if sum := m.Lambdas[0] + m.Lambdas[1]; !(math.Abs(sum-1) <= lambdaSumTolerance) {
			v.fail(mv+"LAMBDAS", "must sum to 1 (±%g), got %v + %v = %v", lambdaSumTolerance, m.Lambdas[0], m.Lambdas[1], sum)
		}
	}
}

func (c *Config) validateModel(v *validator) {
	m := &c.Model
	v.oneOf("MODEL.BACKBONE_ARCH", m.BackboneArch, backboneArchs)
	v.unit("MODEL.MODEL_MOMENTUM", m.ModelMomentum)
	v.unit("MODEL.MODEL_MOMENTUM_END", m.ModelMomentumEnd)
	v.positiveFloat("MODEL.WIDTH", m.Width)
	if strings.HasPrefix(m.BackboneArch, "vit_") {
		if m.Width != 1 {
			v.fail("MODEL.WIDTH", "applies to CNN backbones only; %s needs 1.0, got %v", m.BackboneArch, m.Width)
		}
		if m.SmallImageStem {
			v.fail("MODEL.SMALL_IMAGE_STEM", "applies to CNN backbones only, not %s (use VIT.PATCH_SIZE)", m.BackboneArch)
		}
	}
	v.positive("VIT.PATCH_SIZE", c.ViT.PatchSize)
	if !(c.ViT.DropPathRate >= 0 && c.ViT.DropPathRate < 1) {
		v.fail("VIT.DROP_PATH_RATE", "must be in [0, 1), got %v", c.ViT.DropPathRate)
	}
}

func (c *Config) validateMethods(v *validator) {
	v.oneOf("SSL_METHOD", c.SSLMethod, []string{"DINO", "SWAV", "MOCO"})

	d := &c.DINO
	v.positiveFloat("DINO.STUDENT_TEMP", d.StudentTemp)
	v.positiveFloat("DINO.WARMUP_TEACHER_TEMP", d.WarmupTeacherTemp)
	v.positiveFloat("DINO.TEACHER_TEMP", d.TeacherTemp)
	v.unit("DINO.CENTER_MOMENTUM", d.CenterMomentum)
	v.exclusive("DINO.WARMUP_TEACHER_TEMP_EPOCHS", d.WarmupTeacherTempEpochs, "DINO.WARMUP_TEACHER_TEMP_ITERS", d.WarmupTeacherTempIters)
	if d.WarmupTeacherTempEpochs > c.Solver.TotalEpochs {
		v.fail("DINO.WARMUP_TEACHER_TEMP_EPOCHS", "%d is longer than SOLVER.TOTAL_EPOCHS=%d", d.WarmupTeacherTempEpochs, c.Solver.TotalEpochs)
	}
	h := &c.DINOHead
	v.positive("DINOHead.OUTPUT_DIM", h.OutputDim)
	v.positive("DINOHead.HIDDEN_SIZE", h.HiddenSize)
	v.positive("DINOHead.BOTTLENECK_DIM", h.BottleneckDim)
	v.positive("DINOHead.NUM_LAYERS", h.NumLayers)

	s := &c.SwAV
	v.nonNegative("SWAV.FREEZE_PROTOTYPES_EPOCHS", s.FreezePrototypesEpochs)
	v.nonNegative("SWAV.EPOCH_QUEUE_STARTS", s.EpochQueueStarts)
	v.positiveFloat("SWAV.TEMPERATURE", s.Temperature)
	v.positiveFloat("SWAV.EPSILON", s.Epsilon)
	v.positive("SWAV.SINKHORN_ITERATIONS", s.SinkhornIterations)
	v.positive("SWAV.NMB_PROTOTYPES", s.NmbPrototypes)
	v.nonNegative("SWAV.QUEUE_LENGTH", s.QueueLength)
	v.positive("SWAV.OUTPUT_DIM", s.OutputDim)
	v.positive("SWAV.HIDDEN_SIZE", s.HiddenSize)
	v.positive("SWAV.NUM_LAYERS", s.NumLayers)

	m := &c.MoCo
	v.positiveFloat("MOCO.TEMPERATURE", m.Temperature)
	v.positive("MOCO.QUEUE_LENGTH", m.QueueLength)
	v.unit("MOCO.MOMENTUM", m.Momentum)
	v.positive("MOCO.OUTPUT_DIM", m.OutputDim)
	v.positive("MOCO.HIDDEN_SIZE", m.HiddenSize)
	v.positive("MOCO.NUM_LAYERS", m.NumLayers)
}

func (c *Config) validateSolver(v *validator) {
	s := &c.Solver
	v.oneOf("SOLVER.OPTIMIZING_METHOD", s.OptimizingMethod, optimizers)
	v.oneOf("SOLVER.SCHEDULER", s.Scheduler, schedulers)
	v.nonNegativeFloat("SOLVER.WD_FACTOR_FOR_BIAS", s.WDFactorForBias)
	v.nonNegativeFloat("SOLVER.WD_FACTOR_FOR_DW", s.WDFactorForDW)
	v.nonNegativeFloat("SOLVER.WEIGHT_DECAY", s.WeightDecay)
	v.nonNegativeFloat("SOLVER.WEIGHT_DECAY_END", s.WeightDecayEnd)
	v.positive("SOLVER.TOTAL_EPOCHS", s.TotalEpochs)
	v.exclusive("SOLVER.WARMUP_EPOCHS", s.WarmupEpochs, "SOLVER.WARMUP_ITERS", s.WarmupIters)
	if s.WarmupEpochs > s.TotalEpochs {
		v.fail("SOLVER.WARMUP_EPOCHS", "%d is longer than SOLVER.TOTAL_EPOCHS=%d", s.WarmupEpochs, s.TotalEpochs)
	}
	v.nonNegativeFloat("SOLVER.START_WARMUP", s.StartWarmup)
	v.positiveFloat("SOLVER.BASE_LR", s.BaseLR)
	v.nonNegativeFloat("SOLVER.MIN_LR", s.MinLR)
	if !(s.Momentum >= 0 && s.Momentum < 1) {
		v.fail("SOLVER.MOMENTUM", "must be in [0, 1), got %v", s.Momentum)
	}
	v.nonNegativeFloat("SOLVER.CLIP_GRAD", s.ClipGrad)
	v.exclusive("SOLVER.FREEZE_LAST_LAYER", s.FreezeLastLayer, "SOLVER.FREEZE_LAST_LAYER_ITERS", s.FreezeLastLayerIters)
	if s.Scheduler == "multistep" {
		if len(s.Milestones) == 0 {
			v.fail("SOLVER.MILESTONES", "must list at least one epoch for the multistep scheduler")
		}
		prev := s.WarmupEpochs
		for i, m := range s.Milestones {
			if m < prev || m > s.TotalEpochs {
				v.fail(fmt.Sprintf("SOLVER.MILESTONES[%d]", i), "must be increasing epochs in [WARMUP_EPOCHS=%d, TOTAL_EPOCHS=%d], got %d", s.WarmupEpochs, s.TotalEpochs, m)
			}
			prev = m
		}
	}
}

func (c *Config) validateRun(v *validator) {
	v.positive("LOG_STEP", c.LogStep)
	stages := []string{"TRAIN", "VAL", "TEST", "FT"}
	if !slices.Contains(stages, strings.ToUpper(c.Stage)) {
		v.fail("STAGE", "must be one of %s (any case), got %q", strings.Join(stages, ", "), c.Stage)
	}
	if c.Seed < 0 || int64(c.Seed) > maxSeed {
		v.fail("SEED", "must be in [0, %d], got %d", maxSeed, c.Seed)
	}
	v.positive("N_NODES", c.NNodes)
	v.positive("WORLD_SIZE", c.WorldSize)
	if c.NodeRank < 0 || c.NodeRank >= c.NNodes {
		v.fail("NODE_RANK", "must be in [0, N_NODES=%d), got %d", c.NNodes, c.NodeRank)
	}
	v.nonNegative("WORKERS", c.Workers)
	v.positive("NUM_GPUS_PER_NODE", c.NumGPUsPerNode)
}
