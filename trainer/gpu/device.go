package gpu

import (
	"errors"
	"fmt"

	"github.com/sslight-go/sslight/trainer/cuda"
	"github.com/sslight-go/sslight/trainer/gpu/kernels"
)

// KernelDevice is what the device backend needs of a device: memory,
// copies, kernel launches and (optionally) cuBLAS. *cuda.Device is one;
// the host emulation (trainer/gpu/hostemu) is another, without cuBLAS.
type KernelDevice interface {
	RawAllocator
	CopyHtoD(dst cuda.DevPtr, src []float32, s cuda.Stream) error
	CopyDtoH(dst []float32, src cuda.DevPtr, s cuda.Stream) error
	CopyDtoD(dst, src cuda.DevPtr, bytes int, s cuda.Stream) error
	Memset(dst cuda.DevPtr, bytes int, s cuda.Stream) error
	Launch(name string, grid, block cuda.Dim3, shmem int, s cuda.Stream, args ...any) error
	Synchronize(s cuda.Stream) error
	// HasBLAS reports whether Sgemm works (else it returns cuda.ErrNoBLAS
	// and the backend runs its GEMM kernel).
	HasBLAS() bool
	Sgemm(s cuda.Stream, g cuda.Gemm) error
}

// dnnDevice is the cuDNN side of a device (*cuda.Device).
type dnnDevice interface {
	HasDNN() bool
	PlanConv(s cuda.ConvSpec, workspaceLimit int) (*cuda.ConvPlan, error)
	ConvForward(p *cuda.ConvPlan, s cuda.Stream, x, w, y, ws cuda.DevPtr, wsBytes int) error
	ConvBackwardData(p *cuda.ConvPlan, s cuda.Stream, w, dy, dx, ws cuda.DevPtr, wsBytes int) error
	ConvBackwardFilter(p *cuda.ConvPlan, s cuda.Stream, x, dy, dw, ws cuda.DevPtr, wsBytes int, accumulate bool) error
	BatchNormTrain(s cuda.Stream, spec cuda.BNSpec, x, y, gamma, beta, runMean, runVar cuda.DevPtr, momentum, eps float64) error
	BatchNormInfer(s cuda.Stream, spec cuda.BNSpec, x, y, gamma, beta, mean, variance cuda.DevPtr, eps float64) error
	BatchNormBackward(s cuda.Stream, spec cuda.BNSpec, x, dy, dx, gamma, dgamma, dbeta cuda.DevPtr, eps float64) error
}

// DeviceOptions configure a device backend.
type DeviceOptions struct {
	// Stream is the stream every op is queued on (0: the legacy default
	// stream).
	Stream cuda.Stream
	// NoDNN runs the package's own convolution kernels even when the
	// device has cuDNN.
	NoDNN bool
	// DNNBatchNorm runs training-mode BatchNorm (forward and backward) and
	// evaluation-mode forward through cuDNN when the device has it; the
	// default is the package's kernels, whose sums follow trainer/nn's.
	DNNBatchNorm bool
	// WorkspaceLimit bounds the scratch memory of one convolution (im2col
	// columns, cuDNN workspace), in bytes (0: 256 MiB).
	WorkspaceLimit int
}

// DeviceBackend runs the executor's ops on a KernelDevice: cuDNN for the
// convolutions where the device has it, cuBLAS for the products, and the
// kernels of trainer/gpu/kernels for everything else (and for all of it
// without those libraries).
type DeviceBackend struct {
	kd     KernelDevice
	dnn    dnnDevice // nil: own convolution kernels
	opts   DeviceOptions
	alloc  *Allocator
	stream cuda.Stream
	sigs   map[string][]kernels.Param
	name   string
}

// NewDeviceBackend returns a backend over kd. The kernels must be loaded
// on it already (LoadKernels for a cuda.Device; the emulation has them).
func NewDeviceBackend(kd KernelDevice, o DeviceOptions) *DeviceBackend {
	if o.WorkspaceLimit <= 0 {
		o.WorkspaceLimit = 256 << 20
	}
	d := &DeviceBackend{kd: kd, opts: o, alloc: NewAllocator(kd), stream: o.Stream, sigs: map[string][]kernels.Param{}, name: "device"}
	for _, k := range kernels.Kernels() {
		d.sigs[k.Name] = k.Params
	}
	if dd, ok := kd.(dnnDevice); ok && dd.HasDNN() && !o.NoDNN {
		d.dnn = dd
	}
	if in, ok := kd.(interface{ Info() cuda.Info }); ok {
		d.name = "cuda:" + in.Info().Name
	} else {
		d.name = fmt.Sprintf("%T", kd)
	}
	return d
}

// kernelOptions are the NVRTC options of the kernels.
var kernelOptions = []string{"-default-device", "--std=c++14"}

// LoadKernels compiles the executor's kernels for dev (once per process)
// and loads them.
func LoadKernels(dev *cuda.Device) error {
	if _, err := dev.LoadModule("sslight_kernels.cu", kernels.NVRTCSource(), kernelOptions); err != nil {
		return fmt.Errorf("gpu: loading the kernels: %w", err)
	}
	return nil
}

// Name implements Backend.
func (d *DeviceBackend) Name() string { return d.name }

// Allocator implements Backend.
func (d *DeviceBackend) Allocator() *Allocator { return d.alloc }

// Stream is the stream the backend queues its work on.
func (d *DeviceBackend) Stream() cuda.Stream { return d.stream }

// Device is the device the backend runs on.
func (d *DeviceBackend) Device() KernelDevice { return d.kd }

// UsesDNN reports whether cuDNN runs the convolutions.
func (d *DeviceBackend) UsesDNN() bool { return d.dnn != nil }

// NewTensor implements Backend.
func (d *DeviceBackend) NewTensor(shape ...int) (*Tensor, error) {
	return newTensor(d.alloc, d.stream, shape)
}

// Release implements Backend: the memory goes back to the stream's free
// list, reusable by work queued after this call.
func (d *DeviceBackend) Release(t *Tensor) {
	if t != nil {
		d.alloc.Free(t.blk)
	}
}

// Upload implements Backend.
func (d *DeviceBackend) Upload(dst *Tensor, src []float32) error {
	if len(src) != dst.Len() {
		return fmt.Errorf("gpu: upload of %d values into %v", len(src), dst)
	}
	return d.kd.CopyHtoD(dst.Ptr(), src, d.stream)
}

// Download implements Backend: it waits for the work queued before it.
func (d *DeviceBackend) Download(dst []float32, src *Tensor) error {
	if len(dst) != src.Len() {
		return fmt.Errorf("gpu: download of %v into %d values", src, len(dst))
	}
	return d.kd.CopyDtoH(dst, src.Ptr(), d.stream)
}

// Synchronize implements Backend.
func (d *DeviceBackend) Synchronize() error { return d.kd.Synchronize(d.stream) }

// off is t's address plus n floats.
func off(t *Tensor, n int) cuda.DevPtr { return t.Ptr() + cuda.DevPtr(4*n) }

// launch checks args against the kernel's parsed signature (a wrong type
// would be read as garbage by the GPU) and queues it.
func (d *DeviceBackend) launch(name string, grid, block cuda.Dim3, args ...any) error {
	params, ok := d.sigs[name]
	if !ok {
		return fmt.Errorf("gpu: no kernel %s in the sources", name)
	}
	if len(params) != len(args) {
		return fmt.Errorf("gpu: kernel %s takes %d arguments, given %d", name, len(params), len(args))
	}
	for i, p := range params {
		okType := false
		switch args[i].(type) {
		case cuda.DevPtr:
			okType = p == kernels.Ptr
		case int, int32:
			okType = p == kernels.Int
		case float32:
			okType = p == kernels.Float
		case float64:
			okType = p == kernels.Double
		case int64:
			okType = p == kernels.LongLong
		}
		if !okType {
			return fmt.Errorf("gpu: kernel %s argument %d is %T, the kernel takes a %v", name, i, args[i], p)
		}
	}
	return d.kd.Launch(name, grid, block, 0, d.stream, args...)
}

// elementwise launch shape: 256 threads, at most 4096 blocks (the kernels
// loop over the rest).
func elems(n int) (cuda.Dim3, cuda.Dim3) {
	return cuda.D1(max(1, min((n+255)/256, 4096))), cuda.D1(256)
}

const (
	red    = 256 // the reductions' block size (kernels' RED)
	dwTaps = 9   // the most taps dw_bwd_filter handles per block (DW_TAPS)
)

// chunksOf is how many blocks share one reduction of n values.
func chunksOf(n int) int { return max(1, min(64, (n+16383)/16384)) }

// temp allocates a scratch tensor of n floats, released by the caller once
// the kernels using it are queued.
func (d *DeviceBackend) temp(n int) (*Tensor, error) { return d.NewTensor(n) }

// gemm runs g through cuBLAS or, without it, the sgemm_rm kernel.
func (d *DeviceBackend) gemm(g cuda.Gemm) error {
	if g.Batch == 0 {
		g.Batch = 1
	}
	if d.kd.HasBLAS() {
		return d.kd.Sgemm(d.stream, g)
	}
	if err := cuda.CheckGemm(g); err != nil {
		return err
	}
	if g.M == 0 || g.N == 0 {
		return nil
	}
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	for b0 := 0; b0 < g.Batch; b0 += 65535 {
		nb := min(65535, g.Batch-b0)
		grid := cuda.D3((g.N+15)/16, (g.M+15)/16, nb)
		err := d.launch("sgemm_rm", grid, cuda.D3(16, 16, 1), b2i(g.TransA), b2i(g.TransB), g.M, g.N, g.K, g.Alpha,
			g.A+cuda.DevPtr(4*b0*g.StrideA), g.LDA, int64(g.StrideA), g.B+cuda.DevPtr(4*b0*g.StrideB), g.LDB, int64(g.StrideB),
			g.Beta, g.C+cuda.DevPtr(4*b0*g.StrideC), g.LDC, int64(g.StrideC))
		if err != nil {
			return err
		}
	}
	return nil
}

// Zero implements Backend.
func (d *DeviceBackend) Zero(t *Tensor) error { return d.kd.Memset(t.Ptr(), t.Bytes(), d.stream) }

// AddTo implements Backend.
func (d *DeviceBackend) AddTo(dst, src *Tensor) error {
	if err := needSame("AddTo", dst, src); err != nil {
		return err
	}
	g, b := elems(dst.Len())
	return d.launch("add_to", g, b, dst.Ptr(), src.Ptr(), dst.Len())
}

// Add implements Backend.
func (d *DeviceBackend) Add(y, a, b *Tensor) error {
	if err := needSame("Add", y, a, b); err != nil {
		return err
	}
	g, bl := elems(y.Len())
	return d.launch("add2", g, bl, y.Ptr(), a.Ptr(), b.Ptr(), y.Len())
}

func depthwise(c cuda.ConvSpec) bool { return c.Groups == c.C && c.O == c.C }

// workspace returns a scratch tensor of at least bytes (nil for 0).
func (d *DeviceBackend) workspace(bytes int) (*Tensor, cuda.DevPtr, error) {
	if bytes == 0 {
		return nil, 0, nil
	}
	t, err := d.temp((bytes + 3) / 4)
	if err != nil {
		return nil, 0, err
	}
	return t, t.Ptr(), nil
}

func (d *DeviceBackend) plan(c cuda.ConvSpec) (*cuda.ConvPlan, error) {
	return d.dnn.PlanConv(c, d.opts.WorkspaceLimit)
}

// convChunk returns how many images one im2col chunk holds.
func (d *DeviceBackend) convChunk(c cuda.ConvSpec) int {
	oh, ow := c.Out()
	perImage := 4 * (c.C/c.Groups*c.KH*c.KW + c.O/c.Groups) * oh * ow
	return max(1, min(c.N, d.opts.WorkspaceLimit/max(1, perImage)))
}

func convArgs(c cuda.ConvSpec) []any {
	oh, ow := c.Out()
	return []any{c.KH, c.KW, c.StrideH, c.StrideW, c.PadH, c.PadW, c.DilH, c.DilW, oh, ow}
}

// Conv2d implements Backend.
func (d *DeviceBackend) Conv2d(y, x, w *Tensor, c cuda.ConvSpec) error {
	oh, ow, err := convShapes(c, x.Shape, w.Shape, y.Shape)
	if err != nil {
		return err
	}
	if d.dnn != nil {
		p, err := d.plan(c)
		if err != nil {
			return err
		}
		ws, wp, err := d.workspace(p.Fwd.Workspace)
		if err != nil {
			return err
		}
		defer d.Release(ws)
		return d.dnn.ConvForward(p, d.stream, x.Ptr(), w.Ptr(), y.Ptr(), wp, p.Fwd.Workspace)
	}
	if depthwise(c) {
		g, b := elems(y.Len())
		return d.launch("dw_fwd", g, b, append([]any{y.Ptr(), x.Ptr(), w.Ptr(), c.N, c.C, c.H, c.W}, convArgs(c)...)...)
	}
	cg, og := c.C/c.Groups, c.O/c.Groups
	k, p := cg*c.KH*c.KW, oh*ow
	nb := d.convChunk(c)
	col, err := d.temp(k * nb * p)
	if err != nil {
		return err
	}
	defer d.Release(col)
	tmp, err := d.temp(og * nb * p)
	if err != nil {
		return err
	}
	defer d.Release(tmp)
	for n0 := 0; n0 < c.N; n0 += nb {
		cnt := min(nb, c.N-n0)
		for gi := 0; gi < c.Groups; gi++ {
			g, b := elems(k * cnt * p)
			if err := d.launch("im2col", g, b, append([]any{col.Ptr(), off(x, n0*c.C*c.H*c.W), cnt, c.C, c.H, c.W, cg, gi}, convArgs(c)...)...); err != nil {
				return err
			}
			if err := d.gemm(cuda.Gemm{M: og, N: cnt * p, K: k, Alpha: 1, A: off(w, gi*og*k), LDA: k,
				B: col.Ptr(), LDB: cnt * p, C: tmp.Ptr(), LDC: cnt * p}); err != nil {
				return err
			}
			g, b = elems(og * cnt * p)
			if err := d.launch("scatter_groups", g, b, off(y, n0*c.O*p), tmp.Ptr(), cnt, c.O, gi*og, og, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// Conv2dBackwardData implements Backend.
func (d *DeviceBackend) Conv2dBackwardData(dx, dy, w *Tensor, c cuda.ConvSpec) error {
	oh, ow, err := convShapes(c, dx.Shape, w.Shape, dy.Shape)
	if err != nil {
		return err
	}
	if d.dnn != nil {
		p, err := d.plan(c)
		if err != nil {
			return err
		}
		ws, wp, err := d.workspace(p.BwdData.Workspace)
		if err != nil {
			return err
		}
		defer d.Release(ws)
		return d.dnn.ConvBackwardData(p, d.stream, w.Ptr(), dy.Ptr(), dx.Ptr(), wp, p.BwdData.Workspace)
	}
	if depthwise(c) {
		g, b := elems(dx.Len())
		return d.launch("dw_bwd_data", g, b, append([]any{dx.Ptr(), dy.Ptr(), w.Ptr(), c.N, c.C, c.H, c.W}, convArgs(c)...)...)
	}
	cg, og := c.C/c.Groups, c.O/c.Groups
	k, p := cg*c.KH*c.KW, oh*ow
	nb := d.convChunk(c)
	col, err := d.temp(k * nb * p)
	if err != nil {
		return err
	}
	defer d.Release(col)
	tmp, err := d.temp(og * nb * p)
	if err != nil {
		return err
	}
	defer d.Release(tmp)
	for n0 := 0; n0 < c.N; n0 += nb {
		cnt := min(nb, c.N-n0)
		for gi := 0; gi < c.Groups; gi++ {
			g, b := elems(og * cnt * p)
			if err := d.launch("gather_groups", g, b, tmp.Ptr(), off(dy, n0*c.O*p), cnt, c.O, gi*og, og, p); err != nil {
				return err
			}
			if err := d.gemm(cuda.Gemm{TransA: true, M: k, N: cnt * p, K: og, Alpha: 1, A: off(w, gi*og*k), LDA: k,
				B: tmp.Ptr(), LDB: cnt * p, C: col.Ptr(), LDC: cnt * p}); err != nil {
				return err
			}
			g, b = elems(cnt * cg * c.H * c.W)
			if err := d.launch("col2im", g, b, append([]any{off(dx, n0*c.C*c.H*c.W), col.Ptr(), cnt, c.C, c.H, c.W, cg, gi}, convArgs(c)...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Conv2dBackwardFilter implements Backend.
func (d *DeviceBackend) Conv2dBackwardFilter(dw, x, dy *Tensor, c cuda.ConvSpec) error {
	oh, ow, err := convShapes(c, x.Shape, dw.Shape, dy.Shape)
	if err != nil {
		return err
	}
	if d.dnn != nil {
		p, err := d.plan(c)
		if err != nil {
			return err
		}
		ws, wp, err := d.workspace(p.BwdFilter.Workspace)
		if err != nil {
			return err
		}
		defer d.Release(ws)
		return d.dnn.ConvBackwardFilter(p, d.stream, x.Ptr(), dy.Ptr(), dw.Ptr(), wp, p.BwdFilter.Workspace, true)
	}
	if depthwise(c) {
		args := append([]any{dw.Ptr(), x.Ptr(), dy.Ptr(), c.N, c.C, c.H, c.W}, convArgs(c)...)
		if c.KH*c.KW <= dwTaps {
			return d.launch("dw_bwd_filter", cuda.D1(c.C), cuda.D1(red), args...)
		}
		return d.launch("dw_bwd_filter_tap", cuda.D1(c.C*c.KH*c.KW), cuda.D1(red), args...)
	}
	cg, og := c.C/c.Groups, c.O/c.Groups
	k, p := cg*c.KH*c.KW, oh*ow
	nb := d.convChunk(c)
	col, err := d.temp(k * nb * p)
	if err != nil {
		return err
	}
	defer d.Release(col)
	tmp, err := d.temp(og * nb * p)
	if err != nil {
		return err
	}
	defer d.Release(tmp)
	for n0 := 0; n0 < c.N; n0 += nb {
		cnt := min(nb, c.N-n0)
		for gi := 0; gi < c.Groups; gi++ {
			g, b := elems(k * cnt * p)
			if err := d.launch("im2col", g, b, append([]any{col.Ptr(), off(x, n0*c.C*c.H*c.W), cnt, c.C, c.H, c.W, cg, gi}, convArgs(c)...)...); err != nil {
				return err
			}
			g, b = elems(og * cnt * p)
			if err := d.launch("gather_groups", g, b, tmp.Ptr(), off(dy, n0*c.O*p), cnt, c.O, gi*og, og, p); err != nil {
				return err
			}
			if err := d.gemm(cuda.Gemm{TransB: true, M: og, N: k, K: cnt * p, Alpha: 1, Beta: 1, A: tmp.Ptr(), LDA: cnt * p,
				B: col.Ptr(), LDB: cnt * p, C: off(dw, gi*og*k), LDC: k}); err != nil {
				return err
			}
		}
	}
	return nil
}

// ChannelBias implements Backend.
func (d *DeviceBackend) ChannelBias(y, b *Tensor) error {
	if err := channelsOf("ChannelBias", y, b); err != nil {
		return err
	}
	_, c, sp := dims(y.Shape)
	g, bl := elems(y.Len())
	return d.launch("channel_bias", g, bl, y.Ptr(), b.Ptr(), y.Len(), c, sp)
}

// ChannelBiasBackward implements Backend.
func (d *DeviceBackend) ChannelBiasBackward(db, dy *Tensor) error {
	if err := channelsOf("ChannelBiasBackward", dy, db); err != nil {
		return err
	}
	n, c, sp := dims(dy.Shape)
	chunks := chunksOf(n * sp)
	part, err := d.temp(2 * c * chunks)
	if err != nil {
		return err
	}
	defer d.Release(part)
	if err := d.launch("chansum_partial", cuda.D3(c, chunks, 1), cuda.D1(red), part.Ptr(), dy.Ptr(), n, c, sp, chunks); err != nil {
		return err
	}
	g, b := elems(c)
	return d.launch("chansum_finish", g, b, db.Ptr(), part.Ptr(), c, chunks)
}

func bnSpec(x *Tensor) cuda.BNSpec {
	n, c, sp := dims(x.Shape)
	return cuda.BNSpec{N: n, C: c, H: sp, W: 1}
}

// BatchNorm implements Backend.
func (d *DeviceBackend) BatchNorm(y, x *Tensor, bn BNArgs) error {
	if err := checkBN(x, bn); err != nil {
		return err
	}
	n, c, sp := dims(x.Shape)
	if d.dnn != nil && d.opts.DNNBatchNorm {
		var err error
		if bn.Train {
			err = d.dnn.BatchNormTrain(d.stream, bnSpec(x), x.Ptr(), y.Ptr(), bn.Gamma.Ptr(), bn.Beta.Ptr(), bn.Mean.Ptr(), bn.Var.Ptr(), bn.Momentum, bn.Eps)
		} else {
			err = d.dnn.BatchNormInfer(d.stream, bnSpec(x), x.Ptr(), y.Ptr(), bn.Gamma.Ptr(), bn.Beta.Ptr(), bn.Mean.Ptr(), bn.Var.Ptr(), bn.Eps)
		}
		if err != nil || bn.Act == ActNone {
			return err
		}
		g, b := elems(y.Len())
		return d.launch("act_fwd", g, b, y.Ptr(), y.Ptr(), y.Len(), int(bn.Act))
	}
	chunks := chunksOf(n * sp)
	var part *Tensor
	var pp cuda.DevPtr
	if bn.Train {
		var err error
		if part, err = d.temp(8 * c * chunks); err != nil {
			return err
		}
		defer d.Release(part)
		pp = part.Ptr()
		if err := d.launch("bn_partial", cuda.D3(c, chunks, 1), cuda.D1(red), pp, x.Ptr(), cuda.DevPtr(0), cuda.DevPtr(0), n, c, sp, chunks, 0); err != nil {
			return err
		}
	}
	ss, err := d.temp(2 * c)
	if err != nil {
		return err
	}
	defer d.Release(ss)
	g, b := elems(c)
	if err := d.launch("bn_finish_fwd", g, b, ss.Ptr(), pp, bn.Gamma.Ptr(), bn.Beta.Ptr(), bn.Mean.Ptr(), bn.Var.Ptr(),
		c, n*sp, chunks, boolInt(bn.Train), bn.Momentum, bn.Eps); err != nil {
		return err
	}
	g, b = elems(x.Len())
	return d.launch("bn_apply", g, b, y.Ptr(), x.Ptr(), ss.Ptr(), x.Len(), c, sp, int(bn.Act))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BatchNormBackward implements Backend.
func (d *DeviceBackend) BatchNormBackward(dx, dGamma, dBeta, dy, x, y *Tensor, bn BNArgs) error {
	if err := checkBN(x, bn); err != nil {
		return err
	}
	n, c, sp := dims(x.Shape)
	yp := cuda.DevPtr(0)
	if bn.Act != ActNone {
		if y == nil {
			return errors.New("gpu: BatchNorm backward with a fused activation needs the output")
		}
		yp = y.Ptr()
	}
	if d.dnn != nil && d.opts.DNNBatchNorm && bn.Train {
		g := dy
		if bn.Act != ActNone {
			// cuDNN knows no fused activation: mask dy with the output first.
			m, err := d.temp(dy.Len())
			if err != nil {
				return err
			}
			defer d.Release(m)
			gr, bl := elems(dy.Len())
			if err := d.launch("act_bwd", gr, bl, m.Ptr(), dy.Ptr(), yp, dy.Len(), int(bn.Act)); err != nil {
				return err
			}
			g = &Tensor{Shape: dy.Shape, blk: m.blk}
		}
		return d.dnn.BatchNormBackward(d.stream, bnSpec(x), x.Ptr(), g.Ptr(), dx.Ptr(), bn.Gamma.Ptr(), dGamma.Ptr(), dBeta.Ptr(), bn.Eps)
	}
	chunks := chunksOf(n * sp)
	part, err := d.temp(8 * c * chunks)
	if err != nil {
		return err
	}
	defer d.Release(part)
	if err := d.launch("bn_partial", cuda.D3(c, chunks, 1), cuda.D1(red), part.Ptr(), x.Ptr(), dy.Ptr(), yp, n, c, sp, chunks, int(bn.Act)); err != nil {
		return err
	}
	coef, err := d.temp(10 * c)
	if err != nil {
		return err
	}
	defer d.Release(coef)
	g, b := elems(c)
	if err := d.launch("bn_finish_bwd", g, b, coef.Ptr(), dGamma.Ptr(), dBeta.Ptr(), part.Ptr(), bn.Gamma.Ptr(), bn.Mean.Ptr(), bn.Var.Ptr(),
		c, n*sp, chunks, boolInt(bn.Train), bn.Eps); err != nil {
		return err
	}
	g, b = elems(x.Len())
	return d.launch("bn_dx", g, b, dx.Ptr(), x.Ptr(), dy.Ptr(), yp, coef.Ptr(), x.Len(), c, sp, int(bn.Act), boolInt(bn.Train))
}

// Activation implements Backend.
func (d *DeviceBackend) Activation(y, x *Tensor, a Act) error {
	if err := needSame("Activation", y, x); err != nil {
		return err
	}
	g, b := elems(x.Len())
	return d.launch("act_fwd", g, b, y.Ptr(), x.Ptr(), x.Len(), int(a))
}

// ActivationBackward implements Backend.
func (d *DeviceBackend) ActivationBackward(dx, dy, x *Tensor, a Act) error {
	if err := needSame("ActivationBackward", dx, dy, x); err != nil {
		return err
	}
	g, b := elems(x.Len())
	return d.launch("act_bwd", g, b, dx.Ptr(), dy.Ptr(), x.Ptr(), x.Len(), int(a))
}

// MaxPool implements Backend.
func (d *DeviceBackend) MaxPool(y, x *Tensor, p PoolGeom) error {
	h, w, oh, ow, err := poolShapes(p, x.Shape, y.Shape)
	if err != nil {
		return err
	}
	planes := x.Shape[0] * x.Shape[1]
	g, b := elems(y.Len())
	return d.launch("maxpool_fwd", g, b, y.Ptr(), x.Ptr(), planes, h, w, oh, ow, p.K, p.S, p.P)
}

// MaxPoolBackward implements Backend.
func (d *DeviceBackend) MaxPoolBackward(dx, dy, x *Tensor, p PoolGeom) error {
	h, w, oh, ow, err := poolShapes(p, x.Shape, dy.Shape)
	if err != nil {
		return err
	}
	planes := x.Shape[0] * x.Shape[1]
	g, b := elems(x.Len())
	return d.launch("maxpool_bwd", g, b, dx.Ptr(), dy.Ptr(), x.Ptr(), planes, h, w, oh, ow, p.K, p.S, p.P)
}

// GlobalAvgPool implements Backend.
func (d *DeviceBackend) GlobalAvgPool(y, x *Tensor) error {
	n, c, sp := dims(x.Shape)
	if !sameShape(y.Shape, []int{n, c}) || sp < 1 {
		return fmt.Errorf("gpu: global average pool of %v into %v", x.Shape, y.Shape)
	}
	g, b := elems(n * c)
	return d.launch("gap_fwd", g, b, y.Ptr(), x.Ptr(), n*c, sp)
}

// GlobalAvgPoolBackward implements Backend.
func (d *DeviceBackend) GlobalAvgPoolBackward(dx, dy *Tensor) error {
	n, c, sp := dims(dx.Shape)
	if !sameShape(dy.Shape, []int{n, c}) {
		return fmt.Errorf("gpu: global average pool gradient %v for %v", dy.Shape, dx.Shape)
	}
	g, b := elems(dx.Len())
	return d.launch("gap_bwd", g, b, dx.Ptr(), dy.Ptr(), n*c, sp)
}

// Linear implements Backend.
func (d *DeviceBackend) Linear(y, x, w, b *Tensor) error {
	m, k, o, err := linearDims(x.Shape, w.Shape, y.Shape)
	if err != nil || m == 0 {
		return err
	}
	beta := float32(0)
	if b != nil {
		g, bl := elems(m * o)
		if err := d.launch("bias_rows", g, bl, y.Ptr(), b.Ptr(), m, o); err != nil {
			return err
		}
		beta = 1
	}
	return d.gemm(cuda.Gemm{TransB: true, M: m, N: o, K: k, Alpha: 1, Beta: beta, A: x.Ptr(), LDA: k, B: w.Ptr(), LDB: k, C: y.Ptr(), LDC: o})
}

// colSums adds the column sums of x [rows, cols] into out.
func (d *DeviceBackend) colSums(out, x *Tensor, rows, cols int) error {
	chunks := chunksOf(rows * 32)
	part, err := d.temp(2 * cols * chunks)
	if err != nil {
		return err
	}
	defer d.Release(part)
	if err := d.launch("colsum_partial", cuda.D3((cols+31)/32, chunks, 1), cuda.D1(red), part.Ptr(), x.Ptr(), rows, cols, chunks); err != nil {
		return err
	}
	g, b := elems(cols)
	return d.launch("colsum_finish", g, b, out.Ptr(), part.Ptr(), cols, chunks)
}

// LinearBackward implements Backend.
func (d *DeviceBackend) LinearBackward(dx, dw, db, dy, x, w *Tensor) error {
	m, k, o, err := linearDims(x.Shape, w.Shape, dy.Shape)
	if err != nil || m == 0 {
		return err
	}
	if dx != nil {
		if err := d.gemm(cuda.Gemm{M: m, N: k, K: o, Alpha: 1, A: dy.Ptr(), LDA: o, B: w.Ptr(), LDB: k, C: dx.Ptr(), LDC: k}); err != nil {
			return err
		}
	}
	if dw != nil {
		if err := d.gemm(cuda.Gemm{TransA: true, M: o, N: k, K: m, Alpha: 1, Beta: 1, A: dy.Ptr(), LDA: o, B: x.Ptr(), LDB: k, C: dw.Ptr(), LDC: k}); err != nil {
			return err
		}
	}
	if db != nil {
		return d.colSums(db, dy, m, o)
	}
	return nil
}

// LayerNorm implements Backend.
func (d *DeviceBackend) LayerNorm(y, x, w, b *Tensor, eps float64) error {
	dd := x.Shape[len(x.Shape)-1]
	if err := needSame("LayerNorm", y, x); err != nil || w.Len() != dd || b.Len() != dd {
		return fmt.Errorf("gpu: LayerNorm of %v with weight %v and bias %v (%v)", x.Shape, w.Shape, b.Shape, err)
	}
	return d.launch("ln_fwd", cuda.D1(x.Len()/dd), cuda.D1(red), y.Ptr(), x.Ptr(), w.Ptr(), b.Ptr(), dd, eps)
}

// LayerNormBackward implements Backend.
func (d *DeviceBackend) LayerNormBackward(dx, dw, db, dy, x, w *Tensor, eps float64) error {
	dd := x.Shape[len(x.Shape)-1]
	if err := needSame("LayerNormBackward", dx, dy, x); err != nil {
		return err
	}
	rows := x.Len() / dd
	stats, err := d.temp(4 * rows)
	if err != nil {
		return err
	}
	defer d.Release(stats)
	if err := d.launch("ln_bwd_dx", cuda.D1(rows), cuda.D1(red), dx.Ptr(), stats.Ptr(), dy.Ptr(), x.Ptr(), w.Ptr(), dd, eps); err != nil {
		return err
	}
	chunks := chunksOf(rows * 32)
	part, err := d.temp(4 * dd * chunks)
	if err != nil {
		return err
	}
	defer d.Release(part)
	if err := d.launch("ln_param_partial", cuda.D3((dd+31)/32, chunks, 1), cuda.D1(red), part.Ptr(), dy.Ptr(), x.Ptr(), stats.Ptr(), rows, dd, chunks); err != nil {
		return err
	}
	g, b := elems(dd)
	return d.launch("ln_param_finish", g, b, dw.Ptr(), db.Ptr(), part.Ptr(), dd, chunks)
}

// headTensors allocates q, k, v (and o) [B, H, T, hd] scratch tensors.
func (d *DeviceBackend) headTensors(n, count int) ([]*Tensor, error) {
	var ts []*Tensor
	for range count {
		t, err := d.temp(n)
		if err != nil {
			for _, u := range ts {
				d.Release(u)
			}
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// Attention implements Backend.
func (d *DeviceBackend) Attention(out, probs, qkv *Tensor, heads int, scale float32) error {
	b, t, dd, hd, err := attnDims(qkv.Shape, out.Shape, probs.Shape, heads)
	if err != nil {
		return err
	}
	ts, err := d.headTensors(b*t*dd, 4)
	if err != nil {
		return err
	}
	defer func() {
		for _, u := range ts {
			d.Release(u)
		}
	}()
	q, k, v, o := ts[0], ts[1], ts[2], ts[3]
	g, bl := elems(qkv.Len())
	if err := d.launch("qkv_split", g, bl, q.Ptr(), k.Ptr(), v.Ptr(), qkv.Ptr(), b, t, heads, hd); err != nil {
		return err
	}
	bh := b * heads
	if err := d.gemm(cuda.Gemm{TransB: true, M: t, N: t, K: hd, Alpha: scale, A: q.Ptr(), LDA: hd, B: k.Ptr(), LDB: hd,
		C: probs.Ptr(), LDC: t, Batch: bh, StrideA: t * hd, StrideB: t * hd, StrideC: t * t}); err != nil {
		return err
	}
	if err := d.launch("softmax_rows", cuda.D1(bh*t), cuda.D1(red), probs.Ptr(), t); err != nil {
		return err
	}
	if err := d.gemm(cuda.Gemm{M: t, N: hd, K: t, Alpha: 1, A: probs.Ptr(), LDA: t, B: v.Ptr(), LDB: hd,
		C: o.Ptr(), LDC: hd, Batch: bh, StrideA: t * t, StrideB: t * hd, StrideC: t * hd}); err != nil {
		return err
	}
	g, bl = elems(out.Len())
	return d.launch("heads_merge", g, bl, out.Ptr(), o.Ptr(), b, t, heads, hd)
}

// AttentionBackward implements Backend.
func (d *DeviceBackend) AttentionBackward(dqkv, dout, qkv, probs *Tensor, heads int, scale float32) error {
	b, t, dd, hd, err := attnDims(qkv.Shape, dout.Shape, probs.Shape, heads)
	if err != nil {
		return err
	}
	ts, err := d.headTensors(b*t*dd, 7)
	if err != nil {
		return err
	}
	defer func() {
		for _, u := range ts {
			d.Release(u)
		}
	}()
	q, k, v, do, dq, dk, dv := ts[0], ts[1], ts[2], ts[3], ts[4], ts[5], ts[6]
	bh := b * heads
	dp, err := d.temp(bh * t * t)
	if err != nil {
		return err
	}
	defer d.Release(dp)
	g, bl := elems(qkv.Len())
	if err := d.launch("qkv_split", g, bl, q.Ptr(), k.Ptr(), v.Ptr(), qkv.Ptr(), b, t, heads, hd); err != nil {
		return err
	}
	g, bl = elems(dout.Len())
	if err := d.launch("heads_split", g, bl, do.Ptr(), dout.Ptr(), b, t, heads, hd); err != nil {
		return err
	}
	// dV = Pᵀ·dO, dP = dO·Vᵀ.
	if err := d.gemm(cuda.Gemm{TransA: true, M: t, N: hd, K: t, Alpha: 1, A: probs.Ptr(), LDA: t, B: do.Ptr(), LDB: hd,
		C: dv.Ptr(), LDC: hd, Batch: bh, StrideA: t * t, StrideB: t * hd, StrideC: t * hd}); err != nil {
		return err
	}
	if err := d.gemm(cuda.Gemm{TransB: true, M: t, N: t, K: hd, Alpha: 1, A: do.Ptr(), LDA: hd, B: v.Ptr(), LDB: hd,
		C: dp.Ptr(), LDC: t, Batch: bh, StrideA: t * hd, StrideB: t * hd, StrideC: t * t}); err != nil {
		return err
	}
	if err := d.launch("softmax_bwd", cuda.D1(bh*t), cuda.D1(red), dp.Ptr(), probs.Ptr(), t); err != nil {
		return err
	}
	// dQ = scale·dS·K, dK = scale·dSᵀ·Q.
	if err := d.gemm(cuda.Gemm{M: t, N: hd, K: t, Alpha: scale, A: dp.Ptr(), LDA: t, B: k.Ptr(), LDB: hd,
		C: dq.Ptr(), LDC: hd, Batch: bh, StrideA: t * t, StrideB: t * hd, StrideC: t * hd}); err != nil {
		return err
	}
	if err := d.gemm(cuda.Gemm{TransA: true, M: t, N: hd, K: t, Alpha: scale, A: dp.Ptr(), LDA: t, B: q.Ptr(), LDB: hd,
		C: dk.Ptr(), LDC: hd, Batch: bh, StrideA: t * t, StrideB: t * hd, StrideC: t * hd}); err != nil {
		return err
	}
	g, bl = elems(dqkv.Len())
	return d.launch("qkv_merge", g, bl, dqkv.Ptr(), dq.Ptr(), dk.Ptr(), dv.Ptr(), b, t, heads, hd)
}

// Tokens implements Backend.
func (d *DeviceBackend) Tokens(y, patches, cls, pos *Tensor) error {
	b, dd, n, err := tokenDims(patches.Shape, cls.Shape, pos.Shape, y.Shape)
	if err != nil {
		return err
	}
	g, bl := elems(y.Len())
	return d.launch("tokens_fwd", g, bl, y.Ptr(), patches.Ptr(), cls.Ptr(), pos.Ptr(), b, dd, n)
}

// TokensBackward implements Backend.
func (d *DeviceBackend) TokensBackward(dPatches, dCls, dPos, dy *Tensor) error {
	b, dd, n, err := tokenDims(dPatches.Shape, dCls.Shape, dPos.Shape, dy.Shape)
	if err != nil {
		return err
	}
	g, bl := elems(dPatches.Len())
	if err := d.launch("tokens_bwd_patches", g, bl, dPatches.Ptr(), dy.Ptr(), b, dd, n); err != nil {
		return err
	}
	g, bl = elems(dPos.Len())
	return d.launch("tokens_bwd_params", g, bl, dCls.Ptr(), dPos.Ptr(), dy.Ptr(), b, dd, n)
}

// ClassToken implements Backend.
func (d *DeviceBackend) ClassToken(y, x *Tensor) error {
	if len(x.Shape) != 3 || !sameShape(y.Shape, []int{x.Shape[0], x.Shape[2]}) {
		return fmt.Errorf("gpu: class token of %v into %v", x.Shape, y.Shape)
	}
	g, b := elems(y.Len())
	return d.launch("cls_fwd", g, b, y.Ptr(), x.Ptr(), x.Shape[0], x.Shape[1], x.Shape[2])
}

// ClassTokenBackward implements Backend.
func (d *DeviceBackend) ClassTokenBackward(dx, dy *Tensor) error {
	if len(dx.Shape) != 3 || !sameShape(dy.Shape, []int{dx.Shape[0], dx.Shape[2]}) {
		return fmt.Errorf("gpu: class token gradient %v for %v", dy.Shape, dx.Shape)
	}
	g, b := elems(dx.Len())
	return d.launch("cls_bwd", g, b, dx.Ptr(), dy.Ptr(), dx.Shape[0], dx.Shape[1], dx.Shape[2])
}

// PosEmbedInterp implements Backend.
func (d *DeviceBackend) PosEmbedInterp(y, pos, w *Tensor) error {
	s, r, dd, err := interpDims(pos.Shape, y.Shape, w.Shape)
	if err != nil {
		return err
	}
	if err := d.kd.CopyDtoD(y.Ptr(), pos.Ptr(), 4*dd, d.stream); err != nil {
		return err
	}
	return d.gemm(cuda.Gemm{M: r, N: dd, K: s, Alpha: 1, A: w.Ptr(), LDA: s, B: off(pos, dd), LDB: dd, C: off(y, dd), LDC: dd})
}

// PosEmbedInterpBackward implements Backend.
func (d *DeviceBackend) PosEmbedInterpBackward(dPos, dy, w *Tensor) error {
	s, r, dd, err := interpDims(dPos.Shape, dy.Shape, w.Shape)
	if err != nil {
		return err
	}
	g, b := elems(dd)
	if err := d.launch("add_to", g, b, dPos.Ptr(), dy.Ptr(), dd); err != nil {
		return err
	}
	return d.gemm(cuda.Gemm{TransA: true, M: s, N: dd, K: r, Alpha: 1, Beta: 1, A: w.Ptr(), LDA: s, B: off(dy, dd), LDB: dd,
		C: off(dPos, dd), LDC: dd})
}

// DropPath implements Backend.
func (d *DeviceBackend) DropPath(y, x, mask *Tensor) error {
	if err := needSame("DropPath", y, x); err != nil || mask.Len() != x.Shape[0] {
		return fmt.Errorf("gpu: drop-path of %v with mask %v (%v)", x.Shape, mask.Shape, err)
	}
	g, b := elems(x.Len())
	return d.launch("drop_path", g, b, y.Ptr(), x.Ptr(), mask.Ptr(), x.Len(), x.Len()/x.Shape[0])
}

// DropPathBackward implements Backend.
func (d *DeviceBackend) DropPathBackward(dx, dy, mask *Tensor) error { return d.DropPath(dx, dy, mask) }

// The CUDA device is all three kinds of device the package uses.
var (
	_ KernelDevice = (*cuda.Device)(nil)
	_ StreamDevice = (*cuda.Device)(nil)
	_ dnnDevice    = (*cuda.Device)(nil)
)
