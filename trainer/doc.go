// Package trainer is sslight's pre-training loop: it reads the shards
// sslight prepare wrote, turns them into normalised batches of views, and
// trains a backbone with DINO, SwAV or MoCo-v2 (SSL_METHOD) as the SSLight
// reference's trainers do, writing resumable checkpoints and metrics.
//
// Each method's training step is one function that reads top to bottom
// like its reference trainer's loop body — this iteration's schedule
// values, the forward passes, the loss (with the joint linear probe's),
// backward, the gradient rules, the optimiser step, the EMA updates — in
// its own file: dino.go (student and EMA teacher, after main_dino.py's
// train_one_epoch), swav.go (one network, prototypes, Sinkhorn, the SwAV
// queue), moco.go (query and EMA key encoders, the MoCo queue). The method
// interface (method.go) is that step plus what checkpoints need.
//
// Run (train.go) is the machinery around the steps, in three parts: the
// run's setup (run.go: config, shards, schedules, model and optimiser,
// resume or --init-from), the epoch driver (epoch.go: the loader's
// goroutine, cancellation, the undo of a step whose loss is not finite)
// and the recorder (recorder.go: metrics.jsonl, plots, checkpoints, the
// monitor, the Summary). Checkpoints (checkpoint.go) hold every network,
// the optimiser state and the loss state, so a resumed run ends
// byte-identical to an uninterrupted one.
package trainer
