package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AttentionOp is multi-head scaled dot-product self-attention over the
// packed projections qkv [B, T, 3·D] (timm's layout: q, k, v, each split
// into heads of D/heads features) and returns the heads' outputs
// concatenated, [B, T, D], before the output projection.
func AttentionOp(qkv *gorgonia.Node, heads int, scale float64) (*gorgonia.Node, error) {
	return apply(&attnKernel{heads: heads, scale: scale}, qkv)
}

type attnKernel struct {
	heads int
	scale float64
}

func (k *attnKernel) name() string {
	return fmt.Sprintf("Attention{heads=%d scale=%g}", k.heads, k.scale)
}
func (k *attnKernel) diffWRT() []bool { return []bool{true} }
func (k *attnKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	s := in[0]
	if s.Dims() != 3 || s[2]%3 != 0 || k.heads < 1 || (s[2]/3)%k.heads != 0 {
		return nil, fmt.Errorf("qkv %v is not [B, T, 3·D] with D divisible by %d heads", s, k.heads)
	}
	return tensor.Shape{s[0], s[1], s[2] / 3}, nil
}

// softmaxRows turns each row of a [rows, n] into its softmax in place.
func softmaxRows(a []float32, n int) {
	for r := 0; r+n <= len(a); r += n {
		row := a[r : r+n]
		m := row[0]
		for _, v := range row {
			m = max(m, v)
		}
		var sum float64
		for i, v := range row {
			e := math.Exp(float64(v - m))
			row[i] = float32(e)
			sum += e
		}
		inv := float32(1 / sum)
		for i := range row {
			row[i] *= inv
		}
	}
}

func (k *attnKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	qkv := in[0]
	b, t, d3 := s[0][0], s[0][1], s[0][2]
	d := d3 / 3
	hd := d / k.heads
	bl := gorgonia.WhichBLAS()
	scratch := make([][]float32, numWorkers(b*k.heads))
	defer putAll(scratch)
	parallelFor(b*k.heads, func(w, lo, hi int) {
		if scratch[w] == nil {
			scratch[w] = getScratch(t * t)
		}
		a := scratch[w]
		for bh := lo; bh < hi; bh++ {
			bi, h := bh/k.heads, bh%k.heads
			base := bi*t*d3 + h*hd
			q, kk, v := qkv[base:], qkv[base+d:], qkv[base+2*d:]
			bl.Sgemm(blas.NoTrans, blas.Trans, t, t, hd, float32(k.scale), q, d3, kk, d3, 0, a, t)
			softmaxRows(a, t)
			bl.Sgemm(blas.NoTrans, blas.NoTrans, t, hd, t, 1, a, t, v, d3, 0, out[bi*t*d+h*hd:], d)
		}
	})
}

func (k *attnKernel) backward(_ int, dIn, grad, _ []float32, in [][]float32, s []tensor.Shape) {
	qkv := in[0]
	b, t, d3 := s[0][0], s[0][1], s[0][2]
	d := d3 / 3
	hd := d / k.heads
	bl := gorgonia.WhichBLAS()
	scratch := make([][]float32, numWorkers(b*k.heads))
	defer putAll(scratch)
	parallelFor(b*k.heads, func(w, lo, hi int) {
		if scratch[w] == nil {
			scratch[w] = getScratch(2 * t * t)
		}
		a, da := scratch[w][:t*t], scratch[w][t*t:]
		for bh := lo; bh < hi; bh++ {
			bi, h := bh/k.heads, bh%k.heads
			base := bi*t*d3 + h*hd
			q, kk, v := qkv[base:], qkv[base+d:], qkv[base+2*d:]
			dq, dk, dv := dIn[base:], dIn[base+d:], dIn[base+2*d:]
			do := grad[bi*t*d+h*hd:]
			// Recompute the attention weights A = softmax(scale·Q·Kᵀ).
			bl.Sgemm(blas.NoTrans, blas.Trans, t, t, hd, float32(k.scale), q, d3, kk, d3, 0, a, t)
			softmaxRows(a, t)
			// dV = Aᵀ·dO, dA = dO·Vᵀ.
			bl.Sgemm(blas.Trans, blas.NoTrans, t, hd, t, 1, a, t, do, d, 0, dv, d3)
			bl.Sgemm(blas.NoTrans, blas.Trans, t, t, hd, 1, do, d, v, d3, 0, da, t)
			// dS = A ⊙ (dA − rowsum(dA ⊙ A)), the softmax backward.
			for r := 0; r < t; r++ {
				ar, dr := a[r*t:(r+1)*t], da[r*t:(r+1)*t]
				var dot float32
				for i, x := range ar {
					dot += x * dr[i]
				}
				for i, x := range ar {
					dr[i] = x * (dr[i] - dot)
				}
			}
			// dQ = scale·dS·K, dK = scale·dSᵀ·Q.
			bl.Sgemm(blas.NoTrans, blas.NoTrans, t, hd, t, float32(k.scale), da, t, kk, d3, 0, dq, d3)
			bl.Sgemm(blas.Trans, blas.NoTrans, t, hd, t, float32(k.scale), da, t, q, d3, 0, dk, d3)
		}
	})
}

// TokensOp builds a ViT's input sequence: the patch embeddings
// patches [B, D, gh, gw] (a convolution's output) become tokens 1..gh·gw in
// row-major order, the class token cls [1, 1, D] goes first, and the
// position embeddings pos [1, 1+gh·gw, D] are added: [B, 1+gh·gw, D].
func TokensOp(patches, cls, pos *gorgonia.Node) (*gorgonia.Node, error) {
	return apply(tokensKernel{}, patches, cls, pos)
}

type tokensKernel struct{}

func (tokensKernel) name() string    { return "Tokens" }
func (tokensKernel) diffWRT() []bool { return []bool{true, true, true} }
func (tokensKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	p, c, pos := in[0], in[1], in[2]
	if p.Dims() != 4 || c.Dims() != 3 || pos.Dims() != 3 {
		return nil, fmt.Errorf("want patches [B,D,gh,gw], cls [1,1,D], pos [1,T,D]; have %v %v %v", p, c, pos)
	}
	d, n := p[1], p[2]*p[3]
	if c[0] != 1 || c[1] != 1 || c[2] != d || pos[0] != 1 || pos[1] != 1+n || pos[2] != d {
		return nil, fmt.Errorf("cls %v and pos %v do not fit patches %v", c, pos, p)
	}
	return tensor.Shape{p[0], 1 + n, d}, nil
}
func (tokensKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	p, cls, pos := in[0], in[1], in[2]
	b, d, n := s[0][0], s[0][1], s[0][2]*s[0][3]
	t := 1 + n
	for bi := 0; bi < b; bi++ {
		o := out[bi*t*d : (bi+1)*t*d]
		for j := 0; j < d; j++ {
			o[j] = cls[j] + pos[j]
		}
		pb := p[bi*d*n : (bi+1)*d*n]
		for j := 0; j < d; j++ {
			pj := pb[j*n : (j+1)*n]
			for i, v := range pj {
				o[(1+i)*d+j] = v + pos[(1+i)*d+j]
			}
		}
	}
}
func (tokensKernel) backward(wrt int, dIn, grad, _ []float32, _ [][]float32, s []tensor.Shape) {
	b, d, n := s[0][0], s[0][1], s[0][2]*s[0][3]
	t := 1 + n
	for bi := 0; bi < b; bi++ {
		g := grad[bi*t*d : (bi+1)*t*d]
		switch wrt {
		case 0:
			pb := dIn[bi*d*n : (bi+1)*d*n]
			for j := 0; j < d; j++ {
				for i := 0; i < n; i++ {
					pb[j*n+i] = g[(1+i)*d+j]
				}
			}
		case 1:
			for j := 0; j < d; j++ {
				dIn[j] += g[j]
			}
		case 2:
			for i, v := range g {
				dIn[i] += v
			}
		}
	}
}

// ClassTokenOp returns token 0 of x [B, T, D] as [B, D].
func ClassTokenOp(x *gorgonia.Node) (*gorgonia.Node, error) {
	return apply(clsKernel{}, x)
}

type clsKernel struct{}

func (clsKernel) name() string    { return "ClassToken" }
func (clsKernel) diffWRT() []bool { return []bool{true} }
func (clsKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 3 {
		return nil, fmt.Errorf("x %v is not [B, T, D]", in[0])
	}
	return tensor.Shape{in[0][0], in[0][2]}, nil
}
func (clsKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	b, t, d := s[0][0], s[0][1], s[0][2]
	for bi := 0; bi < b; bi++ {
		copy(out[bi*d:(bi+1)*d], in[0][bi*t*d:bi*t*d+d])
	}
}
func (clsKernel) backward(_ int, dIn, grad, _ []float32, _ [][]float32, s []tensor.Shape) {
	b, t, d := s[0][0], s[0][1], s[0][2]
	for bi := 0; bi < b; bi++ {
		copy(dIn[bi*t*d:bi*t*d+d], grad[bi*d:(bi+1)*d])
	}
}

// PosEmbedGrid returns the patch grid (rows, cols) of an h×w input, the
// grid DINO's interpolate_pos_encoding resizes the position embeddings to.
func PosEmbedGrid(h, w, patch int) (rows, cols int) {
	return h / patch, w / patch
}

// InterpolatePosEmbedOp resizes pos [1, 1+n·n, D] (class position first) to
// [1, 1+rows·cols, D] for an h×w input exactly as DINO's
// interpolate_pos_encoding: torch bicubic (A = −0.75, align_corners=False,
// edge-clamped taps) with scale factors ((h/patch+0.1)/n, (w/patch+0.1)/n),
// i.e. source coordinate (dst+0.5)·n/(h/patch+0.1) − 0.5 along rows. The
// class position is passed through.
func InterpolatePosEmbedOp(pos *gorgonia.Node, h, w, patch int) (*gorgonia.Node, error) {
	s := pos.Shape()
	if s.Dims() != 3 || s[0] != 1 {
		return nil, fmt.Errorf("InterpolatePosEmbed: pos %v is not [1, 1+n·n, D]", s)
	}
	n := int(math.Round(math.Sqrt(float64(s[1] - 1))))
	if n*n != s[1]-1 {
		return nil, fmt.Errorf("InterpolatePosEmbed: %d patch positions are not a square grid", s[1]-1)
	}
	rows, cols := PosEmbedGrid(h, w, patch)
	if rows < 1 || cols < 1 {
		return nil, fmt.Errorf("InterpolatePosEmbed: input %dx%d smaller than one %d-pixel patch", h, w, patch)
	}
	sr, sc := float64(rows)+0.1, float64(cols)+0.1
	k := &posInterpKernel{n: n, rows: rows, cols: cols, sr: sr, sc: sc,
		wr: bicubicWeights(n, rows, sr), wc: bicubicWeights(n, cols, sc)}
	return apply(k, pos)
}

// bicubicWeights returns the [out, in] matrix of torch's upsample_bicubic2d
// along one axis for scale factor out/in given as scaled/in.
func bicubicWeights(in, out int, scaled float64) []float64 {
	const a = -0.75
	cubic1 := func(x float64) float64 { return ((a+2)*x-(a+3))*x*x + 1 }   // |x| <= 1
	cubic2 := func(x float64) float64 { return ((a*x-5*a)*x+8*a)*x - 4*a } // 1 < |x| < 2
	ratio := float64(in) / scaled                                          // 1/scale_factor
	wts := make([]float64, out*in)
	for o := 0; o < out; o++ {
		src := (float64(o)+0.5)*ratio - 0.5
		i0 := math.Floor(src)
		t := src - i0
		coeffs := [4]float64{cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)}
		for j, c := range coeffs {
			idx := min(max(int(i0)-1+j, 0), in-1)
			wts[o*in+idx] += c
		}
	}
	return wts
}

type posInterpKernel struct {
	n, rows, cols int
	sr, sc        float64   // grid sizes the scale factors stand for (rows+0.1, cols+0.1)
	wr, wc        []float64 // [rows, n] and [cols, n]
}

func (k *posInterpKernel) name() string {
	return fmt.Sprintf("InterpolatePosEmbed{%d->%dx%d %g %g}", k.n, k.rows, k.cols, k.sr, k.sc)
}
func (k *posInterpKernel) diffWRT() []bool { return []bool{true} }
func (k *posInterpKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return tensor.Shape{1, 1 + k.rows*k.cols, in[0][2]}, nil
}

func (k *posInterpKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	pos := in[0]
	d := s[0][2]
	copy(out[:d], pos[:d])
	acc := make([]float64, d)
	for r := 0; r < k.rows; r++ {
		for c := 0; c < k.cols; c++ {
			clear(acc)
			for i := 0; i < k.n; i++ {
				wi := k.wr[r*k.n+i]
				if wi == 0 {
					continue
				}
				for j := 0; j < k.n; j++ {
					w := wi * k.wc[c*k.n+j]
					if w == 0 {
						continue
					}
					src := pos[(1+i*k.n+j)*d : (2+i*k.n+j)*d]
					for e, v := range src {
						acc[e] += w * float64(v)
					}
				}
			}
			o := out[(1+r*k.cols+c)*d : (2+r*k.cols+c)*d]
			for e := range o {
				o[e] = float32(acc[e])
			}
		}
	}
}

func (k *posInterpKernel) backward(_ int, dIn, grad, _ []float32, _ [][]float32, s []tensor.Shape) {
	d := s[0][2]
	copy(dIn[:d], grad[:d])
	for r := 0; r < k.rows; r++ {
		for c := 0; c < k.cols; c++ {
			g := grad[(1+r*k.cols+c)*d : (2+r*k.cols+c)*d]
			for i := 0; i < k.n; i++ {
				wi := k.wr[r*k.n+i]
				for j := 0; j < k.n; j++ {
					w := float32(wi * k.wc[c*k.n+j])
					if w == 0 {
						continue
					}
					dst := dIn[(1+i*k.n+j)*d : (2+i*k.n+j)*d]
					for e, v := range g {
						dst[e] += w * v
					}
				}
			}
		}
	}
}

// DropPathOp is stochastic depth: in training each sample of x [B, ...] is
// zeroed with probability p and the others scaled by 1/(1−p); the mask is
// drawn from rng at every forward run and kept for its backward.
func DropPathOp(x *gorgonia.Node, p float64, rng *rand.Rand) (*gorgonia.Node, error) {
	if p < 0 || p >= 1 {
		return nil, fmt.Errorf("DropPath: probability %g outside [0, 1)", p)
	}
	return apply(&dropPathKernel{p: p, rng: rng}, x)
}

type dropPathKernel struct {
	p    float64
	mu   sync.Mutex
	rng  *rand.Rand
	mask []float32
}

func (k *dropPathKernel) name() string    { return fmt.Sprintf("DropPath{%g %p}", k.p, k) }
func (k *dropPathKernel) diffWRT() []bool { return []bool{true} }
func (k *dropPathKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() < 1 {
		return nil, fmt.Errorf("x is a scalar")
	}
	return in[0].Clone(), nil
}
func (k *dropPathKernel) forward(out []float32, in [][]float32, s []tensor.Shape) {
	k.mu.Lock()
	defer k.mu.Unlock()
	b := s[0][0]
	if len(k.mask) != b {
		k.mask = make([]float32, b)
	}
	keep := 1 - k.p
	for i := range k.mask {
		k.mask[i] = 0
		if k.rng.Float64() < keep {
			k.mask[i] = float32(1 / keep)
		}
	}
	k.scale(out, in[0], b)
}
func (k *dropPathKernel) scale(dst, src []float32, b int) {
	per := len(src) / b
	for i, m := range k.mask {
		d, x := dst[i*per:(i+1)*per], src[i*per:(i+1)*per]
		for j, v := range x {
			d[j] = v * m
		}
	}
}
func (k *dropPathKernel) backward(_ int, dIn, grad, _ []float32, _ [][]float32, s []tensor.Shape) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.scale(dIn, grad, s[0][0])
}
