package gpu

import (
	"errors"
	"fmt"

	"github.com/sslight-go/sslight/trainer/cuda"
	"github.com/sslight-go/sslight/trainer/nn"
)

func convSpecOf(p nn.ConvParams) cuda.ConvSpec {
	one := func(v int) int { return max(v, 1) }
	return cuda.ConvSpec{StrideH: one(p.Stride[0]), StrideW: one(p.Stride[1]), PadH: p.Padding[0], PadW: p.Padding[1],
		DilH: one(p.Dilation[0]), DilW: one(p.Dilation[1]), Groups: one(p.Groups)}
}

// Pass is one forward run of a Net, holding its embedding and, when run
// with Mode.Grad, what Backward needs.
type Pass struct{ r *pass }

// pass is a Pass's state.
type pass struct {
	net   *Net
	prog  *program
	be    Backend
	grad  bool
	vals  []*Tensor // by value; nil when not (or no longer) held
	owned []bool    // vals[v] was allocated by the pass
	grads []*Tensor
	gOwn  []bool
	state []any
	done  bool // backward ran or the pass was released
}

// Embedding returns the embedding [N, D], valid until Release.
func (p *Pass) Embedding() *Tensor { return p.r.vals[p.r.prog.output] }

// InputGrad returns the gradient of the input after Backward (nil before).
func (p *Pass) InputGrad() *Tensor {
	if p.r.grads == nil {
		return nil
	}
	return p.r.grads[p.r.prog.input]
}

// Backward propagates dEmb, the loss gradient of the embedding (kept by the
// caller), through the pass: every parameter's Grad gets its part added
// (allocated and zeroed first if need be), InputGrad receives the input's
// gradient, and the activations are freed as soon as they are done with.
// A pass runs Backward once.
func (p *Pass) Backward(dEmb *Tensor) error {
	r := p.r
	if !r.grad {
		return errors.New("gpu: Backward on a pass run without Mode.Grad")
	}
	if r.done {
		return errors.New("gpu: Backward ran already (or the pass was released)")
	}
	if !sameShape(dEmb.Shape, r.prog.vals[r.prog.output].shape) {
		return fmt.Errorf("gpu: embedding gradient %v for an embedding %v", dEmb.Shape, r.prog.vals[r.prog.output].shape)
	}
	r.done = true
	return r.backward(dEmb)
}

// Release frees what the pass holds (the embedding and the input gradient
// included).
func (p *Pass) Release() { p.r.release() }

func (r *pass) forward(x *Tensor) error {
	p := r.prog
	if !sameShape(x.Shape, p.vals[p.input].shape) {
		return fmt.Errorf("gpu: input %v for a program of %v", x.Shape, p.vals[p.input].shape)
	}
	for v, info := range p.vals {
		switch info.kind {
		case valInput:
			r.vals[v] = x
		case valParam:
			r.vals[v] = info.param.Value
		case valConst:
			r.vals[v] = info.konst
		}
	}
	in := make([]*Tensor, 0, 4)
	for si, s := range p.steps {
		out, err := r.be.NewTensor(p.vals[s.out].shape...)
		if err != nil {
			return err
		}
		r.vals[s.out], r.owned[s.out] = out, true
		in = in[:0]
		for _, v := range s.in {
			in = append(in, r.vals[v])
		}
		if err := s.op.forward(r, out, in, &r.state[si]); err != nil {
			return fmt.Errorf("gpu: %s forward step %d (%s): %w", r.net.bb.Arch(), si, s.op.name(), err)
		}
		for _, v := range s.in {
			if p.lastUse[v] == si && r.owned[v] && v != p.output && (!r.grad || p.savedUntil[v] < 0) {
				r.free(v)
			}
		}
	}
	return nil
}

func (r *pass) free(v int) {
	if r.vals[v] != nil && r.owned[v] {
		r.be.Release(r.vals[v])
	}
	r.vals[v], r.owned[v] = nil, false
}

func (r *pass) freeGrad(v int) {
	if r.grads[v] != nil && r.gOwn[v] {
		r.be.Release(r.grads[v])
	}
	r.grads[v], r.gOwn[v] = nil, false
}

func (r *pass) backward(dEmb *Tensor) error {
	p := r.prog
	r.grads = make([]*Tensor, len(p.vals))
	r.gOwn = make([]bool, len(p.vals))
	r.grads[p.output] = dEmb
	for _, info := range p.vals {
		if info.kind == valParam && info.param.Grad == nil {
			t, err := r.be.NewTensor(info.param.Shape...)
			if err != nil {
				return err
			}
			if err := r.be.Zero(t); err != nil {
				return err
			}
			info.param.Grad = t
		}
	}
	in := make([]*Tensor, 0, 4)
	dIn := make([]*Tensor, 0, 4)
	var temps []int // inputs whose gradient went to a temporary, to add in
	for si := len(p.steps) - 1; si >= 0; si-- {
		s := p.steps[si]
		dOut := r.grads[s.out]
		if dOut == nil {
			// Nothing downstream depends on this step (cannot happen in
			// the backbones: every step leads to the embedding).
			continue
		}
		in, dIn, temps = in[:0], dIn[:0], temps[:0]
		modes := s.op.modes()
		for j, v := range s.in {
			in = append(in, r.vals[v])
			d, tmp, err := r.gradFor(v, modes[j])
			if err != nil {
				return err
			}
			if tmp {
				temps = append(temps, j)
			}
			dIn = append(dIn, d)
		}
		var out *Tensor
		if _, o := s.op.saves(); o {
			out = r.vals[s.out]
		}
		if err := s.op.backward(r, dOut, dIn, in, out, &r.state[si]); err != nil {
			return fmt.Errorf("gpu: %s backward step %d (%s): %w", r.net.bb.Arch(), si, s.op.name(), err)
		}
		for _, j := range temps {
			if err := r.be.AddTo(r.grads[s.in[j]], dIn[j]); err != nil {
				return err
			}
			r.be.Release(dIn[j])
		}
		if s.out != p.output {
			r.freeGrad(s.out)
			r.free(s.out)
		}
		for _, v := range s.in {
			if p.savedUntil[v] == si || (p.savedUntil[v] < 0 && p.lastUse[v] == si) {
				r.free(v)
			}
		}
	}
	return nil
}

// gradFor returns the tensor input v's gradient goes to under mode, and
// whether it is a temporary to be added into v's gradient afterwards.
func (r *pass) gradFor(v int, mode gradMode) (*Tensor, bool, error) {
	info := r.prog.vals[v]
	if mode == noGrad || info.kind == valConst {
		return nil, false, nil
	}
	if info.kind == valParam {
		return info.param.Grad, false, nil
	}
	if r.grads[v] == nil {
		t, err := r.be.NewTensor(info.shape...)
		if err != nil {
			return nil, false, err
		}
		if mode == accumulate {
			if err := r.be.Zero(t); err != nil {
				r.be.Release(t)
				return nil, false, err
			}
		}
		r.grads[v], r.gOwn[v] = t, true
		return t, false, nil
	}
	if mode == accumulate {
		return r.grads[v], false, nil
	}
	t, err := r.be.NewTensor(info.shape...)
	return t, true, err
}

func (r *pass) release() {
	if r.vals == nil {
		return
	}
	r.prog.live--
	for si, s := range r.prog.steps {
		if rel, ok := s.op.(releaser); ok && r.state[si] != nil {
			rel.release(r, &r.state[si])
		}
	}
	for v := range r.vals {
		r.free(v)
	}
	for v := range r.grads {
		r.freeGrad(v)
	}
	r.vals, r.grads, r.done = nil, nil, true
}
