package optim

import (
	"errors"
	"math"
	"testing"
)

// Hand-derived values: cos(π/4) = √2/2, so 0.5·(1+cos(π/4)) and
// 0.5·(1−cos(π/4)).
var (
	cosQuarterHi = (1 + math.Sqrt2/2) / 2 // 0.8535533905932737
	cosQuarterLo = (1 - math.Sqrt2/2) / 2 // 0.14644660940672624
)

func TestCosineSchedule(t *testing.T) {
	tests := []struct {
		name                  string
		base, final           float64
		epochs, iters, warmup int
		start                 float64
		want                  []float64
	}{
		{"no warm-up, 1 to 0 over 4", 1, 0, 1, 4, 0, 0, []float64{1, cosQuarterHi, 0.5, cosQuarterLo}},
		{"no warm-up, 2 to 1 over 2", 2, 1, 2, 1, 0, 0, []float64{2, 1.5}},
		{"increasing (teacher momentum, wd)", 0, 1, 1, 4, 0, 0, []float64{0, cosQuarterLo, 0.5, cosQuarterHi}},
		{"constant", 0.3, 0.3, 2, 2, 0, 0, []float64{0.3, 0.3, 0.3, 0.3}},
		// Warm-up includes both ends: base appears at the end of the warm-up
		// and again as the first cosine value.
		{"warm-up then cosine", 1, 0, 2, 2, 1, 0, []float64{0, 1, 1, 0.5}},
		{"warm-up from start value", 1, 0, 2, 3, 1, 0.4, []float64{0.4, 0.7, 1, 1, 0.75, 0.25}},
		{"warm-up covers all", 0.1, 0.001, 1, 3, 1, 0, []float64{0, 0.05, 0.1}},
		{"single warm-up iteration is the start value", 1, 0, 2, 1, 1, 0.25, []float64{0.25, 1}},
		{"single iteration is base", 0.7, 0.1, 1, 1, 0, 0, []float64{0.7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CosineSchedule(tc.base, tc.final, tc.epochs, tc.iters, tc.warmup, tc.start)
			if err != nil {
				t.Fatal(err)
			}
			checkNear64(t, "schedule", got, tc.want, 1e-15)
			// The iteration-counted variant with the same counts is the
			// same schedule, bit for bit.
			it, err := CosineScheduleIters(tc.base, tc.final, tc.epochs*tc.iters, tc.warmup*tc.iters, tc.start)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if it[i] != got[i] {
					t.Fatalf("iters variant [%d] = %v, epochs variant %v", i, it[i], got[i])
				}
			}
		})
	}
}

func TestCosineScheduleItersWarmupNotWholeEpochs(t *testing.T) {
	// 3 warm-up iterations, then 3 cosine iterations (cos(π·i/3): 1, ½, −½).
	got, err := CosineScheduleIters(1, 0, 6, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkNear64(t, "schedule", got, []float64{0, 0.5, 1, 1, 0.75, 0.25}, 1e-15)
}

func TestScheduleErrors(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name string
		call func() ([]float64, error)
	}{
		{"cosine zero epochs", func() ([]float64, error) { return CosineSchedule(1, 0, 0, 5, 0, 0) }},
		{"cosine zero iterations per epoch", func() ([]float64, error) { return CosineSchedule(1, 0, 5, 0, 0, 0) }},
		{"cosine negative warm-up", func() ([]float64, error) { return CosineSchedule(1, 0, 5, 2, -1, 0) }},
		{"cosine warm-up longer than training", func() ([]float64, error) { return CosineSchedule(1, 0, 5, 2, 6, 0) }},
		{"cosine too long", func() ([]float64, error) { return CosineSchedule(1, 0, 1<<20, 1<<20, 0, 0) }},
		{"cosine overflowing product", func() ([]float64, error) { return CosineSchedule(1, 0, math.MaxInt, 3, 0, 0) }},
		{"cosine NaN base", func() ([]float64, error) { return CosineSchedule(math.NaN(), 0, 1, 1, 0, 0) }},
		{"cosine infinite start", func() ([]float64, error) { return CosineScheduleIters(1, 0, 4, 1, inf) }},
		{"cosine iters warm-up too long", func() ([]float64, error) { return CosineScheduleIters(1, 0, 4, 5, 0) }},
		{"cosine iters zero length", func() ([]float64, error) { return CosineScheduleIters(1, 0, 0, 0, 0) }},
		{"multistep warm-up", func() ([]float64, error) { return MultiStepSchedule(1, []int{2}, 0.1, 4, 2, 1) }},
		{"multistep no milestones", func() ([]float64, error) { return MultiStepSchedule(1, nil, 0.1, 4, 2, 0) }},
		{"multistep decreasing milestones", func() ([]float64, error) { return MultiStepSchedule(1, []int{3, 2}, 0.1, 4, 2, 0) }},
		{"multistep milestone after the end", func() ([]float64, error) { return MultiStepSchedule(1, []int{5}, 0.1, 4, 2, 0) }},
		{"multistep negative milestone", func() ([]float64, error) { return MultiStepSchedule(1, []int{-1}, 0.1, 4, 2, 0) }},
		{"multistep NaN gamma", func() ([]float64, error) { return MultiStepSchedule(1, []int{1}, math.NaN(), 4, 2, 0) }},
		{"teacher temp warm-up too long", func() ([]float64, error) { return TeacherTempSchedule(0.04, 0.07, 11, 10) }},
		{"teacher temp negative warm-up", func() ([]float64, error) { return TeacherTempSchedule(0.04, 0.07, -1, 10) }},
		{"teacher temp zero epochs", func() ([]float64, error) { return TeacherTempSchedule(0.04, 0.07, 0, 0) }},
		{"teacher temp iters warm-up too long", func() ([]float64, error) { return TeacherTempScheduleIters(0.04, 0.07, 11, 10) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			if !errors.Is(err, ErrInvalidSchedule) {
				t.Fatalf("got %d values and error %v, want ErrInvalidSchedule", len(got), err)
			}
		})
	}
}

func TestMultiStepSchedule(t *testing.T) {
	tests := []struct {
		name          string
		milestones    []int
		epochs, iters int
		want          []float64
	}{
		{"two milestones", []int{1, 2}, 3, 2, []float64{1, 1, 0.5, 0.5, 0.25, 0.25}},
		{"milestone at 0 decays at once", []int{0}, 2, 1, []float64{0.5, 0.5}},
		{"repeated milestone decays twice", []int{1, 1}, 2, 1, []float64{1, 0.25}},
		{"milestone at the end never applies", []int{2}, 2, 2, []float64{1, 1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MultiStepSchedule(1, tc.milestones, 0.5, tc.epochs, tc.iters, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkNear64(t, "schedule", got, tc.want, 0)
		})
	}
}

func TestTeacherTempSchedule(t *testing.T) {
	tests := []struct {
		name           string
		warmup, epochs int
		want           []float64
	}{
		{"no warm-up", 0, 3, []float64{0.07, 0.07, 0.07}},
		// linspace(a, b, 1) is [a]: one warm-up epoch at the warm-up value.
		{"one warm-up epoch", 1, 3, []float64{0.04, 0.07, 0.07}},
		// linspace includes its end: 4 warm-up epochs reach 0.07 at epoch 3.
		{"ramp reaches the end inside the warm-up", 4, 5, []float64{0.04, 0.05, 0.06, 0.07, 0.07}},
		{"warm-up over all epochs", 3, 3, []float64{0.04, 0.055, 0.07}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TeacherTempSchedule(0.04, 0.07, tc.warmup, tc.epochs)
			if err != nil {
				t.Fatal(err)
			}
			checkNear64(t, "schedule", got, tc.want, 1e-16)
			if got[len(got)-1] != 0.07 {
				t.Errorf("last value %v is not exactly the final temperature", got[len(got)-1])
			}
		})
	}
}

func TestTeacherTempScheduleIters(t *testing.T) {
	// Counted in iterations the ramp is per iteration (2 warm-up epochs of
	// 3 iterations = 6 points from 0.04 to 0.07), not a staircase.
	got, err := TeacherTempScheduleIters(0.04, 0.07, 6, 9)
	if err != nil {
		t.Fatal(err)
	}
	checkNear64(t, "schedule", got, []float64{0.04, 0.046, 0.052, 0.058, 0.064, 0.07, 0.07, 0.07, 0.07}, 1e-16)
}

func TestScaledLR(t *testing.T) {
	tests := []struct {
		base  float64
		batch int
		want  float64
	}{
		{0.48, 128, 0.24},
		{0.3, 256, 0.3},
		{5e-4, 512, 1e-3},
		{0.48, 1024, 1.92},
	}
	for _, tc := range tests {
		if got := ScaledLR(tc.base, tc.batch); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("ScaledLR(%v, %d) = %v, want %v", tc.base, tc.batch, got, tc.want)
		}
	}
}

func TestNewSchedules(t *testing.T) {
	spec := ScheduleSpec{
		Scheduler: SchedulerCosine, Epochs: 4, ItersPerEpoch: 2, GlobalBatch: 128,
		BaseLR: 0.48, MinLR: 0.0048, StartWarmup: 0, WarmupEpochs: 1,
		WeightDecay: 1e-6, WeightDecayEnd: 1e-5,
		MomentumStart: 0.996, MomentumEnd: 1,
	}
	s, err := NewSchedules(spec)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string][]float64{"LR": s.LR, "WD": s.WD, "TeacherMomentum": s.TeacherMomentum} {
		if len(v) != 8 {
			t.Fatalf("%s has %d values, want 8", name, len(v))
		}
	}
	// LR: warm-up [0, 0.24] (0.48·128/256), then cosine from 0.24 over 6
	// iterations: 0.0048 + 0.1176·(1+cos(π·i/6)).
	wantLR := []float64{0, 0.24}
	for i := range 6 {
		wantLR = append(wantLR, 0.0048+0.1176*(1+math.Cos(math.Pi*float64(i)/6)))
	}
	checkNear64(t, "LR", s.LR, wantLR, 1e-15)
	// No warm-up for weight decay and momentum: cosine from the first
	// value over all 8 iterations.
	// (final + ½(base−final)·2 rounds: 1e-6 comes out 1.0000000000000006e-06.)
	if math.Abs(s.WD[0]-1e-6) > 1e-20 || math.Abs(s.TeacherMomentum[0]-0.996) > 1e-15 {
		t.Errorf("WD[0] = %v, momentum[0] = %v, want 1e-6 and 0.996", s.WD[0], s.TeacherMomentum[0])
	}
	if want := 1e-5 + 0.5*(1e-6-1e-5)*(1+math.Cos(math.Pi*4/8)); math.Abs(s.WD[4]-want) > 1e-20 {
		t.Errorf("WD[4] = %v, want %v", s.WD[4], want)
	}

	// The iteration-counted warm-up reduces to the epoch one.
	iters := spec
	iters.WarmupEpochs, iters.WarmupIters = 0, 2
	si, err := NewSchedules(iters)
	if err != nil {
		t.Fatal(err)
	}
	checkNear64(t, "LR (WARMUP_ITERS)", si.LR, s.LR, 0)

	multi := spec
	multi.Scheduler, multi.WarmupEpochs, multi.Milestones = SchedulerMultiStep, 0, []int{1, 3}
	sm, err := NewSchedules(multi)
	if err != nil {
		t.Fatal(err)
	}
	checkNear64(t, "LR (multistep)", sm.LR, []float64{0.24, 0.24, 0.024, 0.024, 0.024, 0.024, 0.0024, 0.0024}, 1e-16)

	bad := []struct {
		name   string
		mutate func(*ScheduleSpec)
	}{
		{"both warm-ups", func(s *ScheduleSpec) { s.WarmupIters = 2 }},
		{"unknown scheduler", func(s *ScheduleSpec) { s.Scheduler = "cosine" }},
		{"multistep with warm-up epochs", func(s *ScheduleSpec) { s.Scheduler, s.Milestones = SchedulerMultiStep, []int{2} }},
		{"multistep with warm-up iterations", func(s *ScheduleSpec) {
			s.Scheduler, s.Milestones, s.WarmupEpochs, s.WarmupIters = SchedulerMultiStep, []int{2}, 0, 3
		}},
		{"zero batch", func(s *ScheduleSpec) { s.GlobalBatch = 0 }},
		{"warm-up longer than training", func(s *ScheduleSpec) { s.WarmupEpochs = 5 }},
		{"no iterations", func(s *ScheduleSpec) { s.ItersPerEpoch = 0 }},
		{"NaN momentum", func(s *ScheduleSpec) { s.MomentumEnd = math.NaN() }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			sp := spec
			tc.mutate(&sp)
			if _, err := NewSchedules(sp); !errors.Is(err, ErrInvalidSchedule) {
				t.Fatalf("error %v, want ErrInvalidSchedule", err)
			}
		})
	}
}
