package gpu

import (
	"github.com/sslight-go/sslight/trainer/cuda"
)

// Act is an element-wise activation; the codes are the kernels'.
type Act int32

// The activations the backbones use.
const (
	ActNone  Act = 0
	ActReLU  Act = 1 // max(x, 0)
	ActReLU6 Act = 2 // min(max(x, 0), 6)
	ActGELU  Act = 3 // x·Φ(x), exact erf
)

func (a Act) String() string {
	switch a {
	case ActNone:
		return "none"
	case ActReLU:
		return "ReLU"
	case ActReLU6:
		return "ReLU6"
	case ActGELU:
		return "GELU"
	}
	return "Act(?)"
}

// PoolGeom is a max-pool's kernel, stride and padding (square).
type PoolGeom struct{ K, S, P int }

// BNArgs are a BatchNorm's parameters and mode.
type BNArgs struct {
	Gamma, Beta *Tensor // [C]
	Mean, Var   *Tensor // running statistics [C], updated in training
	Train       bool    // batch statistics (and a running-statistics update) rather than the running ones
	Momentum    float64 // weight of the batch statistics in the update (torch: 0.1)
	Eps         float64
	Act         Act // ActNone, ActReLU or ActReLU6, fused after the normalisation
}

// Backend is what the executor runs a network on: memory and the ops of
// the backbones, forward and backward. A CPU implementation (plain Go) and
// one over a KernelDevice (CUDA, or its host emulation) exist.
//
// Conventions: output tensors are allocated by the caller with the right
// shape; input gradients (dx) are overwritten; parameter gradients (dw,
// db, dgamma, dbeta, dcls, dpos) are added to what they hold. Work is
// queued in order on the backend's stream; Download waits for it.
type Backend interface {
	// Name is "cpu" or the device's description.
	Name() string
	// Allocator serves the backend's tensors.
	Allocator() *Allocator
	// NewTensor allocates a tensor (contents undefined).
	NewTensor(shape ...int) (*Tensor, error)
	// Release returns a tensor's memory to the allocator once the work
	// queued so far is done with it.
	Release(t *Tensor)
	Upload(dst *Tensor, src []float32) error
	Download(dst []float32, src *Tensor) error
	Synchronize() error

	Zero(t *Tensor) error
	// AddTo adds src into dst (same shape).
	AddTo(dst, src *Tensor) error
	// Add writes a + b into y.
	Add(y, a, b *Tensor) error

	// Conv2d writes the convolution of x [N, C, H, W] with w [O, C/g, KH, KW].
	Conv2d(y, x, w *Tensor, c cuda.ConvSpec) error
	Conv2dBackwardData(dx, dy, w *Tensor, c cuda.ConvSpec) error
	Conv2dBackwardFilter(dw, x, dy *Tensor, c cuda.ConvSpec) error
	// ChannelBias adds b [C] to every position of channel c of y in place.
	ChannelBias(y, b *Tensor) error
	ChannelBiasBackward(db, dy *Tensor) error

	// BatchNorm normalises x [N, C, ...] into y with trainer/nn's
	// semantics (batch statistics with the biased variance in training, the
	// running statistics updated with the unbiased one).
	BatchNorm(y, x *Tensor, bn BNArgs) error
	// BatchNormBackward needs the forward's input x and output y (for the
	// fused activation's mask); the batch statistics are recomputed.
	BatchNormBackward(dx, dGamma, dBeta, dy, x, y *Tensor, bn BNArgs) error

	Activation(y, x *Tensor, a Act) error
	ActivationBackward(dx, dy, x *Tensor, a Act) error

	MaxPool(y, x *Tensor, p PoolGeom) error
	MaxPoolBackward(dx, dy, x *Tensor, p PoolGeom) error
	// GlobalAvgPool averages x [N, C, ...] into y [N, C].
	GlobalAvgPool(y, x *Tensor) error
	GlobalAvgPoolBackward(dx, dy *Tensor) error

	// Linear is y = x·wᵀ + b over the last axis (b may be nil).
	Linear(y, x, w, b *Tensor) error
	// LinearBackward: dx overwritten, dw and db (nil: none) accumulated.
	LinearBackward(dx, dw, db, dy, x, w *Tensor) error
	LayerNorm(y, x, w, b *Tensor, eps float64) error
	LayerNormBackward(dx, dw, db, dy, x, w *Tensor, eps float64) error

	// Attention is multi-head self-attention over packed qkv [B, T, 3·D]
	// into out [B, T, D]; probs [B, heads, T, T] receives the attention
	// weights, which the backward reuses.
	Attention(out, probs, qkv *Tensor, heads int, scale float32) error
	AttentionBackward(dqkv, dout, qkv, probs *Tensor, heads int, scale float32) error
	// Tokens builds [B, 1+gh·gw, D] from patches [B, D, gh, gw], the class
	// token [1, 1, D] and position embeddings [1, 1+gh·gw, D].
	Tokens(y, patches, cls, pos *Tensor) error
	TokensBackward(dPatches, dCls, dPos, dy *Tensor) error
	// ClassToken takes token 0 of x [B, T, D] into y [B, D].
	ClassToken(y, x *Tensor) error
	ClassTokenBackward(dx, dy *Tensor) error
	// PosEmbedInterp writes y [1, 1+R, D] = [pos[0]; W·pos[1:]] for pos
	// [1, 1+S, D] and the interpolation matrix w [R, S].
	PosEmbedInterp(y, pos, w *Tensor) error
	PosEmbedInterpBackward(dPos, dy, w *Tensor) error
	// DropPath scales sample b of x [B, ...] by mask[b].
	DropPath(y, x, mask *Tensor) error
	DropPathBackward(dx, dy, mask *Tensor) error
}
