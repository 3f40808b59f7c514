package trainer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/procstat"
	"github.com/sslight-go/sslight/trainer/ssl"
)

// StepMeasurement is what MeasureStep timed: whole training steps of one
// method on random views.
type StepMeasurement struct {
	Method string  `json:"method"`
	Arch   string  `json:"arch"`
	Width  float64 `json:"width"`
	// Views is the view layout, e.g. "2x28+6x16".
	Views   string `json:"views"`
	Batch   int    `json:"batch"`
	Steps   int    `json:"steps"`
	Threads int    `json:"threads"`
	// ImagesPerSec counts samples (all their views once) per wall second;
	// ImagesPerCPUSec per CPU second of the whole process.
	ImagesPerSec    float64 `json:"images_per_s"`
	ImagesPerCPUSec float64 `json:"images_per_cpu_s"`
	// CPUPerWall is CPU seconds over wall seconds during the timed steps:
	// 2.0 keeps both cores of a 2-core machine busy throughout.
	CPUPerWall     float64 `json:"cpu_per_wall"`
	SecondsPerStep float64 `json:"seconds_per_step"`
	// PeakRSSMiB is the process's resident-memory high-water mark.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// MeasureStep builds cfg's method for batch samples and times steps whole
// training steps (after warmup untimed ones) on random normal views: the
// method's step as pretrain runs it — forward and backward of every
// network, the gradient rules, the config's optimiser step and the EMA
// update — without the data loader. SwAV runs with a full queue, its steady
// state from SWAV.EPOCH_QUEUE_STARTS on.
func MeasureStep(cfg *configs.Config, batch, warmup, steps int) (*StepMeasurement, error) {
	if batch < 1 || steps < 1 || warmup < 0 {
		return nil, fmt.Errorf("measure step: batch %d, steps %d, warm-up %d: want batch ≥ 1, steps ≥ 1, warm-up ≥ 0", batch, steps, warmup)
	}
	m, bt, err := newBenchmarkStep(cfg, batch)
	if err != nil {
		return nil, err
	}
	defer m.close()
	// Step 0 of epoch 0 for the schedules, not the epoch's first iteration
	// (which would restart SwAV's queue).
	it := iteration{inEpoch: 1}
	for range warmup {
		if _, err := m.step(it, bt); err != nil && !errors.Is(err, errLossNotFinite) {
			return nil, err
		}
	}
	runtime.GC()
	procstat.ResetPeakRSS()
	cpu0, t0 := procstat.CPUSeconds(), time.Now()
	for range steps {
		if _, err := m.step(it, bt); err != nil && !errors.Is(err, errLossNotFinite) {
			return nil, err
		}
	}
	wall, cpu := time.Since(t0).Seconds(), procstat.CPUSeconds()-cpu0
	geo := geometryOf(cfg)
	r := &StepMeasurement{Method: cfg.SSLMethod, Arch: cfg.Model.BackboneArch, Width: cfg.Model.Width,
		Views: fmt.Sprintf("%dx%d+%dx%d", geo.G, geo.GH, geo.L, geo.LH), Batch: batch, Steps: steps,
		Threads: runtime.GOMAXPROCS(0), SecondsPerStep: wall / float64(steps),
		ImagesPerSec: float64(steps*batch) / wall, PeakRSSMiB: procstat.PeakRSSMiB()}
	if cpu > 0 {
		r.ImagesPerCPUSec, r.CPUPerWall = float64(steps*batch)/cpu, cpu/wall
	}
	return r, nil
}

// newBenchmarkStep builds cfg's method with constant schedules and a batch
// of random views (and, for SwAV, a full queue).
func newBenchmarkStep(cfg *configs.Config, batch int) (method, *Batch, error) {
	if err := validate(cfg); err != nil {
		return nil, nil, err
	}
	geo := geometryOf(cfg)
	sc := &schedules{lr: []float64{0.01}, wd: []float64{1e-6}, teacherTemp: []float64{0.04}, momentum: []float64{0.996}}
	m, err := newMethod(cfg, geo, batch, sc)
	if err != nil {
		return nil, nil, err
	}
	if sw, ok := m.(*swavModel); ok && sw.qLen > 0 {
		if err := fillSwAVQueue(sw, cfg); err != nil {
			m.close()
			return nil, nil, err
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	bt := newLoader(geo, batch, NewNormalizer([3]float64{0.5, 0.5, 0.5}, [3]float64{0.25, 0.25, 0.25})).newBatch()
	for i := range bt.Global {
		bt.Global[i] = float32(rng.NormFloat64())
	}
	for i := range bt.Local {
		bt.Local[i] = float32(rng.NormFloat64())
	}
	for i := range bt.Labels {
		bt.Labels[i] = i % max(1, cfg.Train.NumClasses)
	}
	return m, bt, nil
}

// fillSwAVQueue starts the queue and fills it with random unit rows, so
// every step scores it and runs Sinkhorn over queue + batch rows.
func fillSwAVQueue(m *swavModel, cfg *configs.Config) error {
	if err := m.startEpoch(cfg.SwAV.EpochQueueStarts); err != nil {
		return err
	}
	st := m.loss.State()
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range st.Queue {
		st.Queue[i] = float32(rng.NormFloat64())
	}
	for r := 0; r < len(st.Queue)/st.EmbeddingDim; r++ {
		row := st.Queue[r*st.EmbeddingDim : (r+1)*st.EmbeddingDim]
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		for j := range row {
			row[j] = float32(float64(row[j]) / math.Sqrt(s))
		}
	}
	return m.loss.LoadState(ssl.SwAVState{Queue: st.Queue, QueueLength: st.QueueLength, EmbeddingDim: st.EmbeddingDim, UseQueue: true})
}
