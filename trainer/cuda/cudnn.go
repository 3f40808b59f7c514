package cuda

import (
	"fmt"
	"unsafe"
)

type dnnAPI struct {
	lib    *Library
	handle uintptr

	cudnnCreate                                    func(h *uintptr) int32
	cudnnDestroy                                   func(h uintptr) int32
	cudnnSetStream                                 func(h, s uintptr) int32
	cudnnGetVersion                                func() uint64
	cudnnGetErrorString                            func(status int32) string
	cudnnCreateTensorDescriptor                    func(d *uintptr) int32
	cudnnSetTensor4dDescriptor                     func(d uintptr, format, dtype, n, c, h, w int32) int32
	cudnnDestroyTensorDescriptor                   func(d uintptr) int32
	cudnnCreateFilterDescriptor                    func(d *uintptr) int32
	cudnnSetFilter4dDescriptor                     func(d uintptr, dtype, format, k, c, h, w int32) int32
	cudnnDestroyFilterDescriptor                   func(d uintptr) int32
	cudnnCreateConvolutionDescriptor               func(d *uintptr) int32
	cudnnSetConvolution2dDescriptor                func(d uintptr, padH, padW, u, v, dilH, dilW, mode, computeType int32) int32
	cudnnSetConvolutionGroupCount                  func(d uintptr, groups int32) int32
	cudnnSetConvolutionMathType                    func(d uintptr, math int32) int32
	cudnnDestroyConvolutionDescriptor              func(d uintptr) int32
	cudnnGetConvolution2dForwardOutputDim          func(conv, x, w uintptr, n, c, h, ww *int32) int32
	cudnnGetConvolutionForwardAlgorithm_v7         func(h, x, w, conv, y uintptr, req int32, ret *int32, perf unsafe.Pointer) int32
	cudnnFindConvolutionForwardAlgorithm           func(h, x, w, conv, y uintptr, req int32, ret *int32, perf unsafe.Pointer) int32
	cudnnGetConvolutionForwardWorkspaceSize        func(h, x, w, conv, y uintptr, algo int32, size *uint64) int32
	cudnnConvolutionForward                        func(h uintptr, alpha *float32, xd uintptr, x uint64, wd uintptr, w uint64, conv uintptr, algo int32, ws, wsSize uint64, beta *float32, yd uintptr, y uint64) int32
	cudnnGetConvolutionBackwardDataAlgorithm_v7    func(h, w, dy, conv, dx uintptr, req int32, ret *int32, perf unsafe.Pointer) int32
	cudnnFindConvolutionBackwardDataAlgorithm      func(h, w, dy, conv, dx uintptr, req int32, ret *int32, perf unsafe.Pointer) int32
	cudnnGetConvolutionBackwardDataWorkspaceSize   func(h, w, dy, conv, dx uintptr, algo int32, size *uint64) int32
	cudnnConvolutionBackwardData                   func(h uintptr, alpha *float32, wd uintptr, w uint64, dyd uintptr, dy uint64, conv uintptr, algo int32, ws, wsSize uint64, beta *float32, dxd uintptr, dx uint64) int32
	cudnnGetConvolutionBackwardFilterAlgorithm_v7  func(h, x, dy, conv, dw uintptr, req int32, ret *int32, perf unsafe.Pointer) int32
	cudnnFindConvolutionBackwardFilterAlgorithm    func(h, x, dy, conv, dw uintptr, req int32, ret *int32, perf unsafe.Pointer) int32
	cudnnGetConvolutionBackwardFilterWorkspaceSize func(h, x, dy, conv, dw uintptr, algo int32, size *uint64) int32
	cudnnConvolutionBackwardFilter                 func(h uintptr, alpha *float32, xd uintptr, x uint64, dyd uintptr, dy uint64, conv uintptr, algo int32, ws, wsSize uint64, beta *float32, dwd uintptr, dw uint64) int32
	cudnnDeriveBNTensorDescriptor                  func(d, x uintptr, mode int32) int32
	cudnnBatchNormalizationForwardTraining         func(h uintptr, mode int32, alpha, beta *float32, xd uintptr, x uint64, yd uintptr, y uint64, bnd uintptr, scale, bias uint64, factor float64, runMean, runVar uint64, eps float64, saveMean, saveInvVar uint64) int32
	cudnnBatchNormalizationForwardInference        func(h uintptr, mode int32, alpha, beta *float32, xd uintptr, x uint64, yd uintptr, y uint64, bnd uintptr, scale, bias, mean, variance uint64, eps float64) int32
	cudnnBatchNormalizationBackward                func(h uintptr, mode int32, alphaData, betaData, alphaParam, betaParam *float32, xd uintptr, x uint64, dyd uintptr, dy uint64, dxd uintptr, dx uint64, bnd uintptr, scale, dScale, dBias uint64, eps float64, saveMean, saveInvVar uint64) int32
}

// cuDNN enumerations used here.
const (
	dnnTensorNCHW        = 0 // CUDNN_TENSOR_NCHW
	dnnFloat             = 0 // CUDNN_DATA_FLOAT
	dnnCrossCorrelation  = 1 // CUDNN_CROSS_CORRELATION (torch's convolution)
	dnnBatchNormSpatial  = 1 // CUDNN_BATCHNORM_SPATIAL
	dnnDefaultMath       = 0 // CUDNN_DEFAULT_MATH: TF32 allowed on Ampere and newer
	dnnTensorOpMath      = 1 // CUDNN_TENSOR_OP_MATH
	dnnTensorOpMathAllow = 2 // CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION
	dnnFMAMath           = 3 // CUDNN_FMA_MATH: FP32 FMA kernels only
)

func bindDNN(l *Library) (*dnnAPI, error) {
	a := &dnnAPI{lib: l}
	b := &binder{lib: l}
	b.fn(&a.cudnnCreate, "cudnnCreate")
	b.fn(&a.cudnnDestroy, "cudnnDestroy")
	b.fn(&a.cudnnSetStream, "cudnnSetStream")
	b.fn(&a.cudnnGetVersion, "cudnnGetVersion")
	b.fn(&a.cudnnGetErrorString, "cudnnGetErrorString")
	b.fn(&a.cudnnCreateTensorDescriptor, "cudnnCreateTensorDescriptor")
	b.fn(&a.cudnnSetTensor4dDescriptor, "cudnnSetTensor4dDescriptor")
	b.fn(&a.cudnnDestroyTensorDescriptor, "cudnnDestroyTensorDescriptor")
	b.fn(&a.cudnnCreateFilterDescriptor, "cudnnCreateFilterDescriptor")
	b.fn(&a.cudnnSetFilter4dDescriptor, "cudnnSetFilter4dDescriptor")
	b.fn(&a.cudnnDestroyFilterDescriptor, "cudnnDestroyFilterDescriptor")
	b.fn(&a.cudnnCreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor")
	b.fn(&a.cudnnSetConvolution2dDescriptor, "cudnnSetConvolution2dDescriptor")
	b.fn(&a.cudnnSetConvolutionGroupCount, "cudnnSetConvolutionGroupCount")
	b.fn(&a.cudnnSetConvolutionMathType, "cudnnSetConvolutionMathType")
	b.fn(&a.cudnnDestroyConvolutionDescriptor, "cudnnDestroyConvolutionDescriptor")
	b.fn(&a.cudnnGetConvolution2dForwardOutputDim, "cudnnGetConvolution2dForwardOutputDim")
	b.fn(&a.cudnnGetConvolutionForwardAlgorithm_v7, "cudnnGetConvolutionForwardAlgorithm_v7")
	b.optional(&a.cudnnFindConvolutionForwardAlgorithm, "cudnnFindConvolutionForwardAlgorithm")
	b.fn(&a.cudnnGetConvolutionForwardWorkspaceSize, "cudnnGetConvolutionForwardWorkspaceSize")
	b.fn(&a.cudnnConvolutionForward, "cudnnConvolutionForward")
	b.fn(&a.cudnnGetConvolutionBackwardDataAlgorithm_v7, "cudnnGetConvolutionBackwardDataAlgorithm_v7")
	b.optional(&a.cudnnFindConvolutionBackwardDataAlgorithm, "cudnnFindConvolutionBackwardDataAlgorithm")
	b.fn(&a.cudnnGetConvolutionBackwardDataWorkspaceSize, "cudnnGetConvolutionBackwardDataWorkspaceSize")
	b.fn(&a.cudnnConvolutionBackwardData, "cudnnConvolutionBackwardData")
	b.fn(&a.cudnnGetConvolutionBackwardFilterAlgorithm_v7, "cudnnGetConvolutionBackwardFilterAlgorithm_v7")
	b.optional(&a.cudnnFindConvolutionBackwardFilterAlgorithm, "cudnnFindConvolutionBackwardFilterAlgorithm")
	b.fn(&a.cudnnGetConvolutionBackwardFilterWorkspaceSize, "cudnnGetConvolutionBackwardFilterWorkspaceSize")
	b.fn(&a.cudnnConvolutionBackwardFilter, "cudnnConvolutionBackwardFilter")
	b.fn(&a.cudnnDeriveBNTensorDescriptor, "cudnnDeriveBNTensorDescriptor")
	b.fn(&a.cudnnBatchNormalizationForwardTraining, "cudnnBatchNormalizationForwardTraining")
	b.fn(&a.cudnnBatchNormalizationForwardInference, "cudnnBatchNormalizationForwardInference")
	b.fn(&a.cudnnBatchNormalizationBackward, "cudnnBatchNormalizationBackward")
	return a, b.err()
}

func (a *dnnAPI) check(fn string, s int32) error {
	if s == 0 {
		return nil
	}
	return &Error{Func: fn, Code: int(s), Msg: a.cudnnGetErrorString(s)}
}

// dnnAlgoPerf is cudnnConvolutionFwdAlgoPerf_t (and its backward twins,
// laid out alike): 48 bytes on 64-bit Linux.
type dnnAlgoPerf struct {
	Algo        int32
	Status      int32
	Time        float32
	_           int32
	Memory      uint64
	Determinism int32
	MathType    int32
	Reserved    [3]int32
	_           int32
}

// ConvSpec is one convolution's shapes and hyper-parameters: x [N, C, H, W],
// w [O, C/Groups, KH, KW], torch.nn.Conv2d's semantics.
type ConvSpec struct {
	N, C, H, W       int
	O, KH, KW        int
	StrideH, StrideW int
	PadH, PadW       int
	DilH, DilW       int
	Groups           int
}

// Out returns the output's height and width.
func (s ConvSpec) Out() (oh, ow int) {
	oh = (s.H+2*s.PadH-s.DilH*(s.KH-1)-1)/s.StrideH + 1
	ow = (s.W+2*s.PadW-s.DilW*(s.KW-1)-1)/s.StrideW + 1
	return oh, ow
}

// Check reports a spec that is not a valid convolution.
func (s ConvSpec) Check() error {
	if s.N < 1 || s.C < 1 || s.H < 1 || s.W < 1 || s.O < 1 || s.KH < 1 || s.KW < 1 {
		return fmt.Errorf("cuda: convolution %+v: sizes must be positive", s)
	}
	if s.StrideH < 1 || s.StrideW < 1 || s.DilH < 1 || s.DilW < 1 || s.PadH < 0 || s.PadW < 0 {
		return fmt.Errorf("cuda: convolution %+v: bad stride, dilation or padding", s)
	}
	if s.Groups < 1 || s.C%s.Groups != 0 || s.O%s.Groups != 0 {
		return fmt.Errorf("cuda: convolution %+v: groups must divide both channel counts", s)
	}
	if oh, ow := s.Out(); oh < 1 || ow < 1 {
		return fmt.Errorf("cuda: convolution %+v: input too small for the kernel", s)
	}
	return nil
}

// ConvAlgo is the algorithm chosen for one direction of a convolution.
type ConvAlgo struct {
	ID        int // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
	Workspace int // bytes
	MathType  int
}

// ConvPlan is a convolution prepared for cuDNN: descriptors and the
// algorithm of each direction.
type ConvPlan struct {
	Spec                    ConvSpec
	Fwd, BwdData, BwdFilter ConvAlgo
	x, y, w, conv           uintptr
}

// Workspace is the most workspace any direction of the plan needs.
func (p *ConvPlan) Workspace() int {
	return max(p.Fwd.Workspace, p.BwdData.Workspace, p.BwdFilter.Workspace)
}

// chooseAlgo returns the first usable entry of perf (cuDNN orders them best
// first): successful, within the workspace limit and, without TF32, of a
// math type that keeps FP32 arithmetic.
func chooseAlgo(perf []dnnAlgoPerf, limit int, tf32 bool) (ConvAlgo, bool) {
	for _, p := range perf {
		if p.Status != 0 || p.Memory > uint64(limit) {
			continue
		}
		if !tf32 && (p.MathType == dnnTensorOpMath || p.MathType == dnnTensorOpMathAllow) {
			continue
		}
		return ConvAlgo{ID: int(p.Algo), Workspace: int(p.Memory), MathType: int(p.MathType)}, true
	}
	return ConvAlgo{}, false
}

// planConv builds descriptors for s and picks an algorithm per direction,
// with cuDNN's heuristics or, when benchmark is set and the library has
// them, its timed search.
func (a *dnnAPI) planConv(s ConvSpec, limit int, tf32, benchmark bool) (*ConvPlan, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	p := &ConvPlan{Spec: s}
	fail := func(err error) (*ConvPlan, error) {
		a.destroyPlan(p)
		return nil, fmt.Errorf("cuda: planning convolution %+v: %w", s, err)
	}
	oh, ow := s.Out()
	steps := []struct {
		name string
		r    func() int32
	}{
		{"cudnnCreateTensorDescriptor", func() int32 { return a.cudnnCreateTensorDescriptor(&p.x) }},
		{"cudnnSetTensor4dDescriptor", func() int32 {
			return a.cudnnSetTensor4dDescriptor(p.x, dnnTensorNCHW, dnnFloat, int32(s.N), int32(s.C), int32(s.H), int32(s.W))
		}},
		{"cudnnCreateTensorDescriptor", func() int32 { return a.cudnnCreateTensorDescriptor(&p.y) }},
		{"cudnnSetTensor4dDescriptor", func() int32 {
			return a.cudnnSetTensor4dDescriptor(p.y, dnnTensorNCHW, dnnFloat, int32(s.N), int32(s.O), int32(oh), int32(ow))
		}},
		{"cudnnCreateFilterDescriptor", func() int32 { return a.cudnnCreateFilterDescriptor(&p.w) }},
		{"cudnnSetFilter4dDescriptor", func() int32 {
			return a.cudnnSetFilter4dDescriptor(p.w, dnnFloat, dnnTensorNCHW, int32(s.O), int32(s.C/s.Groups), int32(s.KH), int32(s.KW))
		}},
		{"cudnnCreateConvolutionDescriptor", func() int32 { return a.cudnnCreateConvolutionDescriptor(&p.conv) }},
		{"cudnnSetConvolution2dDescriptor", func() int32 {
			return a.cudnnSetConvolution2dDescriptor(p.conv, int32(s.PadH), int32(s.PadW), int32(s.StrideH), int32(s.StrideW),
				int32(s.DilH), int32(s.DilW), dnnCrossCorrelation, dnnFloat)
		}},
		{"cudnnSetConvolutionGroupCount", func() int32 { return a.cudnnSetConvolutionGroupCount(p.conv, int32(s.Groups)) }},
		{"cudnnSetConvolutionMathType", func() int32 {
			if tf32 {
				return a.cudnnSetConvolutionMathType(p.conv, dnnDefaultMath)
			}
			return a.cudnnSetConvolutionMathType(p.conv, dnnFMAMath)
		}},
	}
	for _, st := range steps {
		if err := a.check(st.name, st.r()); err != nil {
			return fail(err)
		}
	}
	var n, c, h, w int32
	if err := a.check("cudnnGetConvolution2dForwardOutputDim", a.cudnnGetConvolution2dForwardOutputDim(p.conv, p.x, p.w, &n, &c, &h, &w)); err != nil {
		return fail(err)
	}
	if int(n) != s.N || int(c) != s.O || int(h) != oh || int(w) != ow {
		return fail(fmt.Errorf("cuDNN's output %dx%dx%dx%d differs from torch's %dx%dx%dx%d", n, c, h, w, s.N, s.O, oh, ow))
	}
	const req = 8
	perf := make([]dnnAlgoPerf, req)
	search := func(name string, heur, find func(h, a1, a2, conv, a3 uintptr, req int32, ret *int32, perf unsafe.Pointer) int32,
		a1, a2, a3 uintptr) ([]dnnAlgoPerf, error) {
		f, fname := heur, name+"_v7"
		if benchmark && find != nil {
			f, fname = find, "cudnnFind"+name[len("cudnnGet"):]
		}
		var got int32
		if err := a.check(fname, f(a.handle, a1, a2, p.conv, a3, req, &got, unsafe.Pointer(&perf[0]))); err != nil {
			return nil, err
		}
		return perf[:got], nil
	}
	type direction struct {
		name       string
		heur, find func(h, a1, a2, conv, a3 uintptr, req int32, ret *int32, perf unsafe.Pointer) int32
		a1, a2, a3 uintptr
		dst        *ConvAlgo
	}
	for _, d := range []direction{
		{"cudnnGetConvolutionForwardAlgorithm", a.cudnnGetConvolutionForwardAlgorithm_v7, a.cudnnFindConvolutionForwardAlgorithm, p.x, p.w, p.y, &p.Fwd},
		{"cudnnGetConvolutionBackwardDataAlgorithm", a.cudnnGetConvolutionBackwardDataAlgorithm_v7, a.cudnnFindConvolutionBackwardDataAlgorithm, p.w, p.y, p.x, &p.BwdData},
		{"cudnnGetConvolutionBackwardFilterAlgorithm", a.cudnnGetConvolutionBackwardFilterAlgorithm_v7, a.cudnnFindConvolutionBackwardFilterAlgorithm, p.x, p.y, p.w, &p.BwdFilter},
	} {
		list, err := search(d.name, d.heur, d.find, d.a1, d.a2, d.a3)
		if err != nil {
			return fail(err)
		}
		algo, ok := chooseAlgo(list, limit, tf32)
		if !ok {
			return fail(fmt.Errorf("%s: no algorithm fits %d bytes of workspace with TF32 %v", d.name, limit, onOff(tf32)))
		}
		*d.dst = algo
	}
	// The heuristics' memory figures are estimates: ask for the exact sizes.
	var size uint64
	if err := a.check("cudnnGetConvolutionForwardWorkspaceSize", a.cudnnGetConvolutionForwardWorkspaceSize(a.handle, p.x, p.w, p.conv, p.y, int32(p.Fwd.ID), &size)); err != nil {
		return fail(err)
	}
	p.Fwd.Workspace = int(size)
	if err := a.check("cudnnGetConvolutionBackwardDataWorkspaceSize", a.cudnnGetConvolutionBackwardDataWorkspaceSize(a.handle, p.w, p.y, p.conv, p.x, int32(p.BwdData.ID), &size)); err != nil {
		return fail(err)
	}
	p.BwdData.Workspace = int(size)
	if err := a.check("cudnnGetConvolutionBackwardFilterWorkspaceSize", a.cudnnGetConvolutionBackwardFilterWorkspaceSize(a.handle, p.x, p.y, p.conv, p.w, int32(p.BwdFilter.ID), &size)); err != nil {
		return fail(err)
	}
	p.BwdFilter.Workspace = int(size)
	return p, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (a *dnnAPI) destroyPlan(p *ConvPlan) {
	if p.x != 0 {
		a.cudnnDestroyTensorDescriptor(p.x)
	}
	if p.y != 0 {
		a.cudnnDestroyTensorDescriptor(p.y)
	}
	if p.w != 0 {
		a.cudnnDestroyFilterDescriptor(p.w)
	}
	if p.conv != 0 {
		a.cudnnDestroyConvolutionDescriptor(p.conv)
	}
}

// BNSpec is a BatchNorm over x [N, C, H, W] (H = W = 1 for [N, C]).
type BNSpec struct{ N, C, H, W int }

// bnDescs are the descriptors of one BNSpec: x (and y) and the derived
// per-channel descriptor.
type bnDescs struct{ x, bn uintptr }

func (a *dnnAPI) bnDescriptors(s BNSpec) (*bnDescs, error) {
	d := &bnDescs{}
	if err := a.check("cudnnCreateTensorDescriptor", a.cudnnCreateTensorDescriptor(&d.x)); err != nil {
		return nil, err
	}
	if err := a.check("cudnnSetTensor4dDescriptor", a.cudnnSetTensor4dDescriptor(d.x, dnnTensorNCHW, dnnFloat, int32(s.N), int32(s.C), int32(s.H), int32(s.W))); err != nil {
		a.cudnnDestroyTensorDescriptor(d.x)
		return nil, err
	}
	if err := a.check("cudnnCreateTensorDescriptor", a.cudnnCreateTensorDescriptor(&d.bn)); err != nil {
		a.cudnnDestroyTensorDescriptor(d.x)
		return nil, err
	}
	if err := a.check("cudnnDeriveBNTensorDescriptor", a.cudnnDeriveBNTensorDescriptor(d.bn, d.x, dnnBatchNormSpatial)); err != nil {
		a.cudnnDestroyTensorDescriptor(d.x)
		a.cudnnDestroyTensorDescriptor(d.bn)
		return nil, err
	}
	return d, nil
}
