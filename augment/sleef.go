package augment

import "math"

// torchExpf is torch.exp on a float32 CPU tensor as torch 1.13 computes it
// with its AVX2 kernels: SLEEF's expf_u10 (FMA variant). It is not correctly
// rounded (about 7% of results in RandomResizedCrop's log-ratio range differ
// by one ulp from float32(math.Exp)), and RandomResizedCrop's aspect ratio
// is torch.exp of a float32 draw, so matching torch's boxes needs the same
// polynomial.
func torchExpf(d float32) float32 {
	const (
		rln2 = float32(1.442695040888963407359924681001892137426645954152985934135449406931)
		l2u  = float32(0.693145751953125)
		l2l  = float32(1.428606765330187045e-06)
	)
	if d < -104 {
		return 0
	}
	if d > 100 {
		return float32(math.Inf(1))
	}
	q := int(math.RoundToEven(float64(d * rln2)))
	qf := float32(q)
	s := fma32(qf, -l2u, d)
	s = fma32(qf, -l2l, s)
	u := float32(0.000198527617612853646278381)
	u = fma32(u, s, 0.00139304355252534151077271)
	u = fma32(u, s, 0.00833336077630519866943359)
	u = fma32(u, s, 0.0416664853692054748535156)
	u = fma32(u, s, 0.166666671633720397949219)
	u = fma32(u, s, 0.5)
	u = 1 + fma32(s*s, u, s)
	return float32(math.Ldexp(float64(u), q))
}

// fma32 is a float32 fused multiply-add (x·y + z rounded once to float32),
// computed exactly through float64: the product of two float32 values is
// exact in float64 and TwoSum gives the rounding error of the addition, which
// settles the only double-rounding case (a float64 sum exactly halfway
// between two float32 values).
func fma32(x, y, z float32) float32 {
	p := float64(float64(x) * float64(y)) // exact; the conversion forbids fusion
	zz := float64(z)
	s := p + zz
	bp := s - zz
	e := (p - bp) + (zz - (s - bp))
	f := float32(s)
	if e == 0 || float64(f) == s {
		return f
	}
	// s is not a float32; find its other float32 neighbour g.
	g := math.Nextafter32(f, float32(math.Inf(1)))
	if float64(f) > s {
		g = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	if s != (float64(f)+float64(g))/2 {
		return f
	}
	// Exactly halfway in float64: the discarded error decides.
	if (e > 0) == (g > f) {
		return g
	}
	return f
}
