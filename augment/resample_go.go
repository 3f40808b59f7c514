package augment

// The portable resampling kernels. They are the reference for the SIMD
// kernels in kernels_amd64 (cgo builds), which must produce identical bytes.

// resampleRowsGo runs the horizontal pass: dst row y is src row rowOff+y,
// read from column colOff on, filtered by f (one output column per entry).
func resampleRowsGo(dst, src *Image, rowOff, colOff int, f *axisFilter) {
	ks := f.ksize
	w := dst.W
	for y := 0; y < dst.H; y++ {
		in := src.Pix[(rowOff+y)*src.Stride+3*colOff:]
		out := dst.Pix[y*dst.Stride : y*dst.Stride+3*w]
		for xx := 0; xx < w; xx++ {
			n := int(f.count[xx])
			s := 3 * int(f.start[xx])
			k := f.w[xx*ks : xx*ks+n]
			p := in[s : s+3*n]
			s0, s1, s2 := int32(1<<(resamplePrecision-1)), int32(1<<(resamplePrecision-1)), int32(1<<(resamplePrecision-1))
			for i, wt := range k {
				q := p[3*i : 3*i+3 : 3*i+3]
				s0 += int32(q[0]) * wt
				s1 += int32(q[1]) * wt
				s2 += int32(q[2]) * wt
			}
			o := out[3*xx : 3*xx+3 : 3*xx+3]
			o[0], o[1], o[2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
}

// resampleColsGo runs the vertical pass: dst row yy is the weighted sum of
// src rows rowOff+start[yy]..., columns from colOff on. acc is scratch space,
// returned (grown) for reuse.
func resampleColsGo(dst, src *Image, rowOff, colOff int, f *axisFilter, acc []int32) []int32 {
	n3 := 3 * dst.W
	acc = growInt32(acc, n3)
	ks := f.ksize
	for yy := 0; yy < dst.H; yy++ {
		for i := range acc {
			acc[i] = 1 << (resamplePrecision - 1)
		}
		s := rowOff + int(f.start[yy])
		n := int(f.count[yy])
		for i, wt := range f.w[yy*ks : yy*ks+n] {
			o := (s+i)*src.Stride + 3*colOff
			row := src.Pix[o : o+n3]
			a := acc[:len(row)]
			for x, v := range row {
				a[x] += int32(v) * wt
			}
		}
		out := dst.Pix[yy*dst.Stride : yy*dst.Stride+n3]
		a := acc[:len(out)]
		for x := range out {
			out[x] = clip8(a[x])
		}
	}
	return acc
}
