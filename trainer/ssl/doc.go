// Package ssl holds the self-supervised objectives of sslight's trainer:
// the DINO, SwAV (with Sinkhorn-Knopp codes and the feature queue) and
// MoCo-v2 (with local views) losses, with SSLight's re-balanced multi-crop
// weighting L = LAMBDAS[0]·L_g/P_gg + LAMBDAS[1]·L_l/P_gl, and the heads
// that feed them (DINOHead; SwAVHead, projection and prototypes; MoCoHead,
// the projection), built from trainer/nn layers under torch's parameter
// names and checked against torch (testdata/gen_*_head.py).
//
// Each loss is one coarse gorgonia op: it takes the model outputs as float32
// nodes and returns the scalar loss node, and it differentiates itself
// analytically, so the trainer calls it inside its graph and gorgonia.Grad
// back-propagates through it. The op computes the loss and its gradient in
// one pass when the graph runs (the gradient node only scales the cached
// gradient by the incoming scalar): the losses update their state (DINO's
// center, SwAV's and MoCo's queues) in the forward, exactly where the
// reference does, and the gradient must see the state from before that
// update.
//
// Running the graph once is therefore one training step: every run of the
// forward advances the state. The state lives in plain Go values that the
// trainer checkpoints through State / LoadState.
//
// Semantics follow the SSLight reference (src/sslight/utils/loss.py,
// model/moco.py) run in float32 with torch 1.13 and are checked against
// golden vectors taken from it (testdata/golden/losses, see golden_test.go).
// Internally the losses compute in float64 and round their results to
// float32 once, except MoCo's two queue products (q·queue and its
// transpose for the gradient), which run through gorgonia's float32 BLAS as
// the reference's do.
//
// A loss value is not safe for concurrent use: one graph, one step at a time.
package ssl
