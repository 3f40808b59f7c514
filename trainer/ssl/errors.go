package ssl

import (
	"errors"

	"github.com/sslight-go/sslight/trainer/nn"
)

// ErrConfig reports a loss configuration the reference cannot run (for
// example re-balanced weighting with no local views, whose local term
// divides by zero pairs).
var ErrConfig = errors.New("invalid loss configuration")

// ErrShape reports inputs whose shapes do not fit the loss configuration
// (rows not a whole number of views, mismatched widths, a state of the wrong
// size).
var ErrShape = nn.ErrShape
