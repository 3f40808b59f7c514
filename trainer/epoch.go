package trainer

import (
	"context"
	"errors"
	"fmt"
	"path"
)

// Why an epoch ends before its last iteration: the Reason of the
// checkpoint the run then writes.
const (
	reasonMaxSteps  = "max-steps"
	reasonSignal    = "signal"
	reasonNonFinite = "non-finite-loss"
)

// trainEpoch trains what remains of epoch r.meta.Epoch on this goroutine:
// the loader's batches, each through the method's step. It returns why the
// run stops before the epoch's end (a reason* constant; with
// reasonNonFinite, err names the step), or "" at the end of the epoch,
// which leaves r.meta at the start of the next. The loader's goroutine has
// finished when it returns.
func (r *run) trainEpoch(ctx context.Context, rec *recorder) (stop string, err error) {
	e := r.meta.Epoch
	lctx, cancel := context.WithCancel(ctx)
	feed := r.loader.epoch(lctx, epochShards(r.roots, r.seed, e), r.seed, e, r.shuffleBuffer(), r.meta.StepInEpoch, r.ipe,
		skipFunc(r.roots), r.o.SkipBadShards)
	defer func() {
		cancel()
		for range feed { // the loader's goroutine ends once it sees the cancel
		}
	}()
	skipped := 0
	for x := range r.loader.receive(feed) {
		switch {
		case x.err != nil && ctx.Err() != nil:
			return reasonSignal, nil // the loader stopped on the signal
		case x.err != nil:
			return "", fmt.Errorf("epoch %d: %w", e, x.err)
		case x.skipped != nil:
			skipped++
			rec.skippedShard(*x.skipped)
			continue
		}
		it := iteration{epoch: e, step: r.meta.Step, inEpoch: r.meta.StepInEpoch}
		if err := r.snap.take(r.model); err != nil {
			return "", fmt.Errorf("step %d: %w", it.step, err)
		}
		log, err := r.model.step(it, x.batch)
		r.loader.recycle(x.batch)
		switch {
		case errors.Is(err, errLossNotFinite):
			return reasonNonFinite, fmt.Errorf("step %d: the loss is %v at lr %.4g", it.step, log.loss, log.lr)
		case err != nil:
			return "", fmt.Errorf("step %d: %w", it.step, err)
		}
		r.meta.Step++
		r.meta.StepInEpoch++
		r.meta.ImagesSeen += int64(r.batch)
		r.meta.LastLoss = float64(log.loss)
		rec.step(it, log)
		if ctx.Err() != nil {
			return reasonSignal, nil
		}
		if r.o.MaxSteps > 0 && r.meta.Step-r.startStep >= r.o.MaxSteps {
			return reasonMaxSteps, nil
		}
	}
	if ctx.Err() != nil {
		return reasonSignal, nil
	}
	return "", r.endEpoch(e, skipped, rec)
}

// endEpoch checks how many iterations epoch e ran and moves r.meta to the
// start of the next epoch.
func (r *run) endEpoch(e, skipped int, rec *recorder) error {
	ran := r.meta.StepInEpoch
	switch {
	case ran == r.ipe:
	case skipped == 0:
		return fmt.Errorf("epoch %d ended after %d of %d iterations: the shards hold fewer samples than their manifests say", e, ran, r.ipe)
	case ran == 0:
		return fmt.Errorf("epoch %d: --skip-bad-shards skipped %d bad shards and left no batch to train on", e, skipped)
	default:
		// Skipped shards shorten the epoch; the schedules stay on their
		// per-iteration course, so the run ends early.
		rec.note("pretrain: epoch %d ran %d of %d iterations (%d bad shards skipped)", e+1, ran, r.ipe, skipped)
	}
	if len(r.meta.StepsPerEpoch) == e { // a checkpoint of an older sslight left no list to extend
		r.meta.StepsPerEpoch = append(r.meta.StepsPerEpoch, ran)
	}
	r.meta.Epoch++
	r.meta.StepInEpoch = 0
	return nil
}

// stop writes the checkpoint of a run that stops before its last epoch
// (reason: a reason* constant) and returns the error Run reports with its
// Summary: nil after --max-steps, one wrapping ErrStopped after a signal,
// one wrapping ErrNonFiniteLoss after a step whose loss was not finite
// (diverged, which names it).
func (r *run) stop(ctx context.Context, rec *recorder, reason string, diverged error) error {
	if reason == reasonNonFinite {
		return r.undo(ctx, rec, diverged)
	}
	if err := rec.checkpoint(ctx, reason); err != nil {
		return err
	}
	if reason == reasonSignal {
		return fmt.Errorf("%w at step %d (checkpoint %s; continue with --resume): %v", ErrStopped, r.meta.Step, rec.sum.Checkpoint, ctx.Err())
	}
	return nil
}

// undo restores the state before the step whose loss was not finite (its
// forward pass moved BatchNorm statistics and the loss state, and the
// method may have updated parameters before it; the trained parameters
// have not been stepped), checkpoints it and returns the error that stops
// the run.
func (r *run) undo(ctx context.Context, rec *recorder, diverged error) error {
	if err := r.snap.restore(r.model); err != nil {
		return fmt.Errorf("%v, and the state before the step could not be restored: %w", diverged, err)
	}
	if err := rec.checkpoint(ctx, reasonNonFinite); err != nil {
		return fmt.Errorf("%v, and the state before the step could not be saved: %w", diverged, err)
	}
	return fmt.Errorf("%w: %v; the state before this step is checkpointed (checkpoints/%s): "+
		"lower SOLVER.BASE_LR or set SOLVER.CLIP_GRAD and continue from it with --init-from (a fresh schedule), or retry as is with --resume",
		ErrNonFiniteLoss, diverged, path.Base(rec.sum.Checkpoint))
}

// shuffleBuffer is Options.ShuffleBuffer, 4096 by default.
func (r *run) shuffleBuffer() int {
	if r.o.ShuffleBuffer > 0 {
		return r.o.ShuffleBuffer
	}
	return 4096
}
