package eval

import (
	"errors"
	"fmt"
	"math"
)

// ErrInput marks bad input to a protocol (empty sets, shape mismatches,
// labels outside the class range, non-finite values, bad settings). Every
// such error wraps it and names the offending input.
var ErrInput = errors.New("eval: invalid input")

// Features is a set of feature vectors with their class labels: row i of X
// (X[i*Dim : (i+1)*Dim]) is the feature of sample i and Labels[i] its class.
type Features struct {
	Dim    int
	X      []float32
	Labels []int
}

// Len returns the number of samples.
func (f Features) Len() int { return len(f.Labels) }

// Row returns sample i's feature vector. It shares X.
func (f Features) Row(i int) []float32 { return f.X[i*f.Dim : (i+1)*f.Dim : (i+1)*f.Dim] }

// check validates f as the set called name for a protocol over classes
// classes. It also rejects NaN and infinite values: one of them poisons
// every similarity or gradient it meets, and the result would be silently
// wrong rather than failing. The scan is linear, cheap next to any protocol.
func (f Features) check(name string, classes int) error {
	n := len(f.Labels)
	switch {
	case n == 0:
		return fmt.Errorf("%s features: empty set: %w", name, ErrInput)
	case f.Dim <= 0:
		return fmt.Errorf("%s features: dimension %d must be positive: %w", name, f.Dim, ErrInput)
	case len(f.X) != n*f.Dim:
		return fmt.Errorf("%s features: %d values for %d labels × dimension %d (want %d): %w",
			name, len(f.X), n, f.Dim, n*f.Dim, ErrInput)
	}
	for i, l := range f.Labels {
		if l < 0 || l >= classes {
			return fmt.Errorf("%s features: label %d of sample %d outside [0, %d): %w", name, l, i, classes, ErrInput)
		}
	}
	for i, v := range f.X {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s features: sample %d, component %d is %v: %w", name, i/f.Dim, i%f.Dim, v, ErrInput)
		}
	}
	return nil
}

// checkPair validates a train and a test set that must share a dimension.
func checkPair(train, test Features, classes int) error {
	if classes <= 0 {
		return fmt.Errorf("%d classes: must be positive: %w", classes, ErrInput)
	}
	if err := train.check("train", classes); err != nil {
		return err
	}
	if err := test.check("test", classes); err != nil {
		return err
	}
	if train.Dim != test.Dim {
		return fmt.Errorf("train features have dimension %d, test features %d: %w", train.Dim, test.Dim, ErrInput)
	}
	return nil
}

// rankOf returns the position target would take if the scores were sorted
// in decreasing order, ties broken by the lower class index (a stable
// descending sort). Counting beats sorting: only the target's position
// matters for top-1 and top-5.
func rankOf[T float32 | float64](scores []T, target int) int {
	s := scores[target]
	r := 0
	for c, v := range scores {
		if v > s || (v == s && c < target) {
			r++
		}
	}
	return r
}

// percent returns 100·hits/total, DINO's way of printing an accuracy.
func percent(hits, total int) float64 { return float64(hits) * 100 / float64(total) }
