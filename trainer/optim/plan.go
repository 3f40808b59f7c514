package optim

import "fmt"

// Scheduler names accepted in [ScheduleSpec].Scheduler (SOLVER.SCHEDULER).
const (
	SchedulerCosine    = "cos"
	SchedulerMultiStep = "multistep"
)

// multiStepGamma is the factor the reference trainer passes to
// multistep_scheduler at every milestone.
const multiStepGamma = 0.1

// ScheduleSpec carries the configuration the reference trainer reads to
// build its per-iteration schedules (SOLVER.*, MODEL.MODEL_MOMENTUM*). It
// is a plain struct because trainer/ does not import configs; the trainer
// copies the fields over.
type ScheduleSpec struct {
	Scheduler     string // SOLVER.SCHEDULER: "cos" or "multistep"
	Epochs        int    // SOLVER.TOTAL_EPOCHS
	ItersPerEpoch int    // batches per epoch (len(loader))
	GlobalBatch   int    // TRAIN.BATCH_SIZE · world size, for the linear scaling rule

	BaseLR       float64 // SOLVER.BASE_LR, for a global batch of 256
	MinLR        float64 // SOLVER.MIN_LR (not scaled)
	StartWarmup  float64 // SOLVER.START_WARMUP
	WarmupEpochs int     // SOLVER.WARMUP_EPOCHS
	WarmupIters  int     // SOLVER.WARMUP_ITERS (sslight extension; exclusive with WarmupEpochs)
	Milestones   []int   // SOLVER.MILESTONES, epochs (multistep only)

	WeightDecay    float64 // SOLVER.WEIGHT_DECAY
	WeightDecayEnd float64 // SOLVER.WEIGHT_DECAY_END

	MomentumStart float64 // MODEL.MODEL_MOMENTUM: teacher EMA momentum at the start
	MomentumEnd   float64 // MODEL.MODEL_MOMENTUM_END
}

// Schedules are the per-iteration values the trainer reads at every step,
// each Epochs·ItersPerEpoch long.
type Schedules struct {
	LR              []float64 // learning rate, all parameter groups
	WD              []float64 // weight decay of group 0 (other groups scale it by their WDFactor)
	TeacherMomentum []float64 // EMA momentum m of the teacher update
}

// NewSchedules builds the three schedules exactly as the reference
// trainer's constructor: the learning rate from BASE_LR·global_batch/256 to
// MIN_LR by cosine with linear warm-up (or multistep with ×0.1 at each
// milestone and no warm-up), the weight decay and teacher momentum by cosine
// without warm-up.
func NewSchedules(spec ScheduleSpec) (Schedules, error) {
	total, err := scheduleIters(spec.Epochs, spec.ItersPerEpoch)
	if err != nil {
		return Schedules{}, err
	}
	if spec.GlobalBatch <= 0 {
		return Schedules{}, fmt.Errorf("schedules: global batch %d must be positive: %w", spec.GlobalBatch, ErrInvalidSchedule)
	}
	if spec.WarmupEpochs != 0 && spec.WarmupIters != 0 {
		return Schedules{}, fmt.Errorf("schedules: WARMUP_EPOCHS=%d and WARMUP_ITERS=%d are exclusive: %w", spec.WarmupEpochs, spec.WarmupIters, ErrInvalidSchedule)
	}
	base := ScaledLR(spec.BaseLR, spec.GlobalBatch)
	var s Schedules
	switch spec.Scheduler {
	case SchedulerCosine:
		warmup := spec.WarmupIters
		if spec.WarmupEpochs != 0 {
			if spec.WarmupEpochs < 0 || spec.WarmupEpochs > spec.Epochs {
				return Schedules{}, fmt.Errorf("schedules: warm-up of %d epochs outside [0, %d]: %w", spec.WarmupEpochs, spec.Epochs, ErrInvalidSchedule)
			}
			warmup = spec.WarmupEpochs * spec.ItersPerEpoch
		}
		s.LR, err = CosineScheduleIters(base, spec.MinLR, total, warmup, spec.StartWarmup)
	case SchedulerMultiStep:
		if spec.WarmupIters != 0 {
			return Schedules{}, fmt.Errorf("schedules: multistep with WARMUP_ITERS=%d: the reference supports no warm-up for it: %w", spec.WarmupIters, ErrInvalidSchedule)
		}
		s.LR, err = MultiStepSchedule(base, spec.Milestones, multiStepGamma, spec.Epochs, spec.ItersPerEpoch, spec.WarmupEpochs)
	default:
		return Schedules{}, fmt.Errorf("schedules: scheduler %q is not %q or %q: %w", spec.Scheduler, SchedulerCosine, SchedulerMultiStep, ErrInvalidSchedule)
	}
	if err != nil {
		return Schedules{}, fmt.Errorf("learning rate: %w", err)
	}
	if s.WD, err = CosineScheduleIters(spec.WeightDecay, spec.WeightDecayEnd, total, 0, 0); err != nil {
		return Schedules{}, fmt.Errorf("weight decay: %w", err)
	}
	if s.TeacherMomentum, err = CosineScheduleIters(spec.MomentumStart, spec.MomentumEnd, total, 0, 0); err != nil {
		return Schedules{}, fmt.Errorf("teacher momentum: %w", err)
	}
	return s, nil
}
