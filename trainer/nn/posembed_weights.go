package nn

import "fmt"

// PosEmbedWeights returns the interpolation InterpolatePosEmbedOp applies to
// an n×n grid of position embeddings for an h×w input: the target grid
// (rows, cols) and the bicubic weights along each axis, wr [rows, n] and
// wc [cols, n], so that target position (r, c) is
// Σ_ij wr[r·n+i]·wc[c·n+j]·pos[i·n+j] (the class position passes through).
// For executors that run the op elsewhere (trainer/gpu).
func PosEmbedWeights(n, h, w, patch int) (rows, cols int, wr, wc []float64, err error) {
	rows, cols = PosEmbedGrid(h, w, patch)
	if n < 1 || rows < 1 || cols < 1 {
		return 0, 0, nil, nil, fmt.Errorf("PosEmbedWeights: grid %d for a %dx%d input with %d-pixel patches", n, h, w, patch)
	}
	sr, sc := float64(rows)+0.1, float64(cols)+0.1
	return rows, cols, bicubicWeights(n, rows, sr), bicubicWeights(n, cols, sc), nil
}
