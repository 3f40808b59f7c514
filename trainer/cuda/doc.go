// Package cuda is sslight's CUDA runtime: the NVIDIA libraries loaded when
// the program runs, without cgo or CUDA headers at build time, so one binary
// serves machines with and without a GPU.
//
// Libraries are opened with dlopen through github.com/ebitengine/purego:
//
//   - the driver API (libcuda.so.1): context, memory, streams, events,
//     modules and kernel launches;
//   - NVRTC (libnvrtc.so.13): the CUDA C kernels are compiled at run time
//     for the device's compute capability, once per process and source;
//   - cuBLAS (libcublas.so.13), optional: SGEMM and strided-batched SGEMM,
//     TF32 off unless asked for;
//   - cuDNN (libcudnn.so.9), optional: convolutions (forward, backward data,
//     backward filter, grouped and depthwise through the group count) with
//     algorithm selection and workspace, and BatchNorm (training and
//     inference forward, backward) through cuDNN 9's legacy API.
//
// The folders searched are SSLIGHT_CUDA_LIBS (colon-separated, first), then
// LD_LIBRARY_PATH, then the usual system folders, then the dynamic loader's
// cache; each library is looked for under several sonames. When the driver
// or NVRTC is missing, Open fails at once with an error naming every library
// looked for and every folder searched, and what to do about it.
//
// The types every layer above shares (DevPtr, Stream, Event, Dim3, Gemm)
// are defined here so that an emulated device can stand in for Device.
//
// A CUDA context is current per OS thread: every Device method locks its
// goroutine to a thread and makes the device's primary context current
// there before calling the driver, and a Device serialises its callers.
//
// THIS PACKAGE HAS NOT YET RUN ON A GPU: everything but the libraries'
// behaviour is tested on CPU (discovery, errors, the argument packing,
// against fake libraries built in the tests).
package cuda
