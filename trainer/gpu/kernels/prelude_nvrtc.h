/* Prelude of the kernels when NVRTC compiles them for a GPU (hostemu.h
 * takes its place on the host). NVRTC has no system headers: the few
 * definitions the kernels need are here. */
#define DYNAMIC_SHARED(T, name) extern __shared__ T name[]
