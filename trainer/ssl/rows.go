package ssl

import "math"

// softmaxRow writes exp(x·scale − max) into e (float64, len(x)) and returns
// log Σ exp(x·scale): the row's log-sum-exp. e then holds the unnormalised
// softmax, whose sum is exp(lse − max); callers divide by it.
func softmaxRow(e []float64, x []float32, scale float64) (lse, z float64) {
	m := math.Inf(-1)
	for _, v := range x {
		if s := float64(v) * scale; s > m {
			m = s
		}
	}
	for i, v := range x {
		ei := math.Exp(float64(v)*scale - m)
		e[i] = ei
		z += ei
	}
	return m + math.Log(z), z
}

// lambdaWeights returns the weight of one global-global pair and of one
// pair involving a local view in L = λ0·g/n_g + λ1·l/n_l (globalOnly:
// L = g/n_g).
func lambdaWeights(lambdas [2]float64, nG, nL int, globalOnly bool) (wg, wl float64) {
	if globalOnly {
		return 1 / float64(nG), 0
	}
	return lambdas[0] / float64(nG), lambdas[1] / float64(nL)
}
