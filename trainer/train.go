package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/optim"
)

// Options configure one pre-training run.
type Options struct {
	// Config is the SSLight-schema config (the one prepare used, or one
	// whose augmentation settings agree with it).
	Config *configs.Config
	// Shards are prepare runs' output roots (each holding manifest.json),
	// trained on together: training epoch e reads prepared epoch e mod P
	// of every root (P being that root's number of prepared epochs).
	Shards []string
	// Exclude lists, per shards root, sample keys to skip there: samples
	// superseded by a newer version in a later root (sslight retrain).
	Exclude map[string]map[string]bool
	// InitFrom is a checkpoint folder of the same SSL method whose
	// networks, optimiser state and loss state (DINO's center, SwAV's and
	// MoCo's queues) start this run, with a fresh schedule (sslight
	// retrain continues pre-training this way).
	InitFrom string
	// Out receives checkpoints/, metrics.jsonl and summary.json.
	Out string
	// Epochs overrides SOLVER.TOTAL_EPOCHS and BatchSize TRAIN.BATCH_SIZE
	// (0 keeps the config's).
	Epochs, BatchSize int
	// Resume continues from the newest complete checkpoint under Out.
	Resume bool
	// AllowConfigMismatch trains on shards prepared with other
	// augmentation settings than Config's.
	AllowConfigMismatch bool
	// ShuffleBuffer is the sample shuffle buffer (default 4096).
	ShuffleBuffer int
	// MaxSteps stops this call after so many steps, with a checkpoint
	// (0: no limit). For trials and tests.
	MaxSteps int
	// SkipBadShards verifies every shard before an epoch reads it (size
	// and CRC32C against the manifest, sample metadata and view shapes;
	// each shard is read twice) and goes on without the bad ones, listing
	// them in the Summary; an epoch with skipped shards runs fewer
	// iterations. Without it the first bad shard stops the run with an
	// error naming it.
	SkipBadShards bool
	// Monitor, when set, scores every epoch checkpoint (every
	// TRAIN.CHECKPOINT_PERIOD epochs and the last; the command wires the
	// online kNN accuracy on a labelled held-out source here). Its
	// results go to metrics.jsonl and monitor.png.
	Monitor func(ctx context.Context, checkpoint string, epoch int) (map[string]float64, error)
	// Progress receives a live progress line; nil for none.
	Progress io.Writer
}

// Summary describes a finished (or stopped) call.
type Summary struct {
	Out            string  `json:"out"`
	Checkpoint     string  `json:"checkpoint"`
	Method         string  `json:"method"`
	Arch           string  `json:"arch"`
	Epochs         int     `json:"epochs"`
	PreparedEpochs int     `json:"prepared_epochs"`
	ItersPerEpoch  int     `json:"iters_per_epoch"`
	BatchSize      int     `json:"batch_size"`
	StartStep      int     `json:"start_step"`
	Steps          int     `json:"steps"`
	Done           bool    `json:"done"`
	FinalLoss      float64 `json:"final_loss"`
	ImagesPerSec   float64 `json:"images_per_sec"`
	WallSeconds    float64 `json:"wall_seconds"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	ConfigHash     string  `json:"config_hash"`
	// SkippedShards lists the shards --skip-bad-shards left out, per
	// epoch, with the reason.
	SkippedShards []SkippedShard `json:"skipped_shards,omitempty"`
}

// SkippedShard is one bad shard a training epoch went on without.
type SkippedShard struct {
	Epoch int    `json:"epoch"`
	Shard string `json:"shard"`
	Error string `json:"error"`
}

// MetricsFile is the per-step log under Out.
const MetricsFile = "metrics.jsonl"

// MetricsRecord is one line of metrics.jsonl: a logged step, (Kind
// "epoch") the end of an epoch with its mean loss, or (Kind "monitor") the
// Monitor's results on the checkpoint of an epoch.
type MetricsRecord struct {
	Kind         string  `json:"kind"` // "step" or "epoch"
	Step         int     `json:"step"`
	Epoch        int     `json:"epoch"`
	Loss         float64 `json:"loss"`
	LossGlobal   float64 `json:"loss_global,omitempty"`
	LossLocal    float64 `json:"loss_local,omitempty"`
	LR           float64 `json:"lr"`
	WD           float64 `json:"wd"`
	Momentum     float64 `json:"momentum"`
	TeacherTemp  float64 `json:"teacher_temp"`
	ImagesPerSec float64 `json:"images_per_sec"`
	Elapsed      float64 `json:"elapsed_s"`
	// SupLoss and SupAccuracy are the joint linear probe's cross-entropy
	// and top-1 accuracy (a fraction) on the training batch(es), with
	// TRAIN.JOINT_LINEAR_PROBE (the reference's sup_loss and sup_accu).
	SupLoss     *float64 `json:"sup_loss,omitempty"`
	SupAccuracy *float64 `json:"sup_accu,omitempty"`
	// Metrics holds a monitor's results (Kind "monitor"), e.g. knn_top1.
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// ErrStopped is returned (wrapped) when a run stops early on a signal or a
// cancelled context after writing its checkpoint.
var ErrStopped = errors.New("training stopped before the last epoch")

// schedules are the per-iteration values the reference precomputes.
type schedules struct {
	lr, wd, momentum, teacherTemp []float64
	tempPerIter                   bool
	freeze                        optim.FreezeWindow
}

func buildSchedules(cfg *configs.Config, epochs, ipe, batch int) (*schedules, error) {
	s := cfg.Solver
	total := epochs * ipe
	warm := s.WarmupIters
	if warm == 0 {
		warm = s.WarmupEpochs * ipe
	}
	if warm > total {
		return nil, fmt.Errorf("learning-rate warm-up of %d iterations is longer than the run's %d (%d epochs × %d iterations); lower SOLVER.WARMUP_ITERS/WARMUP_EPOCHS", warm, total, epochs, ipe)
	}
	var sc schedules
	var err error
	if sc.lr, err = optim.CosineScheduleIters(optim.ScaledLR(s.BaseLR, batch), s.MinLR, total, warm, s.StartWarmup); err != nil {
		return nil, fmt.Errorf("lr schedule: %w", err)
	}
	if sc.wd, err = optim.CosineSchedule(s.WeightDecay, s.WeightDecayEnd, epochs, ipe, 0, 0); err != nil {
		return nil, fmt.Errorf("weight-decay schedule: %w", err)
	}
	if sc.momentum, err = optim.CosineSchedule(cfg.Model.ModelMomentum, cfg.Model.ModelMomentumEnd, epochs, ipe, 0, 0); err != nil {
		return nil, fmt.Errorf("teacher-momentum schedule: %w", err)
	}
	sc.freeze = optim.FreezeWindow{Epochs: s.FreezeLastLayer, Iters: s.FreezeLastLayerIters}
	if cfg.SSLMethod != "DINO" {
		return &sc, nil // only DINO has a teacher temperature
	}
	d := cfg.DINO
	if d.WarmupTeacherTempIters > 0 {
		sc.tempPerIter = true
		sc.teacherTemp, err = optim.TeacherTempScheduleIters(d.WarmupTeacherTemp, d.TeacherTemp, min(d.WarmupTeacherTempIters, total), total)
	} else {
		sc.teacherTemp, err = optim.TeacherTempSchedule(d.WarmupTeacherTemp, d.TeacherTemp, min(d.WarmupTeacherTempEpochs, epochs), epochs)
	}
	if err != nil {
		return nil, fmt.Errorf("teacher-temperature schedule: %w", err)
	}
	return &sc, nil
}

// geometryOf is the view layout the config asks for.
func geometryOf(cfg *configs.Config) Geometry {
	mv := cfg.MultiViewsTransforms
	g := Geometry{G: 2, GH: mv.GlobalCropSize, GW: mv.GlobalCropSize, L: mv.LocalCropsNumber, LH: mv.LocalCropSize, LW: mv.LocalCropSize}
	if len(mv.NmbCrops) == 2 {
		g.G, g.L = mv.NmbCrops[0], mv.NmbCrops[1]
	}
	return g
}

// Run pre-trains the configured backbone on the shards and returns what it
// did. Cancelling ctx (SIGINT/SIGTERM in the command) writes a checkpoint
// at the current step and returns an error wrapping ErrStopped.
func Run(ctx context.Context, o Options) (*Summary, error) {
	cfg := o.Config
	if cfg == nil || len(o.Shards) == 0 || o.Out == "" {
		return nil, errors.New("trainer: Config, Shards and Out are required")
	}
	cfg = cfg.Clone()
	if o.Epochs > 0 {
		cfg.Solver.TotalEpochs = o.Epochs
	}
	if o.BatchSize > 0 {
		cfg.Train.BatchSize = o.BatchSize
	}
	if err := validate(cfg); err != nil {
		return nil, err
	}
	epochs, batch := cfg.Solver.TotalEpochs, cfg.Train.BatchSize
	roots, err := readRoots(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	var perEpoch int64
	for _, r := range roots {
		perEpoch += r.samples
	}
	ipe := int(perEpoch / int64(batch))
	if ipe == 0 {
		return nil, fmt.Errorf("batch size %d is larger than a training epoch's %d samples; lower --batch-size", batch, perEpoch)
	}
	shardsConfigHash := roots[0].man.ConfigHash
	sc, err := buildSchedules(cfg, epochs, ipe, batch)
	if err != nil {
		return nil, err
	}
	geo := geometryOf(cfg)
	model, err := newMethod(cfg, geo, batch, sc)
	if err != nil {
		return nil, err
	}
	defer model.close()
	s := cfg.Solver
	groups := optim.GroupParams(model.params(), optim.GroupConfig{WDFactorForBias: s.WDFactorForBias, WDFactorForDW: s.WDFactorForDW,
		LARSExcludeBias: s.LARSExcludeBias, LARSExcludeDW: s.LARSExcludeDW})
	opt, err := optim.New(s.OptimizingMethod, groups, s.Momentum)
	if err != nil {
		return nil, err
	}
	cfgJSON := cfg.CanonicalJSON()
	meta := checkpoint.Meta{Method: cfg.SSLMethod, Arch: cfg.Model.BackboneArch, Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem,
		PatchSize: cfg.ViT.PatchSize, EmbedDim: model.trained().EmbedDim(), Epochs: epochs, ItersPerEpoch: ipe, BatchSize: batch,
		Seed: cfg.Seed, ConfigHash: cfg.Hash(), AugmentationHash: cfg.AugmentationHash(), ShardsConfigHash: shardsConfigHash,
		Shards: strings.Join(o.Shards, ","), InitFrom: o.InitFrom, Config: cfgJSON}
	var records []MetricsRecord
	dir, prev, err := checkpoint.Latest(ctx, o.Out)
	if err != nil {
		return nil, err
	}
	switch {
	case prev != nil && !o.Resume:
		return nil, fmt.Errorf("%s already holds checkpoints (newest %s); pass --resume to continue, or choose another --out", o.Out, dir)
	case prev != nil:
		if prev.ConfigHash != meta.ConfigHash || prev.Epochs != epochs || prev.ItersPerEpoch != ipe || prev.BatchSize != batch {
			return nil, fmt.Errorf("cannot resume %s: it was trained with config %s, %d epochs × %d iterations, batch %d; this run has config %s, %d × %d, batch %d",
				dir, prev.ConfigHash[:12], prev.Epochs, prev.ItersPerEpoch, prev.BatchSize, meta.ConfigHash[:12], epochs, ipe, batch)
		}
		if err := loadCheckpoint(ctx, dir, model, opt); err != nil {
			return nil, err
		}
		meta.Epoch, meta.StepInEpoch, meta.Step, meta.ImagesSeen = prev.Epoch, prev.StepInEpoch, prev.Step, prev.ImagesSeen
		meta.InitFrom = prev.InitFrom
		if old, err := jsonfile.ReadLines[MetricsRecord](ctx, storage.Join(o.Out, MetricsFile)); err == nil {
			for _, r := range old {
				if r.Step < meta.Step || (r.Kind == "epoch" && r.Epoch < meta.Epoch) {
					records = append(records, r)
				}
			}
		}
	}
	if prev == nil && o.InitFrom != "" {
		var from checkpoint.Meta
		if err := jsonfile.Read(ctx, storage.Join(o.InitFrom, checkpoint.MetaFile), &from); err != nil {
			return nil, fmt.Errorf("--init-from: %w", err)
		}
		if from.Method != cfg.SSLMethod {
			return nil, fmt.Errorf("--init-from %s holds a %s checkpoint, this run trains %s", o.InitFrom, from.Method, cfg.SSLMethod)
		}
		if err := loadCheckpoint(ctx, o.InitFrom, model, opt); err != nil {
			return nil, fmt.Errorf("--init-from: %w", err)
		}
	}
	prepared := roots[0].man.Epochs
	for _, r := range roots {
		prepared = min(prepared, r.man.Epochs)
	}
	sum := &Summary{Out: o.Out, Method: cfg.SSLMethod, Arch: cfg.Model.BackboneArch, Epochs: epochs, PreparedEpochs: prepared,
		ItersPerEpoch: ipe, BatchSize: batch, StartStep: meta.Step, ConfigHash: meta.ConfigHash}
	if epochs > prepared && o.Progress != nil {
		fmt.Fprintf(o.Progress, "pretrain: %d epochs over %d prepared epochs of views: training epoch e reuses prepared epoch e mod %d (in a new order)\n",
			epochs, prepared, prepared)
	}
	buf := o.ShuffleBuffer
	if buf <= 0 {
		buf = 4096
	}
	ld := newLoader(geo, batch, NewNormalizer(meanStd(cfg.Data.Mean), meanStd(cfg.Data.Std)))
	start := time.Now()
	startStep := meta.Step
	prog := newProgress(o.Progress, epochs*ipe, startStep)
	saveMetrics := func() error {
		wctx := context.WithoutCancel(ctx)
		if err := jsonfile.WriteLines(wctx, storage.Join(o.Out, MetricsFile), records); err != nil {
			return err
		}
		return plotCurves(wctx, o.Out, records)
	}
	writeCheckpoint := func(reason string) error {
		meta.Reason = reason
		d, err := saveCheckpoint(context.WithoutCancel(ctx), o.Out, model, opt, meta)
		if err != nil {
			return fmt.Errorf("checkpoint at step %d: %w", meta.Step, err)
		}
		sum.Checkpoint = d
		return saveMetrics()
	}
	finish := func() {
		sum.Steps = meta.Step - startStep
		sum.WallSeconds = time.Since(start).Seconds()
		if sum.WallSeconds > 0 {
			sum.ImagesPerSec = float64(sum.Steps*batch) / sum.WallSeconds
		}
		sum.FinalLoss = meta.LastLoss
		sum.PeakRSSMB = peakRSSMB()
		sum.Done = meta.Epoch >= epochs
		prog.done()
	}
	logStep := max(1, cfg.LogStep)
	var snap stepSnapshot
	for meta.Epoch < epochs {
		e := meta.Epoch
		if meta.StepInEpoch == 0 {
			if err := model.startEpoch(e); err != nil {
				return nil, fmt.Errorf("epoch %d: %w", e, err)
			}
		}
		ectx, cancel := context.WithCancel(ctx)
		var onBad func(string, error) error
		skippedNow := 0
		if o.SkipBadShards {
			onBad = func(uri string, err error) error {
				// The loader goroutine calls this; the step loop reads
				// the record only after the epoch's batches are drained.
				skippedNow++
				sum.SkippedShards = append(sum.SkippedShards, SkippedShard{Epoch: e, Shard: uri, Error: err.Error()})
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "\npretrain: epoch %d: skipping bad shard %s: %v\n", e+1, uri, err)
				}
				return nil
			}
		}
		batches := ld.epoch(ectx, epochShards(roots, uint64(cfg.Seed), e), uint64(cfg.Seed), e, buf, meta.StepInEpoch, ipe, skipFunc(roots), onBad)
		var epochLoss, epochSupLoss, epochSupAcc float64
		epochSteps := 0
		stopped := false
		for b := range batches {
			if b.err != nil {
				cancel()
				return nil, fmt.Errorf("epoch %d: %w", e, b.err)
			}
			step := meta.Step
			if err := model.beforeStep(e, step); err != nil {
				cancel()
				return nil, fmt.Errorf("step %d: %w", step, err)
			}
			if err := snap.take(model); err != nil {
				cancel()
				return nil, fmt.Errorf("step %d: %w", step, err)
			}
			loss, err := model.forwardBackward(b)
			ld.recycle(b)
			if err != nil {
				cancel()
				return nil, fmt.Errorf("step %d: %w", step, err)
			}
			if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
				cancel()
				for range batches { // let the loader goroutine finish
				}
				err := nonFiniteLoss(step, loss, sc.lr[step], snap, model, writeCheckpoint)
				finish()
				return sum, err
			}
			model.adjustGradients(e, step)
			if err := opt.Step(sc.lr[step], sc.wd[step]); err != nil {
				cancel()
				return nil, fmt.Errorf("step %d: optimizer: %w", step, err)
			}
			if err := model.afterStep(step); err != nil {
				cancel()
				return nil, fmt.Errorf("step %d: %w", step, err)
			}
			meta.Step++
			meta.StepInEpoch++
			meta.ImagesSeen += int64(batch)
			meta.LastLoss = float64(loss)
			epochLoss += float64(loss)
			epochSteps++
			terms := model.logTerms(step)
			epochSupLoss += terms.probeLoss
			epochSupAcc += terms.probeAccuracy
			if step%logStep == 0 {
				el := time.Since(start).Seconds()
				r := MetricsRecord{Kind: "step", Step: step, Epoch: e, Loss: float64(loss),
					LossGlobal: terms.global, LossLocal: terms.local, LR: sc.lr[step], WD: sc.wd[step],
					Momentum: terms.momentum, TeacherTemp: terms.teacherTemp,
					ImagesPerSec: float64((meta.Step-startStep)*batch) / el, Elapsed: el}
				if terms.probe {
					r.SupLoss, r.SupAccuracy = ptr(terms.probeLoss), ptr(terms.probeAccuracy)
				}
				records = append(records, r)
			}
			prog.update(meta.Step, e, epochs, float64(loss), sc.lr[step], batch)
			if ctx.Err() != nil || (o.MaxSteps > 0 && meta.Step-startStep >= o.MaxSteps) {
				stopped = true
				break
			}
		}
		cancel()
		for range batches { // let the loader goroutine finish
		}
		if stopped || ctx.Err() != nil {
			reason := "max-steps"
			if ctx.Err() != nil {
				reason = "signal"
			}
			err := writeCheckpoint(reason)
			finish()
			if err != nil {
				return sum, err
			}
			if reason == "signal" {
				return sum, fmt.Errorf("%w at step %d (checkpoint %s; continue with --resume): %v", ErrStopped, meta.Step, sum.Checkpoint, ctx.Err())
			}
			return sum, nil
		}
		if meta.StepInEpoch != ipe {
			if skippedNow == 0 {
				return nil, fmt.Errorf("epoch %d ended after %d of %d iterations: the shards hold fewer samples than their manifests say", e, meta.StepInEpoch, ipe)
			}
			// Skipped shards shorten the epoch; the schedules stay on
			// their per-iteration course, so the run ends early.
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "\npretrain: epoch %d ran %d of %d iterations (%d bad shards skipped)\n", e+1, meta.StepInEpoch, ipe, skippedNow)
			}
		}
		terms := model.logTerms(meta.Step - 1)
		er := MetricsRecord{Kind: "epoch", Step: meta.Step - 1, Epoch: e, Loss: epochLoss / float64(max(1, epochSteps)),
			LR: sc.lr[meta.Step-1], WD: sc.wd[meta.Step-1], Momentum: terms.momentum, TeacherTemp: terms.teacherTemp,
			ImagesPerSec: float64((meta.Step-startStep)*batch) / time.Since(start).Seconds(), Elapsed: time.Since(start).Seconds()}
		if terms.probe && epochSteps > 0 {
			// Means over this process's steps of the epoch (a resumed
			// epoch's count starts at the resume).
			er.SupLoss, er.SupAccuracy = ptr(epochSupLoss/float64(epochSteps)), ptr(epochSupAcc/float64(epochSteps))
		}
		records = append(records, er)
		meta.Epoch++
		meta.StepInEpoch = 0
		period := max(1, cfg.Train.CheckpointPeriod)
		switch {
		case meta.Epoch == epochs, meta.Epoch%period == 0:
			reason := "period"
			if meta.Epoch == epochs {
				reason = "final"
			}
			if err := writeCheckpoint(reason); err != nil {
				return nil, err
			}
			if o.Monitor != nil {
				m, err := o.Monitor(ctx, sum.Checkpoint, e)
				if err != nil {
					return nil, fmt.Errorf("monitor after epoch %d: %w", e, err)
				}
				records = append(records, MetricsRecord{Kind: "monitor", Step: meta.Step - 1, Epoch: e, Metrics: m,
					Elapsed: time.Since(start).Seconds()})
				if err := saveMetrics(); err != nil {
					return nil, err
				}
			}
		default:
			if err := saveMetrics(); err != nil {
				return nil, err
			}
		}
	}
	finish()
	if err := jsonfile.Write(ctx, storage.Join(o.Out, "summary.json"), sum); err != nil {
		return sum, err
	}
	return sum, nil
}

// validate is cfg.Validate without the problems of the DINO sections when
// SSL_METHOD is SWAV or MOCO: the reference reads DINO and DINOHead only to
// build DINO's loss and head, so, e.g., a MoCo run of 5 epochs must not
// fail on DINO's 30-epoch teacher-temperature warm-up.
func validate(cfg *configs.Config) error {
	err := cfg.Validate()
	if err == nil || cfg.SSLMethod == "DINO" {
		return err
	}
	all := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	}
	var keep []error
	for _, e := range all {
		var ve *configs.ValidationError
		if errors.As(e, &ve) && (strings.HasPrefix(ve.Key, "DINO.") || strings.HasPrefix(ve.Key, "DINOHead.")) {
			continue
		}
		keep = append(keep, e)
	}
	return errors.Join(keep...)
}

// checkShardsConfig refuses shards prepared with other augmentation
// settings unless allowed.
func checkShardsConfig(cfg *configs.Config, man *manifest.Manifest, allow bool) error {
	prepCfg, err := configs.Parse(man.Config, "manifest config")
	if err != nil {
		return fmt.Errorf("the manifest's config does not parse: %w", err)
	}
	if a, b := prepCfg.AugmentationHash(), cfg.AugmentationHash(); a != b && !allow {
		return fmt.Errorf("the shards were prepared with other augmentation settings (MULTI_VIEWS_TRANSFORMS/DATA hash %s, this config %s): re-run sslight prepare with this config, or pass --allow-config-mismatch", a[:12], b[:12])
	}
	return nil
}

func meanStd(v []float64) [3]float64 {
	var out [3]float64
	for i := range out {
		if i < len(v) {
			out[i] = v[i]
		} else if len(v) > 0 {
			out[i] = v[len(v)-1]
		}
	}
	return out
}

// peakRSSMB reads the process's peak resident set (VmHWM) on Linux; 0
// elsewhere.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// root is one shards root with its manifest and what a training epoch
// takes from it.
type root struct {
	uri     string
	man     *manifest.Manifest
	exclude map[string]bool
	samples int64 // per training epoch: the smallest prepared epoch, minus excluded keys
}

func readRoots(ctx context.Context, cfg *configs.Config, o Options) ([]*root, error) {
	var roots []*root
	for _, uri := range o.Shards {
		man, err := manifest.Read(ctx, storage.Join(uri, manifest.FileName))
		if err != nil {
			return nil, fmt.Errorf("read the shards' manifest (run sslight prepare first, --shards is its --out): %w", err)
		}
		if err := checkShardsConfig(cfg, man, o.AllowConfigMismatch); err != nil {
			return nil, fmt.Errorf("%s: %w", uri, err)
		}
		if man.Epochs < 1 || len(man.Shards) == 0 {
			return nil, fmt.Errorf("%s: the manifest lists no shards", uri)
		}
		r := &root{uri: uri, man: man, exclude: o.Exclude[uri], samples: math.MaxInt64}
		for _, ec := range man.EpochCounts {
			r.samples = min(r.samples, ec.Samples)
		}
		// Excluded keys listed by this root (a dead-lettered one would make
		// this an over-count: one iteration fewer, never a short epoch).
		for _, it := range man.Source.Items {
			if r.exclude[it.Key] {
				r.samples--
			}
		}
		roots = append(roots, r)
	}
	return roots, nil
}

// skipFunc says whether the sample key of a shard is excluded.
func skipFunc(roots []*root) func(shardURI, key string) bool {
	byShard := map[string]map[string]bool{}
	for _, r := range roots {
		if len(r.exclude) == 0 {
			continue
		}
		for _, s := range r.man.Shards {
			byShard[s.URI] = r.exclude
		}
	}
	if len(byShard) == 0 {
		return nil
	}
	return func(shardURI, key string) bool { return byShard[shardURI][key] }
}

// plotCurves draws loss.png (per logged step) and, when a monitor ran,
// monitor.png (its metrics per epoch) under out.
func plotCurves(ctx context.Context, out string, records []MetricsRecord) error {
	loss := report.Series{Name: "loss"}
	monitor := map[string]*report.Series{}
	var names []string
	for _, r := range records {
		switch r.Kind {
		case "step":
			loss.X, loss.Y = append(loss.X, float64(r.Step)), append(loss.Y, r.Loss)
		case "monitor":
			for k, v := range r.Metrics {
				s, ok := monitor[k]
				if !ok {
					s = &report.Series{Name: k}
					monitor[k] = s
					names = append(names, k)
				}
				s.X, s.Y = append(s.X, float64(r.Epoch+1)), append(s.Y, v)
			}
		}
	}
	if len(loss.X) > 1 {
		if err := report.LinePlot(ctx, storage.Join(out, "loss.png"), "pre-training loss", "step", "loss", []report.Series{loss}); err != nil {
			return err
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	series := make([]report.Series, len(names))
	for i, n := range names {
		series[i] = *monitor[n]
	}
	return report.LinePlot(ctx, storage.Join(out, "monitor.png"), "online evaluation", "epoch", "%", series)
}

func ptr[T any](v T) *T { return &v }

// nonFiniteLoss undoes the step whose loss was not finite (its forward
// pass moved BatchNorm statistics and the loss state; the parameters have
// not been stepped), checkpoints the state before it and returns the error
// that stops the run.
func nonFiniteLoss(step int, loss float32, lr float64, snap stepSnapshot, m method, writeCheckpoint func(string) error) error {
	if err := snap.restore(m); err != nil {
		return fmt.Errorf("step %d: the loss is %v (lr %.4g), and the state before the step could not be restored: %w", step, loss, lr, err)
	}
	if err := writeCheckpoint("non-finite-loss"); err != nil {
		return fmt.Errorf("step %d: the loss is %v (lr %.4g), and the state before the step could not be saved: %w", step, loss, lr, err)
	}
	return fmt.Errorf("%w: step %d: the loss is %v at lr %.4g; the state before this step is checkpointed (checkpoints/%s): "+
		"lower SOLVER.BASE_LR or set SOLVER.CLIP_GRAD and continue from it with --init-from (a fresh schedule), or retry as is with --resume",
		ErrNonFiniteLoss, step, loss, lr, path.Base(checkpoint.Dir("", step)))
}

// ErrNonFiniteLoss is returned (wrapped) when a step's loss is NaN or
// infinite; the run has checkpointed the state before that step.
var ErrNonFiniteLoss = errors.New("training diverged")
