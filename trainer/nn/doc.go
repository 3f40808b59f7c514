// Package nn holds sslight's neural-network layers on gorgonia: float32,
// NCHW, with PyTorch's semantics and parameter names.
//
// Every computation is a coarse custom op (a kernel with a hand-written
// backward, wrapped as a gorgonia.Op with SymDiff), because gorgonia
// v0.9.18 lacks or mis-implements several of them: it has no grouped or
// depthwise convolution, no ReLU6, erf-GELU or LayerNorm; its
// GlobalAveragePool2D has no gradient; its BatchNorm keeps the train/eval
// mode and the running statistics on the op (shared by every machine, reset
// by SetTraining, separate for every call), and its eval-mode backward is
// wrong; its Conv2d copies the whole batch through im2col, a matmul and a
// transpose. Here:
//
//   - Conv2dOp: per-image (or, when the maps are small, per-chunk) im2col
//     and one SGEMM through gorgonia.WhichBLAS into NCHW; 1x1 convolutions
//     skip im2col; depthwise convolutions use a direct loop; 3x3 stride-1
//     "same" convolutions (ResNet's) run as Winograd F(2x2, 3x3) in cgo
//     builds, forward and both gradients (winograd.go;
//     SSLIGHT_NOWINOGRAD=1 selects im2col); images are spread over the
//     CPUs in equal shares.
//   - BatchNormOp: batch statistics (biased variance) in training, running
//     statistics in evaluation; running statistics updated with momentum 0.1
//     and the unbiased variance, held in a BNStats that every op built from
//     one BatchNorm module shares; the backward recomputes what it needs
//     (once per backward pass for its three gradients).
//   - BatchNormActOp: BatchNorm and a ReLU/ReLU6 in one op (one pass
//     forward, the gradient masked inside BatchNorm's backward).
//   - ActivationOp (ReLU, ReLU6, exact GELU), AddOp, ChannelBiasOp,
//     LinearOp, LayerNormOp, MaxPool2dOp, GlobalAvgPoolOp, and the ViT ops
//     AttentionOp, TokensOp, ClassTokenOp, InterpolatePosEmbedOp (DINO's
//     bicubic position-embedding resize) and DropPathOp.
//
// The memory-bound loops (im2col/col2im, BatchNorm, ReLU/ReLU6, Add, max
// pooling, the Winograd transforms) have
// AVX2/FMA kernels in C (kernels_amd64.c), used in cgo builds on amd64
// CPUs that have AVX2 and FMA unless SSLIGHT_NOSIMD is set; Kernels says
// which set runs. Their Go twins are the fallback and the tests' reference.
// Every reduction runs in an order fixed by the code and the worker count,
// never by goroutine scheduling, so runs are reproducible bit for bit.
//
// Each op keeps its output buffer across runs of a machine, so a training
// step does not allocate its activations again; in an inference graph
// ShareBuffers lets ops whose outputs are dead hand their buffers on, as
// PyTorch frees activations under no_grad. Each op's gradient is checked
// against finite differences in the tests.
//
// Modules (Conv2d, BatchNorm, Linear, LayerNorm, Attention, MLP) hold their
// parameters as Params: values that live outside any graph and get one
// node per graph, so a model can run in several graphs (training,
// evaluation) and on views of different sizes with one set of weights and
// statistics, like a torch module. Entries lists a module's state-dict
// tensors under PyTorch's names.
//
// Caveat: gorgonia merges structurally identical nodes, so applying one
// train-mode BatchNorm twice to the very same input node in one graph
// updates its running statistics once, where torch would update them twice.
package nn
