// Package gpu is sslight's device executor: the backbones of
// trainer/backbone run forward (training or evaluation mode) and backward
// on a Backend, with their weights, gradients and BatchNorm statistics
// resident there.
//
//   - Backend is the seam: memory and every op of ResNet, MobileNetV2 and
//     ViT, forward and backward (input gradients overwritten, parameter
//     gradients accumulated). CPU implements it in plain Go from
//     trainer/nn's semantics, the reference; DeviceBackend over a
//     KernelDevice (a trainer/cuda Device, or the host emulation of
//     trainer/gpu/hostemu) with cuDNN, cuBLAS and the kernels of
//     trainer/gpu/kernels.
//   - Allocator caches device memory per stream and size class.
//   - Net builds a program per input shape and mode from the backbone's
//     Layout and runs it: Forward returns a Pass with the embedding;
//     Backward fills every Param's Grad and the input's gradient.
//   - Uploader double-buffers host-to-device copies on a copy stream;
//     Extractor computes features with trainer/features' contract;
//     OpenDevice and Select open a GPU for --device cuda|auto.
//
// THE GPU PATH HAS NOT YET RUN ON A GPU: it is tested on the CPU backend,
// on the host emulation and against fake CUDA libraries; bench/gpu_check.sh
// is the check to run on one. docs/gpu.md describes it all.
package gpu
