package eval

import (
	"fmt"
	"math"
)

// Neighbour is one of a sample's nearest neighbours within its own set:
// the row Index and its cosine Similarity.
type Neighbour struct {
	Index      int
	Similarity float32
}

// Nearest returns, for every row of the row-major [n, dim] matrix x, its k
// nearest other rows by cosine similarity, most similar first: the
// exact search of KNN (rows L2-normalised as F.normalize does, blocked
// matrix products through BLAS, GOMAXPROCS workers over chunks of rows),
// with the set as its own train and test set and each row's own match
// left out. k larger than n−1 is capped at n−1. Ties go to the lower row
// index, as in KNN, so the result does not depend on the number of
// workers.
//
// The cost is n²·dim multiply-adds and n·(k+1) neighbours in memory (the
// similarity blocks are small and reused): for 100,000 rows of 512 values
// about 5·10¹² multiply-adds, tens of minutes on two cores.
func Nearest(x []float32, dim, k int) ([][]Neighbour, error) {
	if dim <= 0 || len(x)%dim != 0 {
		return nil, fmt.Errorf("nearest: %d values do not make rows of dimension %d: %w", len(x), dim, ErrInput)
	}
	if k <= 0 {
		return nil, fmt.Errorf("nearest: k = %d must be positive: %w", k, ErrInput)
	}
	n := len(x) / dim
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("nearest: %d rows: at most 2³¹−1 are supported: %w", n, ErrInput)
	}
	// The labels are not used: the set is checked as a one-class set.
	f := Features{Dim: dim, X: x, Labels: make([]int, n)}
	if err := f.check("nearest", 1); err != nil {
		return nil, err
	}
	k = min(k, n-1)
	out := make([][]Neighbour, n)
	if k == 0 {
		for i := range out {
			out[i] = []Neighbour{}
		}
		return out, nil
	}
	// k+1 candidates: a row is (nearly always) its own nearest match;
	// should rounding or duplicates push it out, the first k remain.
	search(f, f, k+1, func() (func(int, neighbours), func()) {
		visit := func(i int, nb neighbours) {
			row := make([]Neighbour, 0, k)
			for j := range nb.idx {
				if int(nb.idx[j]) == i || len(row) == k {
					continue
				}
				row = append(row, Neighbour{Index: int(nb.idx[j]), Similarity: nb.sim[j]})
			}
			out[i] = row
		}
		return visit, func() {}
	})
	return out, nil
}
