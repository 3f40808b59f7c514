// Package trainer is sslight's pre-training loop: it reads the shards
// sslight prepare wrote, turns them into normalised batches of views, and
// trains a backbone with DINO, SwAV or MoCo-v2 (SSL_METHOD) as the SSLight
// reference's trainers do, writing resumable checkpoints and metrics.
//
// Run is one loop for the three methods. Everything method-specific sits
// behind a small interface (method, in method.go) with one implementation
// per file: dino.go (student and EMA teacher), swav.go (one network,
// prototypes, the SwAV queue), moco.go (query and EMA key encoders, the
// MoCo queue). Per step the loop calls the method's hooks in the
// reference's order: beforeStep (DINO's teacher temperature, SwAV's
// prototype normalisation, MoCo's key-encoder momentum update),
// forwardBackward, adjustGradients (clipping, frozen layers or
// prototypes), the optimiser step and afterStep (DINO's teacher EMA); and
// startEpoch before an epoch's first step (SwAV's queue).
//
// Checkpoints (checkpoint.go) hold every network, the optimiser state and
// the loss state, so a resumed run ends byte-identical to an uninterrupted
// one.
package trainer
