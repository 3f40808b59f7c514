package optim

import "errors"

// Sentinel errors, wrapped with context by the functions that return them, so
// callers can tell the class of a failure with errors.Is.
var (
	// ErrInvalidSchedule reports schedule arguments the reference would
	// reject (its length assertion) or that make no schedule at all.
	ErrInvalidSchedule = errors.New("invalid schedule")
	// ErrShape reports a parameter whose data, gradient or shape disagree.
	ErrShape = errors.New("parameter shape mismatch")
	// ErrInvalidParams reports a parameter list an optimiser cannot hold:
	// nil or unnamed entries, duplicate names.
	ErrInvalidParams = errors.New("invalid parameters")
	// ErrState reports optimiser state that does not fit the parameters it
	// is loaded into.
	ErrState = errors.New("invalid optimizer state")
	// ErrUnknownOptimizer reports a SOLVER.OPTIMIZING_METHOD other than
	// LARS, SGD or AdamW.
	ErrUnknownOptimizer = errors.New("unknown optimizer")
)
