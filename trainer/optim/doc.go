// Package optim holds the optimisation side of sslight's trainer: the
// learning-rate, weight-decay, teacher-momentum and teacher-temperature
// schedules, the parameter groups, the LARS, SGD and AdamW optimisers, the
// teacher EMA update and the gradient clipping / freezing helpers.
//
// Everything follows the SSLight reference (src/sslight/utils/scheduler.py,
// optimizer.py, param_utils.py and the trainers in src/sslight/engine) run in
// float32 with torch 1.13, and is checked against golden vectors taken from
// it (testdata/golden/losses, see golden_test.go).
//
// The package is plain Go over float32 slices: the trainer hands it the
// []float32 backing arrays of its tensors as [Param] values, so it does not
// import gorgonia (or anything outside the standard library).
//
// One training iteration uses it in the reference's order:
//
//	lr, wd, m := sched.LR[step], sched.WD[step], sched.TeacherMomentum[step]
//	// forward, loss, backward into p.Grad ...
//	norms = optim.ClipGradients(student, clip, norms[:0])   // when SOLVER.CLIP_GRAD > 0
//	optim.CancelGradientsLastLayer(student, epoch, step, freeze)
//	err := opt.Step(lr, wd)                                // group 0: wd, others: wd·WDFactor
//	err = optim.EMAParams(teacher, student, m)
//
// Arithmetic follows torch's element-wise float32 semantics: every scalar
// hyper-parameter is rounded to float32 before it meets a tensor, and each
// tensor operation of the reference is rounded to float32 separately (written
// as explicit float32 conversions so no platform fuses a multiply-add and
// results stay identical on every architecture). Reductions (norms) are
// accumulated in float64 and rounded once; see sumSquares.
package optim
