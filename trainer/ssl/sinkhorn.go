package ssl

import (
	"fmt"
	"math"
)

// Sinkhorn writes into dst [n, k] SwAV's soft cluster assignments of the
// scores [n, k] (n samples, k prototypes): the reference's
// distributed_sinkhorn on one process. With Q = exp(scores/eps)ᵀ [k, n]:
// Q /= ΣQ; iters times (each prototype row /= its sum, /= k; each sample
// column /= its sum, /= n); Q *= n; dst = Qᵀ, whose rows sum to 1.
//
// There is no max-subtraction, as in the reference: scores are cosine
// similarities in [-1, 1], so exp(scores/eps) stays finite. Scores that
// overflow (or are not finite) are an error. The computation is in float64.
func Sinkhorn(dst, scores []float32, n, k int, eps float64, iters int) error {
	if n < 1 || k < 1 || len(scores) != n*k || len(dst) != n*k {
		return fmt.Errorf("sinkhorn: %d scores and %d outputs for [%d, %d]: %w", len(scores), len(dst), n, k, ErrShape)
	}
	q := make([]float64, n*k)
	for i, v := range scores {
		q[i] = float64(v)
	}
	if err := sinkhorn64(q, n, k, eps, iters, make([]float64, k)); err != nil {
		return err
	}
	for i, v := range q {
		dst[i] = float32(v)
	}
	return nil
}

// sinkhorn64 replaces the scores q [n, k] by their assignments in place;
// colSum is scratch of k values.
func sinkhorn64(q []float64, n, k int, eps float64, iters int, colSum []float64) error {
	if !(eps > 0) || iters < 0 {
		return fmt.Errorf("sinkhorn: epsilon %v, %d iterations: %w", eps, iters, ErrConfig)
	}
	inv := 1 / eps
	var total float64
	for i, v := range q {
		e := math.Exp(v * inv)
		q[i] = e
		total += e
	}
	if math.IsInf(total, 0) || math.IsNaN(total) || total == 0 {
		return fmt.Errorf("sinkhorn: exp(scores/%v) sums to %v; scores must be finite and of moderate size (cosine similarities)", eps, total)
	}
	scale(q, 1/total)
	fk, fn := float64(k), float64(n)
	for it := 0; it < iters; it++ {
		// Q's rows are prototypes: sums over samples, the columns of q.
		clear(colSum)
		for s := 0; s < n; s++ {
			for j, v := range q[s*k : (s+1)*k] {
				colSum[j] += v
			}
		}
		for j, v := range colSum {
			if !(v > 0) || math.IsInf(v, 0) {
				return fmt.Errorf("sinkhorn: prototype %d has total weight %v at iteration %d; scores must be of moderate size (cosine similarities)", j, v, it)
			}
			colSum[j] = 1 / (v * fk)
		}
		// Q's columns are samples: the rows of q.
		for s := 0; s < n; s++ {
			row := q[s*k : (s+1)*k]
			var rs float64
			for j := range row {
				row[j] *= colSum[j]
				rs += row[j]
			}
			if !(rs > 0) || math.IsInf(rs, 0) {
				return fmt.Errorf("sinkhorn: sample %d has total weight %v at iteration %d; scores must be of moderate size (cosine similarities)", s, rs, it)
			}
			scale(row, 1/(rs*fn))
		}
	}
	scale(q, fn)
	return nil
}

func scale(x []float64, a float64) {
	for i := range x {
		x[i] *= a
	}
}
