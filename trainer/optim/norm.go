package optim

import "math"

// Norms are accumulated in float64 and rounded to float32 once. torch's
// float32 norm accumulates in float32 over a blocked (pairwise-like) order,
// which is within a few ulps of the exactly rounded value; accumulating in
// float64 gives that exactly rounded value for any realistic size (squares
// of float32 are exact in float64), does not depend on the summation order,
// and so sits within the golden tolerance (1e-6 relative) of torch's result
// while being reproducible across platforms. The extra cost is a
// float32→float64 conversion per element in a memory-bound loop.

// sumSquares returns Σ x² accumulated in float64.
func sumSquares(x []float32) float64 {
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		f0, f1, f2, f3 := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
		a0 += f0 * f0
		a1 += f1 * f1
		a2 += f2 * f2
		a3 += f3 * f3
	}
	for ; i < len(x); i++ {
		f := float64(x[i])
		a0 += f * f
	}
	return (a0 + a1) + (a2 + a3)
}

// norm32 returns the Euclidean norm of x rounded to float32, as torch.norm
// returns it for a float32 tensor.
func norm32(x []float32) float32 {
	return float32(math.Sqrt(sumSquares(x)))
}

// larsSumSquares returns Σ p² and Σ dp² with dp = g + wd·p rounded to
// float32 per element (torch's dp = grad.add(p, alpha=wd)), in one pass and
// without storing dp.
func larsSumSquares(p, g []float32, wd float32) (pp, dd float64) {
	g = g[:len(p)]
	// Four independent accumulators per sum hide the latency of the float64
	// adds (the loop is otherwise bound by one add chain).
	var p0, p1, p2, p3, d0, d1, d2, d3 float64
	i := 0
	for ; i+4 <= len(p); i += 4 {
		pv := p[i : i+4 : i+4]
		gv := g[i : i+4 : i+4]
		x0, x1, x2, x3 := float64(pv[0]), float64(pv[1]), float64(pv[2]), float64(pv[3])
		e0 := float64(gv[0] + float32(wd*pv[0]))
		e1 := float64(gv[1] + float32(wd*pv[1]))
		e2 := float64(gv[2] + float32(wd*pv[2]))
		e3 := float64(gv[3] + float32(wd*pv[3]))
		p0 += x0 * x0
		p1 += x1 * x1
		p2 += x2 * x2
		p3 += x3 * x3
		d0 += e0 * e0
		d1 += e1 * e1
		d2 += e2 * e2
		d3 += e3 * e3
	}
	for ; i < len(p); i++ {
		x := float64(p[i])
		e := float64(g[i] + float32(wd*p[i]))
		p0 += x * x
		d0 += e * e
	}
	return (p0 + p1) + (p2 + p3), (d0 + d1) + (d2 + d3)
}
