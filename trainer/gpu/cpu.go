package gpu

import (
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	gonumblas "gonum.org/v1/gonum/blas/gonum"

	"github.com/sslight-go/sslight/trainer/cuda"
)

// CPU is the executor's reference backend: every op in plain Go (gonum's
// SGEMM for the products), written from trainer/nn's semantics, so that the
// executor's programs can be checked against the gorgonia backbones on any
// machine. It is single-threaded and meant for tests and checks, not
// training.
type CPU struct {
	raw   *hostMemory
	alloc *Allocator
}

// hostMemory is a RawAllocator over Go slices: the addresses are handles
// into a map (a tensor's memory is never handed out as a pointer).
type hostMemory struct {
	mu   sync.Mutex
	next cuda.DevPtr
	mem  map[cuda.DevPtr][]float32
}

func (h *hostMemory) Malloc(bytes int) (cuda.DevPtr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next += cuda.DevPtr(bytes + 256)
	h.mem[h.next] = make([]float32, (bytes+3)/4)
	return h.next, nil
}

func (h *hostMemory) Free(p cuda.DevPtr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.mem[p]; !ok {
		return fmt.Errorf("gpu: host memory %#x freed but not allocated", p)
	}
	delete(h.mem, p)
	return nil
}

// NewCPU returns a CPU backend.
func NewCPU() *CPU {
	raw := &hostMemory{next: 0x10000, mem: map[cuda.DevPtr][]float32{}}
	return &CPU{raw: raw, alloc: NewAllocator(raw)}
}

// Name implements Backend.
func (c *CPU) Name() string { return "cpu" }

// Allocator implements Backend.
func (c *CPU) Allocator() *Allocator { return c.alloc }

// NewTensor implements Backend.
func (c *CPU) NewTensor(shape ...int) (*Tensor, error) { return newTensor(c.alloc, 0, shape) }

// Release implements Backend.
func (c *CPU) Release(t *Tensor) {
	if t != nil {
		c.alloc.Free(t.blk)
	}
}

// data returns t's elements.
func (c *CPU) data(t *Tensor) []float32 {
	c.raw.mu.Lock()
	defer c.raw.mu.Unlock()
	return c.raw.mem[t.blk.Ptr][:t.Len()]
}

// Upload implements Backend.
func (c *CPU) Upload(dst *Tensor, src []float32) error {
	if len(src) != dst.Len() {
		return fmt.Errorf("gpu: upload of %d values into %v", len(src), dst)
	}
	copy(c.data(dst), src)
	return nil
}

// Download implements Backend.
func (c *CPU) Download(dst []float32, src *Tensor) error {
	if len(dst) != src.Len() {
		return fmt.Errorf("gpu: download of %v into %d values", src, len(dst))
	}
	copy(dst, c.data(src))
	return nil
}

// Synchronize implements Backend (the CPU runs every op at once).
func (c *CPU) Synchronize() error { return nil }

// Zero implements Backend.
func (c *CPU) Zero(t *Tensor) error {
	clear(c.data(t))
	return nil
}

// AddTo implements Backend.
func (c *CPU) AddTo(dst, src *Tensor) error {
	if err := needSame("AddTo", dst, src); err != nil {
		return err
	}
	d, s := c.data(dst), c.data(src)
	for i, v := range s {
		d[i] += v
	}
	return nil
}

// Add implements Backend.
func (c *CPU) Add(y, a, b *Tensor) error {
	if err := needSame("Add", y, a, b); err != nil {
		return err
	}
	yd, ad, bd := c.data(y), c.data(a), c.data(b)
	for i := range yd {
		yd[i] = ad[i] + bd[i]
	}
	return nil
}

func needSame(op string, ts ...*Tensor) error {
	for _, t := range ts[1:] {
		if !sameShape(t.Shape, ts[0].Shape) {
			return fmt.Errorf("gpu: %s: shapes %v and %v differ", op, ts[0].Shape, t.Shape)
		}
	}
	return nil
}

var blas32 = gonumblas.Implementation{}

// convShapes checks x, w and y against c and returns the output size.
func convShapes(c cuda.ConvSpec, x, w, y []int) (oh, ow int, err error) {
	if err := c.Check(); err != nil {
		return 0, 0, err
	}
	oh, ow = c.Out()
	if !sameShape(x, []int{c.N, c.C, c.H, c.W}) || !sameShape(w, []int{c.O, c.C / c.Groups, c.KH, c.KW}) ||
		!sameShape(y, []int{c.N, c.O, oh, ow}) {
		return 0, 0, fmt.Errorf("gpu: convolution %+v: x %v, w %v, y %v do not fit", c, x, w, y)
	}
	return oh, ow, nil
}

// im2col unfolds one image's group xg [cg, h, w] into col [cg·kh·kw, oh·ow].
func im2col(c cuda.ConvSpec, col, xg []float32, oh, ow int) {
	cg := c.C / c.Groups
	for ci := 0; ci < cg; ci++ {
		for i := 0; i < c.KH; i++ {
			for j := 0; j < c.KW; j++ {
				row := col[((ci*c.KH+i)*c.KW+j)*oh*ow:][:oh*ow]
				for oy := 0; oy < oh; oy++ {
					y := oy*c.StrideH - c.PadH + i*c.DilH
					for ox := 0; ox < ow; ox++ {
						x := ox*c.StrideW - c.PadW + j*c.DilW
						v := float32(0)
						if y >= 0 && y < c.H && x >= 0 && x < c.W {
							v = xg[(ci*c.H+y)*c.W+x]
						}
						row[oy*ow+ox] = v
					}
				}
			}
		}
	}
}

// col2im adds the columns back into dxg [cg, h, w].
func col2im(c cuda.ConvSpec, dxg, col []float32, oh, ow int) {
	cg := c.C / c.Groups
	for ci := 0; ci < cg; ci++ {
		for i := 0; i < c.KH; i++ {
			for j := 0; j < c.KW; j++ {
				row := col[((ci*c.KH+i)*c.KW+j)*oh*ow:][:oh*ow]
				for oy := 0; oy < oh; oy++ {
					y := oy*c.StrideH - c.PadH + i*c.DilH
					if y < 0 || y >= c.H {
						continue
					}
					for ox := 0; ox < ow; ox++ {
						if x := ox*c.StrideW - c.PadW + j*c.DilW; x >= 0 && x < c.W {
							dxg[(ci*c.H+y)*c.W+x] += row[oy*ow+ox]
						}
					}
				}
			}
		}
	}
}

// convEach calls f for every image and group with the group's slices of x
// (or dx), w (or dw) and y (or dy), and a column buffer.
func convEach(c cuda.ConvSpec, oh, ow int, x, w, y []float32, f func(xg, wg, yg, col []float32)) {
	cg, og := c.C/c.Groups, c.O/c.Groups
	k, p := cg*c.KH*c.KW, oh*ow
	col := make([]float32, k*p)
	for n := 0; n < c.N; n++ {
		for g := 0; g < c.Groups; g++ {
			xg := x[(n*c.C+g*cg)*c.H*c.W:][:cg*c.H*c.W]
			wg := w[g*og*k:][:og*k]
			yg := y[(n*c.O+g*og)*p:][:og*p]
			f(xg, wg, yg, col)
		}
	}
}

// Conv2d implements Backend.
func (c *CPU) Conv2d(y, x, w *Tensor, s cuda.ConvSpec) error {
	oh, ow, err := convShapes(s, x.Shape, w.Shape, y.Shape)
	if err != nil {
		return err
	}
	og, k, p := s.O/s.Groups, s.C/s.Groups*s.KH*s.KW, oh*ow
	convEach(s, oh, ow, c.data(x), c.data(w), c.data(y), func(xg, wg, yg, col []float32) {
		im2col(s, col, xg, oh, ow)
		blas32.Sgemm(blas.NoTrans, blas.NoTrans, og, p, k, 1, wg, k, col, p, 0, yg, p)
	})
	return nil
}

// Conv2dBackwardData implements Backend.
func (c *CPU) Conv2dBackwardData(dx, dy, w *Tensor, s cuda.ConvSpec) error {
	oh, ow, err := convShapes(s, dx.Shape, w.Shape, dy.Shape)
	if err != nil {
		return err
	}
	og, k, p := s.O/s.Groups, s.C/s.Groups*s.KH*s.KW, oh*ow
	convEach(s, oh, ow, c.data(dx), c.data(w), c.data(dy), func(dxg, wg, dyg, col []float32) {
		blas32.Sgemm(blas.Trans, blas.NoTrans, k, p, og, 1, wg, k, dyg, p, 0, col, p)
		clear(dxg)
		col2im(s, dxg, col, oh, ow)
	})
	return nil
}

// Conv2dBackwardFilter implements Backend.
func (c *CPU) Conv2dBackwardFilter(dw, x, dy *Tensor, s cuda.ConvSpec) error {
	oh, ow, err := convShapes(s, x.Shape, dw.Shape, dy.Shape)
	if err != nil {
		return err
	}
	og, k, p := s.O/s.Groups, s.C/s.Groups*s.KH*s.KW, oh*ow
	convEach(s, oh, ow, c.data(x), c.data(dw), c.data(dy), func(xg, dwg, dyg, col []float32) {
		im2col(s, col, xg, oh, ow)
		blas32.Sgemm(blas.NoTrans, blas.Trans, og, k, p, 1, dyg, p, col, p, 1, dwg, k)
	})
	return nil
}

// dims returns batch, channels and the positions per channel of an
// [N, C, ...] shape.
func dims(shape []int) (n, ch, sp int) {
	return shape[0], shape[1], numel(shape[2:])
}

func channelsOf(op string, x, v *Tensor) error {
	if len(x.Shape) < 2 || len(v.Shape) != 1 || v.Shape[0] != x.Shape[1] {
		return fmt.Errorf("gpu: %s: %v does not give one value per channel of %v", op, v.Shape, x.Shape)
	}
	return nil
}

// ChannelBias implements Backend.
func (c *CPU) ChannelBias(y, b *Tensor) error {
	if err := channelsOf("ChannelBias", y, b); err != nil {
		return err
	}
	n, ch, sp := dims(y.Shape)
	yd, bd := c.data(y), c.data(b)
	for i := 0; i < n*ch; i++ {
		for j := range sp {
			yd[i*sp+j] += bd[i%ch]
		}
	}
	return nil
}

// ChannelBiasBackward implements Backend.
func (c *CPU) ChannelBiasBackward(db, dy *Tensor) error {
	if err := channelsOf("ChannelBiasBackward", dy, db); err != nil {
		return err
	}
	n, ch, sp := dims(dy.Shape)
	dd, g := c.data(db), c.data(dy)
	for i := 0; i < n*ch; i++ {
		var s float32
		for _, v := range g[i*sp : (i+1)*sp] {
			s += v
		}
		dd[i%ch] += s
	}
	return nil
}

// actApply is a piecewise-linear activation; NaN stays NaN.
func actApply(a Act, v float32) float32 {
	switch a {
	case ActReLU:
		return max(v, 0)
	case ActReLU6:
		return min(max(v, 0), 6)
	}
	return v
}

// actPasses reports whether a passes the gradient at v (its input or its
// output): strictly inside (0, ∞) for ReLU, (0, 6) for ReLU6.
func actPasses(a Act, v float32) bool {
	switch a {
	case ActReLU:
		return v > 0
	case ActReLU6:
		return v > 0 && v < 6
	}
	return true
}

func checkBN(x *Tensor, bn BNArgs) error {
	for _, v := range []*Tensor{bn.Gamma, bn.Beta, bn.Mean, bn.Var} {
		if err := channelsOf("BatchNorm", x, v); err != nil {
			return err
		}
	}
	if bn.Act != ActNone && bn.Act != ActReLU && bn.Act != ActReLU6 {
		return fmt.Errorf("gpu: BatchNorm cannot fuse %v", bn.Act)
	}
	if n, _, sp := dims(x.Shape); bn.Train && n*sp < 2 {
		return fmt.Errorf("gpu: BatchNorm training needs more than one value per channel, x is %v", x.Shape)
	}
	return nil
}

// BatchNorm implements Backend.
func (c *CPU) BatchNorm(y, x *Tensor, bn BNArgs) error {
	if err := checkBN(x, bn); err != nil {
		return err
	}
	n, ch, sp := dims(x.Shape)
	xd, yd := c.data(x), c.data(y)
	gamma, beta, rm, rv := c.data(bn.Gamma), c.data(bn.Beta), c.data(bn.Mean), c.data(bn.Var)
	cnt := float64(n * sp)
	for k := 0; k < ch; k++ {
		var mean, variance float64
		if bn.Train {
			var sx, sxx float64
			for b := 0; b < n; b++ {
				for _, v := range xd[(b*ch+k)*sp : (b*ch+k+1)*sp] {
					sx += float64(v)
					sxx += float64(v) * float64(v)
				}
			}
			mean = sx / cnt
			variance = max(sxx/cnt-mean*mean, 0)
			m := bn.Momentum
			rm[k] = float32((1-m)*float64(rm[k]) + m*mean)
			rv[k] = float32((1-m)*float64(rv[k]) + m*variance*cnt/(cnt-1))
		} else {
			mean, variance = float64(rm[k]), float64(rv[k])
		}
		inv := 1 / math.Sqrt(variance+bn.Eps)
		scale := float32(float64(gamma[k]) * inv)
		shift := float32(float64(beta[k]) - mean*float64(gamma[k])*inv)
		for b := 0; b < n; b++ {
			o := (b*ch + k) * sp
			for i, v := range xd[o : o+sp] {
				yd[o+i] = actApply(bn.Act, v*scale+shift)
			}
		}
	}
	return nil
}

// BatchNormBackward implements Backend.
func (c *CPU) BatchNormBackward(dx, dGamma, dBeta, dy, x, y *Tensor, bn BNArgs) error {
	if err := checkBN(x, bn); err != nil {
		return err
	}
	n, ch, sp := dims(x.Shape)
	xd, g, dxd := c.data(x), c.data(dy), c.data(dx)
	var yd []float32 // the output matters only for a fused activation's mask
	if bn.Act != ActNone {
		yd = c.data(y)
	}
	gamma, rm, rv := c.data(bn.Gamma), c.data(bn.Mean), c.data(bn.Var)
	dg, db := c.data(dGamma), c.data(dBeta)
	cnt := float64(n * sp)
	grad := func(o, i int) float64 {
		if bn.Act != ActNone && !actPasses(bn.Act, yd[o+i]) {
			return 0
		}
		return float64(g[o+i])
	}
	for k := 0; k < ch; k++ {
		var sx, sxx, sdy, sdyx float64
		for b := 0; b < n; b++ {
			o := (b*ch + k) * sp
			for i, v := range xd[o : o+sp] {
				f, gv := float64(v), grad(o, i)
				sx += f
				sxx += f * f
				sdy += gv
				sdyx += gv * f
			}
		}
		mean := sx / cnt
		variance := max(sxx/cnt-mean*mean, 0)
		if !bn.Train {
			mean, variance = float64(rm[k]), float64(rv[k])
		}
		inv := 1 / math.Sqrt(variance+bn.Eps)
		sdyx = (sdyx - mean*sdy) * inv
		dg[k] += float32(sdyx)
		db[k] += float32(sdy)
		gi := float64(gamma[k]) * inv
		mdy, mdyx := sdy/cnt, sdyx/cnt
		for b := 0; b < n; b++ {
			o := (b*ch + k) * sp
			for i, v := range xd[o : o+sp] {
				gv := grad(o, i)
				if !bn.Train {
					dxd[o+i] = float32(gv * gi)
					continue
				}
				xhat := (float64(v) - mean) * inv
				dxd[o+i] = float32(gi * (gv - mdy - xhat*mdyx))
			}
		}
	}
	return nil
}

// Activation implements Backend.
func (c *CPU) Activation(y, x *Tensor, a Act) error {
	if err := needSame("Activation", y, x); err != nil {
		return err
	}
	yd, xd := c.data(y), c.data(x)
	for i, v := range xd {
		if a == ActGELU {
			f := float64(v)
			yd[i] = float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
			continue
		}
		yd[i] = actApply(a, v)
	}
	return nil
}

// ActivationBackward implements Backend.
func (c *CPU) ActivationBackward(dx, dy, x *Tensor, a Act) error {
	if err := needSame("ActivationBackward", dx, dy, x); err != nil {
		return err
	}
	d, g, xd := c.data(dx), c.data(dy), c.data(x)
	const invSqrt2Pi = 0.3989422804014327
	for i, v := range xd {
		switch {
		case a == ActGELU:
			f := float64(v)
			cdf := 0.5 * (1 + math.Erf(f/math.Sqrt2))
			pdf := invSqrt2Pi * math.Exp(-0.5*f*f)
			d[i] = float32(float64(g[i]) * (cdf + f*pdf))
		case actPasses(a, v):
			d[i] = g[i]
		default:
			d[i] = 0
		}
	}
	return nil
}

func poolShapes(p PoolGeom, x, y []int) (h, w, oh, ow int, err error) {
	if len(x) != 4 || p.K < 1 || p.S < 1 || p.P < 0 || 2*p.P > p.K {
		return 0, 0, 0, 0, fmt.Errorf("gpu: max-pool %+v on %v", p, x)
	}
	h, w = x[2], x[3]
	oh, ow = (h+2*p.P-p.K)/p.S+1, (w+2*p.P-p.K)/p.S+1
	if oh < 1 || ow < 1 || !sameShape(y, []int{x[0], x[1], oh, ow}) {
		return 0, 0, 0, 0, fmt.Errorf("gpu: max-pool %+v of %v into %v", p, x, y)
	}
	return h, w, oh, ow, nil
}

// argmax returns the plane index of window (oy, ox)'s maximum: the first in
// row-major window order, a NaN at once (torch propagates NaN).
func argmax(p PoolGeom, xc []float32, h, w, oy, ox int) int {
	best, bi := float32(0), -1
	for i := 0; i < p.K; i++ {
		y := oy*p.S - p.P + i
		if y < 0 || y >= h {
			continue
		}
		for j := 0; j < p.K; j++ {
			xx := ox*p.S - p.P + j
			if xx < 0 || xx >= w {
				continue
			}
			v := xc[y*w+xx]
			if bi < 0 || v > best || v != v {
				best, bi = v, y*w+xx
				if v != v {
					return bi
				}
			}
		}
	}
	return bi
}

// MaxPool implements Backend.
func (c *CPU) MaxPool(y, x *Tensor, p PoolGeom) error {
	h, w, oh, ow, err := poolShapes(p, x.Shape, y.Shape)
	if err != nil {
		return err
	}
	xd, yd := c.data(x), c.data(y)
	for pl := 0; pl < x.Shape[0]*x.Shape[1]; pl++ {
		xc := xd[pl*h*w : (pl+1)*h*w]
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				yd[(pl*oh+oy)*ow+ox] = xc[argmax(p, xc, h, w, oy, ox)]
			}
		}
	}
	return nil
}

// MaxPoolBackward implements Backend.
func (c *CPU) MaxPoolBackward(dx, dy, x *Tensor, p PoolGeom) error {
	h, w, oh, ow, err := poolShapes(p, x.Shape, dy.Shape)
	if err != nil {
		return err
	}
	xd, g, d := c.data(x), c.data(dy), c.data(dx)
	clear(d)
	for pl := 0; pl < x.Shape[0]*x.Shape[1]; pl++ {
		xc := xd[pl*h*w : (pl+1)*h*w]
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				d[pl*h*w+argmax(p, xc, h, w, oy, ox)] += g[(pl*oh+oy)*ow+ox]
			}
		}
	}
	return nil
}

// GlobalAvgPool implements Backend.
func (c *CPU) GlobalAvgPool(y, x *Tensor) error {
	n, ch, sp := dims(x.Shape)
	if !sameShape(y.Shape, []int{n, ch}) || sp < 1 {
		return fmt.Errorf("gpu: global average pool of %v into %v", x.Shape, y.Shape)
	}
	xd, yd := c.data(x), c.data(y)
	for i := 0; i < n*ch; i++ {
		var s float64
		for _, v := range xd[i*sp : (i+1)*sp] {
			s += float64(v)
		}
		yd[i] = float32(s / float64(sp))
	}
	return nil
}

// GlobalAvgPoolBackward implements Backend.
func (c *CPU) GlobalAvgPoolBackward(dx, dy *Tensor) error {
	n, ch, sp := dims(dx.Shape)
	if !sameShape(dy.Shape, []int{n, ch}) {
		return fmt.Errorf("gpu: global average pool gradient %v for %v", dy.Shape, dx.Shape)
	}
	d, g := c.data(dx), c.data(dy)
	inv := 1 / float32(sp)
	for i := 0; i < n*ch; i++ {
		v := g[i] * inv
		for j := range sp {
			d[i*sp+j] = v
		}
	}
	return nil
}

// linearDims checks x [..., K], w [O, K], y [..., O] and returns rows, K, O.
func linearDims(x, w, y []int) (m, k, o int, err error) {
	if len(w) != 2 || len(x) < 1 || x[len(x)-1] != w[1] || len(y) != len(x) || y[len(y)-1] != w[0] ||
		numel(x[:len(x)-1]) != numel(y[:len(y)-1]) {
		return 0, 0, 0, fmt.Errorf("gpu: linear of %v with weight %v into %v", x, w, y)
	}
	return numel(x[:len(x)-1]), w[1], w[0], nil
}

// Linear implements Backend.
func (c *CPU) Linear(y, x, w, b *Tensor) error {
	m, k, o, err := linearDims(x.Shape, w.Shape, y.Shape)
	if err != nil {
		return err
	}
	yd := c.data(y)
	beta := float32(0)
	if b != nil {
		bd := c.data(b)
		for r := 0; r < m; r++ {
			copy(yd[r*o:(r+1)*o], bd)
		}
		beta = 1
	}
	if m > 0 {
		blas32.Sgemm(blas.NoTrans, blas.Trans, m, o, k, 1, c.data(x), k, c.data(w), k, beta, yd, o)
	}
	return nil
}

// LinearBackward implements Backend.
func (c *CPU) LinearBackward(dx, dw, db, dy, x, w *Tensor) error {
	m, k, o, err := linearDims(x.Shape, w.Shape, dy.Shape)
	if err != nil || m == 0 {
		return err
	}
	g := c.data(dy)
	if dx != nil {
		blas32.Sgemm(blas.NoTrans, blas.NoTrans, m, k, o, 1, g, o, c.data(w), k, 0, c.data(dx), k)
	}
	if dw != nil {
		blas32.Sgemm(blas.Trans, blas.NoTrans, o, k, m, 1, g, o, c.data(x), k, 1, c.data(dw), k)
	}
	if db != nil {
		dd := c.data(db)
		for r := 0; r < m; r++ {
			for j, v := range g[r*o : (r+1)*o] {
				dd[j] += v
			}
		}
	}
	return nil
}

func rowMoments(xs []float32, eps float64) (mean, inv float64) {
	var s float64
	for _, v := range xs {
		s += float64(v)
	}
	mean = s / float64(len(xs))
	var sq float64
	for _, v := range xs {
		d := float64(v) - mean
		sq += d * d
	}
	return mean, 1 / math.Sqrt(sq/float64(len(xs))+eps)
}

// LayerNorm implements Backend.
func (c *CPU) LayerNorm(y, x, w, b *Tensor, eps float64) error {
	d := x.Shape[len(x.Shape)-1]
	if err := needSame("LayerNorm", y, x); err != nil || w.Len() != d || b.Len() != d {
		return fmt.Errorf("gpu: LayerNorm of %v with weight %v and bias %v (%v)", x.Shape, w.Shape, b.Shape, err)
	}
	xd, yd, wd, bd := c.data(x), c.data(y), c.data(w), c.data(b)
	for r := 0; r < x.Len()/d; r++ {
		xs := xd[r*d : (r+1)*d]
		mean, inv := rowMoments(xs, eps)
		for i, v := range xs {
			yd[r*d+i] = float32((float64(v)-mean)*inv)*wd[i] + bd[i]
		}
	}
	return nil
}

// LayerNormBackward implements Backend.
func (c *CPU) LayerNormBackward(dx, dw, db, dy, x, w *Tensor, eps float64) error {
	d := x.Shape[len(x.Shape)-1]
	if err := needSame("LayerNormBackward", dx, dy, x); err != nil {
		return err
	}
	xd, g, wd, dxd := c.data(x), c.data(dy), c.data(w), c.data(dx)
	accW, accB := make([]float64, d), make([]float64, d)
	for r := 0; r < x.Len()/d; r++ {
		xs, gs := xd[r*d:(r+1)*d], g[r*d:(r+1)*d]
		mean, inv := rowMoments(xs, eps)
		var m1, m2 float64
		for i, gv := range gs {
			xhat := (float64(xs[i]) - mean) * inv
			gw := float64(gv) * float64(wd[i])
			m1 += gw
			m2 += gw * xhat
			accW[i] += float64(gv) * xhat
			accB[i] += float64(gv)
		}
		m1 /= float64(d)
		m2 /= float64(d)
		for i, gv := range gs {
			xhat := (float64(xs[i]) - mean) * inv
			dxd[r*d+i] = float32(inv * (float64(gv)*float64(wd[i]) - m1 - xhat*m2))
		}
	}
	dwd, dbd := c.data(dw), c.data(db)
	for i := range d {
		dwd[i] += float32(accW[i])
		dbd[i] += float32(accB[i])
	}
	return nil
}

func attnDims(qkv, out, probs []int, heads int) (b, t, d, hd int, err error) {
	if len(qkv) != 3 || qkv[2]%3 != 0 || heads < 1 || (qkv[2]/3)%heads != 0 {
		return 0, 0, 0, 0, fmt.Errorf("gpu: attention over %v with %d heads", qkv, heads)
	}
	b, t, d = qkv[0], qkv[1], qkv[2]/3
	if !sameShape(out, []int{b, t, d}) || !sameShape(probs, []int{b, heads, t, t}) {
		return 0, 0, 0, 0, fmt.Errorf("gpu: attention over %v into %v with weights %v", qkv, out, probs)
	}
	return b, t, d, d / heads, nil
}

// softmaxRow turns row into its softmax (float64 exponentials and sum, as
// trainer/nn).
func softmaxRow(row []float32) {
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

// Attention implements Backend.
func (c *CPU) Attention(out, probs, qkv *Tensor, heads int, scale float32) error {
	b, t, d, hd, err := attnDims(qkv.Shape, out.Shape, probs.Shape, heads)
	if err != nil {
		return err
	}
	q, o, a := c.data(qkv), c.data(out), c.data(probs)
	d3 := 3 * d
	for bh := 0; bh < b*heads; bh++ {
		bi, h := bh/heads, bh%heads
		base := bi*t*d3 + h*hd
		ab := a[bh*t*t : (bh+1)*t*t]
		blas32.Sgemm(blas.NoTrans, blas.Trans, t, t, hd, scale, q[base:], d3, q[base+d:], d3, 0, ab, t)
		for r := 0; r < t; r++ {
			softmaxRow(ab[r*t : (r+1)*t])
		}
		blas32.Sgemm(blas.NoTrans, blas.NoTrans, t, hd, t, 1, ab, t, q[base+2*d:], d3, 0, o[bi*t*d+h*hd:], d)
	}
	return nil
}

// AttentionBackward implements Backend.
func (c *CPU) AttentionBackward(dqkv, dout, qkv, probs *Tensor, heads int, scale float32) error {
	b, t, d, hd, err := attnDims(qkv.Shape, dout.Shape, probs.Shape, heads)
	if err != nil {
		return err
	}
	q, dq, g, a := c.data(qkv), c.data(dqkv), c.data(dout), c.data(probs)
	d3 := 3 * d
	da := make([]float32, t*t)
	for bh := 0; bh < b*heads; bh++ {
		bi, h := bh/heads, bh%heads
		base := bi*t*d3 + h*hd
		ab := a[bh*t*t : (bh+1)*t*t]
		do := g[bi*t*d+h*hd:]
		blas32.Sgemm(blas.Trans, blas.NoTrans, t, hd, t, 1, ab, t, do, d, 0, dq[base+2*d:], d3)
		blas32.Sgemm(blas.NoTrans, blas.Trans, t, t, hd, 1, do, d, q[base+2*d:], d3, 0, da, t)
		for r := 0; r < t; r++ {
			ar, dr := ab[r*t:(r+1)*t], da[r*t:(r+1)*t]
			var dot float32
			for i, x := range ar {
				dot += x * dr[i]
			}
			for i, x := range ar {
				dr[i] = x * (dr[i] - dot)
			}
		}
		blas32.Sgemm(blas.NoTrans, blas.NoTrans, t, hd, t, scale, da, t, q[base+d:], d3, 0, dq[base:], d3)
		blas32.Sgemm(blas.Trans, blas.NoTrans, t, hd, t, scale, da, t, q[base:], d3, 0, dq[base+d:], d3)
	}
	return nil
}

func tokenDims(patches, cls, pos, y []int) (b, d, n int, err error) {
	if len(patches) != 4 {
		return 0, 0, 0, fmt.Errorf("gpu: tokens from patches %v", patches)
	}
	b, d, n = patches[0], patches[1], patches[2]*patches[3]
	if !sameShape(cls, []int{1, 1, d}) || !sameShape(pos, []int{1, 1 + n, d}) || !sameShape(y, []int{b, 1 + n, d}) {
		return 0, 0, 0, fmt.Errorf("gpu: tokens from patches %v, class token %v, positions %v into %v", patches, cls, pos, y)
	}
	return b, d, n, nil
}

// Tokens implements Backend.
func (c *CPU) Tokens(y, patches, cls, pos *Tensor) error {
	b, d, n, err := tokenDims(patches.Shape, cls.Shape, pos.Shape, y.Shape)
	if err != nil {
		return err
	}
	p, cl, ps, o := c.data(patches), c.data(cls), c.data(pos), c.data(y)
	t := 1 + n
	for bi := 0; bi < b; bi++ {
		ob := o[bi*t*d:]
		for j := 0; j < d; j++ {
			ob[j] = cl[j] + ps[j]
			for i := 0; i < n; i++ {
				ob[(1+i)*d+j] = p[(bi*d+j)*n+i] + ps[(1+i)*d+j]
			}
		}
	}
	return nil
}

// TokensBackward implements Backend.
func (c *CPU) TokensBackward(dPatches, dCls, dPos, dy *Tensor) error {
	b, d, n, err := tokenDims(dPatches.Shape, dCls.Shape, dPos.Shape, dy.Shape)
	if err != nil {
		return err
	}
	dp, dc, dps, g := c.data(dPatches), c.data(dCls), c.data(dPos), c.data(dy)
	t := 1 + n
	for bi := 0; bi < b; bi++ {
		gb := g[bi*t*d : (bi+1)*t*d]
		for j := 0; j < d; j++ {
			for i := 0; i < n; i++ {
				dp[(bi*d+j)*n+i] = gb[(1+i)*d+j]
			}
			dc[j] += gb[j]
		}
		for i, v := range gb {
			dps[i] += v
		}
	}
	return nil
}

// ClassToken implements Backend.
func (c *CPU) ClassToken(y, x *Tensor) error {
	if len(x.Shape) != 3 || !sameShape(y.Shape, []int{x.Shape[0], x.Shape[2]}) {
		return fmt.Errorf("gpu: class token of %v into %v", x.Shape, y.Shape)
	}
	b, t, d := x.Shape[0], x.Shape[1], x.Shape[2]
	xd, yd := c.data(x), c.data(y)
	for bi := 0; bi < b; bi++ {
		copy(yd[bi*d:(bi+1)*d], xd[bi*t*d:])
	}
	return nil
}

// ClassTokenBackward implements Backend.
func (c *CPU) ClassTokenBackward(dx, dy *Tensor) error {
	if len(dx.Shape) != 3 || !sameShape(dy.Shape, []int{dx.Shape[0], dx.Shape[2]}) {
		return fmt.Errorf("gpu: class token gradient %v for %v", dy.Shape, dx.Shape)
	}
	b, t, d := dx.Shape[0], dx.Shape[1], dx.Shape[2]
	d0, g := c.data(dx), c.data(dy)
	clear(d0)
	for bi := 0; bi < b; bi++ {
		copy(d0[bi*t*d:bi*t*d+d], g[bi*d:(bi+1)*d])
	}
	return nil
}

func interpDims(pos, y, w []int) (s, r, d int, err error) {
	if len(pos) != 3 || len(w) != 2 || pos[0] != 1 || pos[1] != 1+w[1] || !sameShape(y, []int{1, 1 + w[0], pos[2]}) {
		return 0, 0, 0, fmt.Errorf("gpu: position interpolation of %v with %v into %v", pos, w, y)
	}
	return w[1], w[0], pos[2], nil
}

// PosEmbedInterp implements Backend.
func (c *CPU) PosEmbedInterp(y, pos, w *Tensor) error {
	s, r, d, err := interpDims(pos.Shape, y.Shape, w.Shape)
	if err != nil {
		return err
	}
	p, o := c.data(pos), c.data(y)
	copy(o[:d], p[:d])
	blas32.Sgemm(blas.NoTrans, blas.NoTrans, r, d, s, 1, c.data(w), s, p[d:], d, 0, o[d:], d)
	return nil
}

// PosEmbedInterpBackward implements Backend.
func (c *CPU) PosEmbedInterpBackward(dPos, dy, w *Tensor) error {
	s, r, d, err := interpDims(dPos.Shape, dy.Shape, w.Shape)
	if err != nil {
		return err
	}
	dp, g := c.data(dPos), c.data(dy)
	for i := range d {
		dp[i] += g[i]
	}
	blas32.Sgemm(blas.Trans, blas.NoTrans, s, d, r, 1, c.data(w), s, g[d:], d, 1, dp[d:], d)
	return nil
}

// DropPath implements Backend.
func (c *CPU) DropPath(y, x, mask *Tensor) error {
	if err := needSame("DropPath", y, x); err != nil || mask.Len() != x.Shape[0] {
		return fmt.Errorf("gpu: drop-path of %v with mask %v (%v)", x.Shape, mask.Shape, err)
	}
	xd, yd, m := c.data(x), c.data(y), c.data(mask)
	per := x.Len() / x.Shape[0]
	for i, v := range xd {
		yd[i] = v * m[i/per]
	}
	return nil
}

// DropPathBackward implements Backend.
func (c *CPU) DropPathBackward(dx, dy, mask *Tensor) error { return c.DropPath(dx, dy, mask) }
