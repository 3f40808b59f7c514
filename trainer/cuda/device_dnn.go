package cuda

// The cuDNN side of Device: convolutions and BatchNorm through cuDNN 9's
// legacy API. Each method returns ErrNoDNN without cuDNN.

// PlanConv returns the plan of convolution s, made on its first use:
// descriptors and, per direction, the algorithm cuDNN ranks first among
// those needing at most workspaceLimit bytes (and, without TF32, keeping
// FP32 arithmetic).
func (d *Device) PlanConv(s ConvSpec, workspaceLimit int) (*ConvPlan, error) {
	if d.dnn == nil {
		return nil, ErrNoDNN
	}
	if err := d.lock(); err != nil {
		return nil, err
	}
	defer d.unlock()
	if p, ok := d.plans[s]; ok {
		return p, nil
	}
	p, err := d.dnn.planConv(s, workspaceLimit, d.opts.TF32, d.opts.ConvBenchmark)
	if err != nil {
		return nil, err
	}
	d.plans[s] = p
	return p, nil
}

// dnnCall runs f with the context current and cuDNN on stream s.
func (d *Device) dnnCall(s Stream, fn string, f func(a *dnnAPI) int32) error {
	if d.dnn == nil {
		return ErrNoDNN
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	if err := d.dnn.check("cudnnSetStream", d.dnn.cudnnSetStream(d.dnn.handle, uintptr(s))); err != nil {
		return err
	}
	return d.dnn.check(fn, f(d.dnn))
}

// ConvForward queues y = conv(x, w) on s (y overwritten), with ws holding
// at least p.Fwd.Workspace bytes.
func (d *Device) ConvForward(p *ConvPlan, s Stream, x, w, y, ws DevPtr, wsBytes int) error {
	alpha, beta := float32(1), float32(0)
	return d.dnnCall(s, "cudnnConvolutionForward", func(a *dnnAPI) int32 {
		return a.cudnnConvolutionForward(a.handle, &alpha, p.x, uint64(x), p.w, uint64(w), p.conv, int32(p.Fwd.ID),
			uint64(ws), uint64(wsBytes), &beta, p.y, uint64(y))
	})
}

// ConvBackwardData queues dx = the input gradient of dy (dx overwritten).
func (d *Device) ConvBackwardData(p *ConvPlan, s Stream, w, dy, dx, ws DevPtr, wsBytes int) error {
	alpha, beta := float32(1), float32(0)
	return d.dnnCall(s, "cudnnConvolutionBackwardData", func(a *dnnAPI) int32 {
		return a.cudnnConvolutionBackwardData(a.handle, &alpha, p.w, uint64(w), p.y, uint64(dy), p.conv, int32(p.BwdData.ID),
			uint64(ws), uint64(wsBytes), &beta, p.x, uint64(dx))
	})
}

// ConvBackwardFilter queues the filter gradient of dy into dw, added to
// what dw holds when accumulate is set, overwriting it otherwise.
func (d *Device) ConvBackwardFilter(p *ConvPlan, s Stream, x, dy, dw, ws DevPtr, wsBytes int, accumulate bool) error {
	alpha, beta := float32(1), float32(0)
	if accumulate {
		beta = 1
	}
	return d.dnnCall(s, "cudnnConvolutionBackwardFilter", func(a *dnnAPI) int32 {
		return a.cudnnConvolutionBackwardFilter(a.handle, &alpha, p.x, uint64(x), p.y, uint64(dy), p.conv, int32(p.BwdFilter.ID),
			uint64(ws), uint64(wsBytes), &beta, p.w, uint64(dw))
	})
}

// bn returns the descriptors of spec, made on first use (lock held).
func (d *Device) bn(spec BNSpec) (*bnDescs, error) {
	if b, ok := d.bns[spec]; ok {
		return b, nil
	}
	b, err := d.dnn.bnDescriptors(spec)
	if err != nil {
		return nil, err
	}
	d.bns[spec] = b
	return b, nil
}

// bnCall is dnnCall with spec's descriptors.
func (d *Device) bnCall(s Stream, spec BNSpec, fn string, f func(a *dnnAPI, b *bnDescs) int32) error {
	if d.dnn == nil {
		return ErrNoDNN
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlock()
	b, err := d.bn(spec)
	if err != nil {
		return err
	}
	if err := d.dnn.check("cudnnSetStream", d.dnn.cudnnSetStream(d.dnn.handle, uintptr(s))); err != nil {
		return err
	}
	return d.dnn.check(fn, f(d.dnn, b))
}

// BatchNormTrain queues training-mode BatchNorm: y from the batch
// statistics, the running mean and variance moved by momentum towards the
// batch mean and unbiased variance (torch's rule).
func (d *Device) BatchNormTrain(s Stream, spec BNSpec, x, y, gamma, beta, runMean, runVar DevPtr, momentum, eps float64) error {
	one, zero := float32(1), float32(0)
	return d.bnCall(s, spec, "cudnnBatchNormalizationForwardTraining", func(a *dnnAPI, b *bnDescs) int32 {
		return a.cudnnBatchNormalizationForwardTraining(a.handle, dnnBatchNormSpatial, &one, &zero, b.x, uint64(x), b.x, uint64(y),
			b.bn, uint64(gamma), uint64(beta), momentum, uint64(runMean), uint64(runVar), eps, 0, 0)
	})
}

// BatchNormInfer queues evaluation-mode BatchNorm with the running
// statistics.
func (d *Device) BatchNormInfer(s Stream, spec BNSpec, x, y, gamma, beta, mean, variance DevPtr, eps float64) error {
	one, zero := float32(1), float32(0)
	return d.bnCall(s, spec, "cudnnBatchNormalizationForwardInference", func(a *dnnAPI, b *bnDescs) int32 {
		return a.cudnnBatchNormalizationForwardInference(a.handle, dnnBatchNormSpatial, &one, &zero, b.x, uint64(x), b.x, uint64(y),
			b.bn, uint64(gamma), uint64(beta), uint64(mean), uint64(variance), eps)
	})
}

// BatchNormBackward queues the training-mode BatchNorm gradients: dx
// overwritten, dgamma and dbeta accumulated. The batch statistics are
// recomputed from x (no saved state).
func (d *Device) BatchNormBackward(s Stream, spec BNSpec, x, dy, dx, gamma, dgamma, dbeta DevPtr, eps float64) error {
	one, zero := float32(1), float32(0)
	return d.bnCall(s, spec, "cudnnBatchNormalizationBackward", func(a *dnnAPI, b *bnDescs) int32 {
		return a.cudnnBatchNormalizationBackward(a.handle, dnnBatchNormSpatial, &one, &zero, &one, &one,
			b.x, uint64(x), b.x, uint64(dy), b.x, uint64(dx), b.bn, uint64(gamma), uint64(dgamma), uint64(dbeta), eps, 0, 0)
	})
}
