package augment

import "errors"

// Sentinel errors, wrapped with context by the functions that return them, so
// callers (the multi-crop DoFn, the dead-letter writer) can classify failures
// with errors.Is.
var (
	// ErrEmptyImage: the source image has no pixels.
	ErrEmptyImage = errors.New("empty image")
	// ErrBadBox: a crop box is empty or reaches outside the image.
	ErrBadBox = errors.New("crop box outside image")
	// ErrBadSize: a requested output size is not positive.
	ErrBadSize = errors.New("invalid output size")
	// ErrBadFactor: an enhancement factor or radius is outside its domain
	// (torchvision raises ValueError for the same inputs).
	ErrBadFactor = errors.New("invalid factor")
	// ErrAliased: an operation that cannot work in place got dst == src.
	ErrAliased = errors.New("destination aliases source")
	// ErrShortBuffer: a caller-provided buffer is too small.
	ErrShortBuffer = errors.New("buffer too small")
	// ErrBadPolicy: a multi-crop policy or recorded view parameters are invalid.
	ErrBadPolicy = errors.New("invalid multi-crop policy")
)
