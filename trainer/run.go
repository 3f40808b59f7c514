package trainer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/manifest"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/trainer/checkpoint"
	"github.com/sslight-go/sslight/trainer/optim"
)

// run is one call of Run, set up: the config with the options applied, the
// shards, the schedules, the model with its optimiser, and meta, the
// position training starts from together with what every checkpoint's
// meta.json says about the run.
type run struct {
	o                  Options
	cfg                *configs.Config
	epochs, batch, ipe int
	prepared           int // the fewest prepared epochs of a shards root
	seed               uint64
	roots              []*root
	sc                 *schedules
	model              method
	meta               checkpoint.Meta
	startStep          int
	// records are metrics.jsonl's records from before meta (a resumed
	// run's).
	records []MetricsRecord
	// finished is what Run returns for --resume of a run that already
	// trained its last epoch; nothing else is set up then.
	finished *Summary
	loader   *loader
	snap     stepSnapshot
}

// newRun sets a call up and finds where it starts: afresh, from
// --init-from's checkpoint, or (--resume) from the newest checkpoint under
// Out.
func newRun(ctx context.Context, o Options) (*run, error) {
	cfg, err := o.config()
	if err != nil {
		return nil, err
	}
	if err := checkOutIsFolder(ctx, o.Out); err != nil {
		return nil, err
	}
	r := &run{o: o, cfg: cfg, epochs: cfg.Solver.TotalEpochs, batch: cfg.Train.BatchSize, seed: uint64(cfg.Seed)}
	if r.roots, err = readRoots(ctx, cfg, o); err != nil {
		return nil, err
	}
	if err := checkLabels(cfg, r.roots); err != nil {
		return nil, err
	}
	if err := r.plan(); err != nil {
		return nil, err
	}
	// A killed earlier run may have left half-written files (a checkpoint's
	// .tmp-* parts); they are never visible, only in the way.
	if _, err := storage.CleanTemporaries(ctx, o.Out, storage.StaleTemporaryAge); err != nil {
		return nil, fmt.Errorf("clean stale temporaries under %s: %w", o.Out, err)
	}
	dir, prev, err := checkpoint.Latest(ctx, o.Out)
	if err != nil {
		return nil, err
	}
	if err := r.checkResumable(dir, prev); err != nil {
		return nil, err
	}
	if prev != nil && prev.Epoch >= r.epochs {
		r.finished, err = r.finishedSummary(ctx, dir, prev)
		return r, err
	}
	geo := geometryOf(cfg)
	if r.model, err = newMethod(cfg, geo, r.batch, r.sc); err != nil {
		return nil, err
	}
	r.meta = r.newMeta()
	switch {
	case prev != nil:
		err = r.resume(ctx, dir, prev)
	case o.InitFrom != "":
		err = r.initFrom(ctx)
	}
	if err != nil {
		r.model.close()
		return nil, err
	}
	r.startStep = r.meta.Step
	r.loader = newLoader(geo, r.batch, NewNormalizer(cfg.Data.MeanStd()))
	if r.loader.pool, err = newRenderPool(r.roots, geo, o.Workers); err != nil {
		r.model.close()
		return nil, err
	}
	return r, nil
}

// config is o.Config with the options' overrides, validated.
func (o Options) config() (*configs.Config, error) {
	if o.Config == nil || len(o.Shards) == 0 || o.Out == "" {
		return nil, errors.New("trainer: Config, Shards and Out are required")
	}
	seen := map[string]bool{}
	for _, s := range o.Shards {
		k := strings.TrimRight(s, "/")
		if storage.IsLocal(k) {
			if abs, err := filepath.Abs(k); err == nil {
				k = abs
			}
		}
		if seen[k] {
			// Training on a root twice trains every sample of it twice
			// an epoch.
			return nil, fmt.Errorf("--shards names %s twice: list each prepared root once", s)
		}
		seen[k] = true
	}
	cfg := o.Config.Clone()
	if o.Epochs > 0 {
		cfg.Solver.TotalEpochs = o.Epochs
	}
	if o.BatchSize > 0 {
		cfg.Train.BatchSize = o.BatchSize
	}
	if err := validate(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// plan sizes the run from the shards: iterations per epoch, prepared
// epochs, the schedules.
func (r *run) plan() error {
	var perEpoch int64
	r.prepared = r.roots[0].preparedEpochs(r.epochs)
	for _, rt := range r.roots {
		perEpoch += rt.samples
		r.prepared = min(r.prepared, rt.preparedEpochs(r.epochs))
	}
	if r.ipe = int(perEpoch / int64(r.batch)); r.ipe == 0 {
		return fmt.Errorf("batch size %d is larger than a training epoch's %d samples; lower --batch-size", r.batch, perEpoch)
	}
	var err error
	r.sc, err = buildSchedules(r.cfg, r.epochs, r.ipe, r.batch)
	return err
}

// newMeta is the meta.json of the run's first checkpoint, before any step.
func (r *run) newMeta() checkpoint.Meta {
	cfg := r.cfg
	return checkpoint.Meta{Method: cfg.SSLMethod, Arch: cfg.Model.BackboneArch, Width: cfg.Model.Width, SmallImageStem: cfg.Model.SmallImageStem,
		PatchSize: cfg.ViT.PatchSize, EmbedDim: r.model.state().backbone.EmbedDim(), Epochs: r.epochs, ItersPerEpoch: r.ipe, BatchSize: r.batch,
		Seed: cfg.Seed, ConfigHash: cfg.Hash(), AugmentationHash: cfg.AugmentationHash(), ShardsConfigHash: r.roots[0].man.ConfigHash,
		Shards: strings.Join(r.o.Shards, ","), InitFrom: r.o.InitFrom, ConfigSource: r.o.ConfigSource, Config: cfg.CanonicalJSON()}
}

// checkResumable refuses a newest checkpoint prev (in dir) under Out that
// this call may not continue: without --resume, or of another config or
// schedule length.
func (r *run) checkResumable(dir string, prev *checkpoint.Meta) error {
	switch hash := r.cfg.Hash(); {
	case prev == nil:
		return nil
	case !r.o.Resume:
		return fmt.Errorf("%s already holds checkpoints (newest %s); pass --resume to continue, or choose another --out", r.o.Out, dir)
	case prev.ConfigHash != hash || prev.Epochs != r.epochs || prev.ItersPerEpoch != r.ipe || prev.BatchSize != r.batch:
		return fmt.Errorf("cannot resume %s: it was trained with config %s, %d epochs × %d iterations, batch %d; this run has config %s, %d × %d, batch %d",
			dir, prev.ConfigHash[:12], prev.Epochs, prev.ItersPerEpoch, prev.BatchSize, hash[:12], r.epochs, r.ipe, r.batch)
	}
	return nil
}

// resume continues from the checkpoint in dir: its networks, optimiser and
// loss state, its position, and metrics.jsonl's records up to it.
func (r *run) resume(ctx context.Context, dir string, prev *checkpoint.Meta) error {
	if err := loadCheckpoint(ctx, dir, r.model); err != nil {
		return err
	}
	m := &r.meta
	m.Epoch, m.StepInEpoch, m.Step, m.ImagesSeen = prev.Epoch, prev.StepInEpoch, prev.Step, prev.ImagesSeen
	m.LastLoss, m.StepsPerEpoch, m.InitFrom = prev.LastLoss, prev.StepsPerEpoch, prev.InitFrom
	uri := storage.Join(r.o.Out, MetricsFile)
	old, err := jsonfile.ReadLines[MetricsRecord](ctx, uri)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resume: %w (move %s aside to resume without its records)", err, uri)
	}
	for _, rec := range old {
		if rec.Step < m.Step || (rec.Kind == "epoch" && rec.Epoch < m.Epoch) {
			r.records = append(r.records, rec)
		}
	}
	return nil
}

// initFrom starts from --init-from's checkpoint (networks, optimiser and
// loss state) with the run's fresh schedule.
func (r *run) initFrom(ctx context.Context) error {
	var from checkpoint.Meta
	if err := jsonfile.Read(ctx, storage.Join(r.o.InitFrom, checkpoint.MetaFile), &from); err != nil {
		return fmt.Errorf("--init-from: %w", err)
	}
	if from.Method != r.cfg.SSLMethod {
		return fmt.Errorf("--init-from %s holds a %s checkpoint, this run trains %s", r.o.InitFrom, from.Method, r.cfg.SSLMethod)
	}
	if err := loadCheckpoint(ctx, r.o.InitFrom, r.model); err != nil {
		return fmt.Errorf("--init-from: %w", err)
	}
	return nil
}

// newSummary is the Summary of a call that has not trained yet.
func (r *run) newSummary(startStep int) *Summary {
	cfg := r.cfg
	return &Summary{Out: r.o.Out, Method: cfg.SSLMethod, Arch: cfg.Model.BackboneArch, Epochs: r.epochs, PreparedEpochs: r.prepared,
		ItersPerEpoch: r.ipe, BatchSize: r.batch, StartStep: startStep, ConfigHash: cfg.Hash()}
}

// finishedSummary is what --resume of a run that already trained its last
// epoch returns, leaving everything under Out as it is: the summary.json
// its finishing call wrote, or, without one, the run as its final
// checkpoint's meta describes it (all its steps, from 0); either way with
// that checkpoint, done, and its final loss.
func (r *run) finishedSummary(ctx context.Context, dir string, final *checkpoint.Meta) (*Summary, error) {
	sum := r.newSummary(0)
	sum.Steps = final.Step
	uri := storage.Join(r.o.Out, SummaryFile)
	if err := jsonfile.Read(ctx, uri, sum); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s trained its last epoch, but its summary does not read: %w", r.o.Out, err)
	}
	sum.Checkpoint, sum.Done, sum.FinalLoss = dir, true, final.LastLoss
	if final.StepsPerEpoch != nil {
		sum.StepsPerEpoch = final.StepsPerEpoch
	}
	if r.o.Progress != nil {
		fmt.Fprintf(r.o.Progress, "pretrain: %s already trained its %d epochs (checkpoint %s); nothing to do\n", r.o.Out, r.epochs, dir)
	}
	return sum, nil
}

// schedules are the per-iteration values the reference precomputes.
type schedules struct {
	lr, wd, momentum, teacherTemp []float64
	tempPerIter                   bool
	freeze                        optim.FreezeWindow
}

// teacherTempIndex is DINO's index into teacherTemp at it: the epoch, as
// the reference's schedule, or the step (DINO.WARMUP_TEACHER_TEMP_ITERS).
func (s *schedules) teacherTempIndex(it iteration) int {
	if s.tempPerIter {
		return it.step
	}
	return it.epoch
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

// checkOutIsFolder refuses an output that names a file: checkpoints and
// metrics go into a folder there, and finding out at the first checkpoint
// would lose the training before it.
func checkOutIsFolder(ctx context.Context, out string) error {
	if storage.IsLocal(out) {
		if st, err := os.Stat(out); err == nil && !st.IsDir() {
			return fmt.Errorf("--out %s is a file; pretrain writes a folder there (checkpoints/, metrics.jsonl, summary.json): name a folder", out)
		}
		return nil
	}
	if _, err := storage.Stat(ctx, out); err == nil {
		return fmt.Errorf("--out %s is an object; pretrain writes a prefix there (checkpoints/, metrics.jsonl, summary.json): name a prefix that is not an object", out)
	}
	return nil
}

// checkLabels refuses shards whose class list does not fit the joint
// linear probe's TRAIN.NUM_CLASSES before any training: the manifest lists
// the classes, so the first batch with a large label need not find out.
func checkLabels(cfg *configs.Config, roots []*root) error {
	if !cfg.Train.JointLinearProbe {
		return nil
	}
	for _, rt := range roots {
		if n := len(rt.man.ClassNames); n > cfg.Train.NumClasses {
			return fmt.Errorf("%s has %d classes (%s …) but TRAIN.NUM_CLASSES is %d: the joint linear probe needs one output per class; set --set TRAIN.NUM_CLASSES=%d",
				rt.uri, n, strings.Join(rt.man.ClassNames[:min(3, n)], ", "), cfg.Train.NumClasses, n)
		}
		if len(rt.man.ClassNames) == 0 {
			return fmt.Errorf("%s holds unlabelled samples: TRAIN.JOINT_LINEAR_PROBE needs labels (prepare from an imagenet or idx layout)", rt.uri)
		}
	}
	return nil
}
