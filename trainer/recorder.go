package trainer

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/sslight-go/sslight/configs"
	"github.com/sslight-go/sslight/internal/procstat"
	"github.com/sslight-go/sslight/sinks/jsonfile"
	"github.com/sslight-go/sslight/sinks/report"
	"github.com/sslight-go/sslight/sinks/storage"
	"github.com/sslight-go/sslight/sinks/tensorboard"
	"github.com/sslight-go/sslight/trainer/checkpoint"
)

// recorder writes what a run leaves besides its trained state, all from
// the goroutine that calls Run: metrics.jsonl (a record every LOG_STEP
// steps, one per epoch, the monitor's), loss.png and monitor.png, the
// checkpoints, the progress line and notes, and the call's Summary.
type recorder struct {
	out     string
	model   method
	meta    *checkpoint.Meta // the run's, as checkpoints save it
	sc      *schedules
	monitor func(ctx context.Context, checkpoint string, epoch int) (map[string]float64, error)
	// tensorboard is the folder of the TensorBoard events file ("" none).
	tensorboard string

	epochs, batch, startStep, logStep, period int
	start                                     time.Time
	records                                   []MetricsRecord
	epoch                                     epochTotals
	prog                                      *progress
	w                                         io.Writer // notes; nil for none
	sum                                       *Summary
	loader                                    *loader // its wait figures go into every epoch record
}

// epochTotals sum an epoch's steps in this call.
type epochTotals struct {
	steps                  int
	loss, supLoss, supAccu float64
	last                   stepLog
}

func newRecorder(r *run) *recorder {
	tb := r.o.TensorBoard
	if tb == "" && r.cfg.TensorboardPath != configs.Default().TensorboardPath {
		// TENSORBOARD_PATH when a config sets it; the reference's default
		// (/tensorboard, a container path) would write to the root of any
		// machine, so it turns nothing on (--tensorboard /tensorboard does).
		tb = r.cfg.TensorboardPath
	}
	rec := &recorder{out: r.o.Out, model: r.model, meta: &r.meta, sc: r.sc, monitor: r.o.Monitor, tensorboard: tb,
		epochs: r.epochs, batch: r.batch, startStep: r.startStep, logStep: max(1, r.cfg.LogStep), period: max(1, r.cfg.Train.CheckpointPeriod),
		start: time.Now(), records: r.records, prog: newProgress(r.o.Progress, r.epochs*r.ipe, r.startStep), w: r.o.Progress,
		sum: r.newSummary(r.startStep), loader: r.loader}
	if r.epochs > r.prepared {
		rec.note("pretrain: %d epochs over %d prepared epochs of views: training epoch e reuses prepared epoch e mod %d (in a new order)",
			r.epochs, r.prepared, r.prepared)
	}
	return rec
}

// step records step it: its metrics.jsonl record every LOG_STEP steps and
// at the run's last step (so curves end where training ended), the
// epoch's totals, the progress line.
func (rec *recorder) step(it iteration, log stepLog) {
	rec.epoch.steps++
	rec.epoch.loss += float64(log.loss)
	if log.probe != nil {
		rec.epoch.supLoss += log.probe.loss
		rec.epoch.supAccu += log.probe.accuracy
	}
	rec.epoch.last = log
	if it.step%rec.logStep == 0 || it.step == len(rec.sc.lr)-1 {
		el := time.Since(rec.start).Seconds()
		r := MetricsRecord{Kind: "step", Step: it.step, Epoch: it.epoch, Loss: float64(log.loss), LossGlobal: log.global, LossLocal: log.local,
			LR: log.lr, WD: log.wd, Momentum: log.momentum, TeacherTemp: log.teacherTemp,
			ImagesPerSec: float64((it.step+1-rec.startStep)*rec.batch) / el, Elapsed: el, Time: now()}
		if log.probe != nil {
			r.SupLoss, r.SupAccuracy = ptr(log.probe.loss), ptr(log.probe.accuracy)
		}
		rec.records = append(rec.records, r)
	}
	rec.prog.update(it.step+1, it.epoch, rec.epochs, float64(log.loss), log.lr, rec.batch)
}

// skippedShard records a shard --skip-bad-shards left out.
func (rec *recorder) skippedShard(s SkippedShard) {
	rec.sum.SkippedShards = append(rec.sum.SkippedShards, s)
	rec.note("pretrain: epoch %d: skipping bad shard %s: %s", s.Epoch+1, s.Shard, s.Error)
}

// endEpoch records the epoch that just ended (the one before meta's): its
// metrics.jsonl record, and every TRAIN.CHECKPOINT_PERIOD epochs and after
// the last one a checkpoint with the monitor's results.
func (rec *recorder) endEpoch(ctx context.Context) error {
	e, last := rec.meta.Epoch-1, rec.meta.Step-1
	el := time.Since(rec.start).Seconds()
	t := rec.epoch
	r := MetricsRecord{Kind: "epoch", Step: last, Epoch: e, Loss: t.loss / float64(max(1, t.steps)), LR: rec.sc.lr[last], WD: rec.sc.wd[last],
		Momentum: t.last.momentum, TeacherTemp: t.last.teacherTemp, ImagesPerSec: float64((rec.meta.Step-rec.startStep)*rec.batch) / el, Elapsed: el, Time: now()}
	if t.steps > 0 && t.last.probe != nil {
		// Means over this call's steps of the epoch (a resumed epoch's
		// count starts at the resume).
		r.SupLoss, r.SupAccuracy = ptr(t.supLoss/float64(t.steps)), ptr(t.supAccu/float64(t.steps))
	}
	if rec.loader != nil {
		st := rec.loader.stats()
		r.DataWait, r.LoaderWait = ptr(st.StepWaitFraction()), ptr(st.LoaderWaitFraction())
		if note := loaderNote(e, st); note != "" {
			rec.note("%s", note)
		}
	}
	rec.records = append(rec.records, r)
	rec.epoch = epochTotals{}
	if rec.meta.Epoch != rec.epochs && rec.meta.Epoch%rec.period != 0 {
		return rec.saveMetrics(ctx)
	}
	reason := "period"
	if rec.meta.Epoch == rec.epochs {
		reason = "final"
	}
	if err := rec.checkpoint(ctx, reason); err != nil || rec.monitor == nil {
		return err
	}
	m, err := rec.monitor(ctx, rec.sum.Checkpoint, e)
	if err != nil {
		return fmt.Errorf("monitor after epoch %d: %w", e, err)
	}
	rec.records = append(rec.records, MetricsRecord{Kind: "monitor", Step: last, Epoch: e, Metrics: m, Elapsed: time.Since(rec.start).Seconds(), Time: now()})
	return rec.saveMetrics(ctx)
}

// checkpoint writes the metrics so far and a checkpoint of the run as it
// stands, for reason (checkpoint.Meta.Reason). A cancelled ctx still
// writes them: the checkpoint of a signal is written then. The metrics go
// first: a run killed between the two resumes from the checkpoint before
// (and rewrites the metrics), while one killed after the checkpoint has
// its metrics — --resume keeps metrics.jsonl's records up to the
// checkpoint it resumes, and resuming a final checkpoint writes nothing.
func (rec *recorder) checkpoint(ctx context.Context, reason string) error {
	rec.meta.Reason = reason
	if err := rec.saveMetrics(ctx); err != nil {
		return err
	}
	dir, err := saveCheckpoint(context.WithoutCancel(ctx), rec.out, rec.model, *rec.meta)
	if err != nil {
		return fmt.Errorf("checkpoint at step %d: %w", rec.meta.Step, err)
	}
	rec.sum.Checkpoint = dir
	return nil
}

// saveMetrics rewrites metrics.jsonl and the plots, even after ctx is
// cancelled.
func (rec *recorder) saveMetrics(ctx context.Context) error {
	wctx := context.WithoutCancel(ctx)
	if err := jsonfile.WriteLines(wctx, storage.Join(rec.out, MetricsFile), rec.records); err != nil {
		return err
	}
	if err := plotCurves(wctx, rec.out, rec.records); err != nil {
		return err
	}
	if rec.tensorboard == "" {
		return nil
	}
	return writeEvents(wctx, rec.tensorboard, rec.records)
}

// now is the wall clock in unix seconds.
func now() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// writeEvents rewrites the TensorBoard events file of a run under dir from
// its metrics.jsonl records, so the two never disagree and a resumed run
// (whose records include the earlier calls') keeps one file: it is named
// after the first record's time.
func writeEvents(ctx context.Context, dir string, records []MetricsRecord) error {
	if len(records) == 0 {
		return nil
	}
	at := func(r MetricsRecord) time.Time {
		if r.Time == 0 {
			return time.Now()
		}
		sec, frac := math.Modf(r.Time)
		return time.Unix(int64(sec), int64(frac*1e9))
	}
	w := tensorboard.NewWriter(dir, "sslight", at(records[0]))
	for _, r := range records {
		v := map[string]float64{}
		switch r.Kind {
		case "step":
			v["train/loss"], v["train/lr"], v["train/wd"], v["train/images_per_sec"] = r.Loss, r.LR, r.WD, r.ImagesPerSec
			if r.Momentum != 0 {
				v["train/momentum"] = r.Momentum
			}
			if r.TeacherTemp != 0 {
				v["train/teacher_temp"] = r.TeacherTemp
			}
			if r.LossGlobal != 0 || r.LossLocal != 0 {
				v["train/loss_global"], v["train/loss_local"] = r.LossGlobal, r.LossLocal
			}
			if r.SupLoss != nil {
				v["train/sup_loss"], v["train/sup_accu"] = *r.SupLoss, *r.SupAccuracy
			}
		case "epoch":
			v["epoch/loss"] = r.Loss
		case "monitor":
			for k, m := range r.Metrics {
				v["monitor/"+k] = m
			}
		}
		w.Scalars(int64(r.Step), at(r), v)
	}
	return w.Flush(ctx)
}

// note prints a line on the progress writer, below the progress line.
func (rec *recorder) note(format string, args ...any) {
	if rec.w == nil {
		return
	}
	if rec.prog.printed {
		fmt.Fprintln(rec.w)
	}
	fmt.Fprintf(rec.w, format+"\n", args...)
}

// summary ends the progress line and returns the call's Summary.
func (rec *recorder) summary() *Summary {
	s := rec.sum
	s.Steps = rec.meta.Step - rec.startStep
	s.WallSeconds = time.Since(rec.start).Seconds()
	if s.WallSeconds > 0 {
		s.ImagesPerSec = float64(s.Steps*rec.batch) / s.WallSeconds
	}
	s.FinalLoss = rec.meta.LastLoss
	s.StepsPerEpoch = append([]int(nil), rec.meta.StepsPerEpoch...)
	s.PeakRSSMB = procstat.PeakRSSMiB()
	s.Done = rec.meta.Epoch >= rec.epochs
	rec.prog.done()
	return s
}

// finish returns the Summary of a run that trained its last epoch and
// writes it to summary.json.
func (rec *recorder) finish(ctx context.Context) (*Summary, error) {
	s := rec.summary()
	return s, jsonfile.Write(ctx, storage.Join(rec.out, SummaryFile), s)
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
