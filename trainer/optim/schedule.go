package optim

import (
	"fmt"
	"math"
)

// maxScheduleLen bounds the length of a schedule (2^30 iterations, 8 GiB of
// float64) so that a mistaken epochs × iterations product is an error rather
// than an out-of-memory crash. Real runs are around 2·10^6 iterations.
const maxScheduleLen = 1 << 30

// ScaledLR applies the linear scaling rule of the reference trainer: the
// peak learning rate is SOLVER.BASE_LR · global batch / 256. MIN_LR is not
// scaled.
func ScaledLR(baseLR float64, globalBatch int) float64 {
	return baseLR * float64(globalBatch) / 256
}

// CosineSchedule returns one value per iteration (epochs·itersPerEpoch
// values) exactly as the reference's cosine_scheduler: a linear warm-up
// linspace(startWarmup, base, warmupEpochs·itersPerEpoch) that includes both
// ends (so base appears twice at the junction), then
// final + 0.5·(base−final)·(1 + cos(π·i/n)) for i = 0..n−1 over the
// remaining n iterations (the last value is therefore not exactly final).
//
// The weight-decay and teacher-momentum schedules are this function without
// warm-up (warmupEpochs 0).
func CosineSchedule(base, final float64, epochs, itersPerEpoch, warmupEpochs int, startWarmup float64) ([]float64, error) {
	total, err := scheduleIters(epochs, itersPerEpoch)
	if err != nil {
		return nil, err
	}
	if warmupEpochs < 0 || warmupEpochs > epochs {
		return nil, fmt.Errorf("cosine schedule: warm-up of %d epochs outside [0, %d epochs]: %w", warmupEpochs, epochs, ErrInvalidSchedule)
	}
	return CosineScheduleIters(base, final, total, warmupEpochs*itersPerEpoch, startWarmup)
}

// CosineScheduleIters is [CosineSchedule] with the length and the warm-up
// counted in iterations (sslight's SOLVER.WARMUP_ITERS extension). With
// totalIters = epochs·itersPerEpoch and warmupIters =
// warmupEpochs·itersPerEpoch it returns exactly what CosineSchedule returns.
func CosineScheduleIters(base, final float64, totalIters, warmupIters int, startWarmup float64) ([]float64, error) {
	if err := finite("cosine schedule", base, final, startWarmup); err != nil {
		return nil, err
	}
	if totalIters <= 0 || totalIters > maxScheduleLen {
		return nil, fmt.Errorf("cosine schedule: %d iterations outside [1, %d]: %w", totalIters, maxScheduleLen, ErrInvalidSchedule)
	}
	if warmupIters < 0 || warmupIters > totalIters {
		return nil, fmt.Errorf("cosine schedule: warm-up of %d iterations outside [0, %d]: %w", warmupIters, totalIters, ErrInvalidSchedule)
	}
	out := make([]float64, totalIters)
	linspace(out[:warmupIters], startWarmup, base)
	rest := out[warmupIters:]
	n := float64(len(rest))
	// The reference evaluates final + (0.5·(base−final))·(1 + cos((π·i)/n))
	// left to right; the explicit conversions keep that rounding order (and
	// stop a fused multiply-add on platforms that would use one).
	half := 0.5 * (base - final)
	for i := range rest {
		c := 1 + math.Cos(float64(math.Pi*float64(i))/n)
		rest[i] = final + float64(half*c)
	}
	return out, nil
}

// MultiStepSchedule returns one value per iteration as the reference's
// multistep_scheduler: base until the first milestone epoch, multiplied by
// gamma at each milestone (milestones in epochs, non-decreasing, within
// [0, epochs]). The reference builds a warm-up segment but never prepends it,
// so any warm-up fails its length assertion; warmupEpochs other than 0 is an
// error here for the same reason.
func MultiStepSchedule(base float64, milestones []int, gamma float64, epochs, itersPerEpoch, warmupEpochs int) ([]float64, error) {
	if warmupEpochs != 0 {
		return nil, fmt.Errorf("multistep schedule: warm-up of %d epochs is not supported (the reference asserts warmup_epochs = 0 for it): %w", warmupEpochs, ErrInvalidSchedule)
	}
	if err := finite("multistep schedule", base, gamma); err != nil {
		return nil, err
	}
	total, err := scheduleIters(epochs, itersPerEpoch)
	if err != nil {
		return nil, err
	}
	if len(milestones) == 0 {
		return nil, fmt.Errorf("multistep schedule: no milestones: %w", ErrInvalidSchedule)
	}
	prev := 0
	for i, m := range milestones {
		if m < prev || m > epochs {
			return nil, fmt.Errorf("multistep schedule: milestone[%d] = %d must be non-decreasing within [0, %d epochs]: %w", i, m, epochs, ErrInvalidSchedule)
		}
		prev = m
	}
	out := make([]float64, 0, total)
	cur := base
	start := 0
	for _, m := range milestones {
		for range (m - start) * itersPerEpoch {
			out = append(out, cur)
		}
		cur *= gamma
		start = m
	}
	for range (epochs - start) * itersPerEpoch {
		out = append(out, cur)
	}
	return out, nil
}

// TeacherTempSchedule returns DINO's teacher temperature per epoch as the
// reference's DINOLoss builds it:
// concat(linspace(warmupTemp, temp, warmupEpochs), temp repeated for the
// remaining epochs). linspace includes its end, so temp is already reached
// at epoch warmupEpochs−1. The loss indexes it by epoch.
func TeacherTempSchedule(warmupTemp, temp float64, warmupEpochs, epochs int) ([]float64, error) {
	return warmupThenConstant("teacher temperature schedule", "epochs", warmupTemp, temp, warmupEpochs, epochs)
}

// TeacherTempScheduleIters is sslight's DINO.WARMUP_TEACHER_TEMP_ITERS
// extension: the same ramp counted in iterations, one value per iteration,
// indexed by the global step instead of the epoch, so the temperature
// changes every iteration. It is TeacherTempSchedule with iterations for
// epochs; with one iteration per epoch the two are identical, with more the
// epoch-based schedule is a staircase and this one a smooth ramp (by design:
// short runs have too few epochs for a staircase).
func TeacherTempScheduleIters(warmupTemp, temp float64, warmupIters, totalIters int) ([]float64, error) {
	return warmupThenConstant("teacher temperature schedule", "iterations", warmupTemp, temp, warmupIters, totalIters)
}

func warmupThenConstant(what, unit string, warmupValue, value float64, warmup, total int) ([]float64, error) {
	if err := finite(what, warmupValue, value); err != nil {
		return nil, err
	}
	if total <= 0 || total > maxScheduleLen {
		return nil, fmt.Errorf("%s: %d %s outside [1, %d]: %w", what, total, unit, maxScheduleLen, ErrInvalidSchedule)
	}
	if warmup < 0 || warmup > total {
		return nil, fmt.Errorf("%s: warm-up of %d %s outside [0, %d]: %w", what, warmup, unit, total, ErrInvalidSchedule)
	}
	out := make([]float64, total)
	linspace(out[:warmup], warmupValue, value)
	for i := warmup; i < total; i++ {
		out[i] = value
	}
	return out, nil
}

// linspace fills dst with numpy.linspace(start, stop, len(dst)) bit for bit:
// start + i·step with step = (stop−start)/(len−1), the last element set to
// stop exactly, and a single element equal to start.
func linspace(dst []float64, start, stop float64) {
	num := len(dst)
	if num == 0 {
		return
	}
	if num == 1 {
		dst[0] = start
		return
	}
	div := float64(num - 1)
	delta := stop - start
	step := delta / div
	for i := range dst {
		if step == 0 {
			// numpy's path when the step underflows: scale by delta after
			// dividing, so tiny ranges are not lost.
			dst[i] = float64(float64(float64(i)/div)*delta) + start
		} else {
			dst[i] = float64(float64(i)*step) + start
		}
	}
	dst[num-1] = stop
}

// scheduleIters returns epochs·itersPerEpoch after checking both are
// positive and the product is a sensible length.
func scheduleIters(epochs, itersPerEpoch int) (int, error) {
	if epochs <= 0 || itersPerEpoch <= 0 {
		return 0, fmt.Errorf("schedule over %d epochs of %d iterations: both must be positive: %w", epochs, itersPerEpoch, ErrInvalidSchedule)
	}
	if epochs > maxScheduleLen/itersPerEpoch {
		return 0, fmt.Errorf("schedule over %d epochs of %d iterations: more than %d iterations: %w", epochs, itersPerEpoch, maxScheduleLen, ErrInvalidSchedule)
	}
	return epochs * itersPerEpoch, nil
}

func finite(what string, vs ...float64) error {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: value %v is not finite: %w", what, v, ErrInvalidSchedule)
		}
	}
	return nil
}
