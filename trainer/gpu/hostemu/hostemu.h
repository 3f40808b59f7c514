/* CUDA's built-ins for the host emulation: included before the kernel
 * sources in place of NVRTC's prelude. */
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>

struct dim3 {
	unsigned x, y, z;
};

/* The running thread's coordinates, set by the scheduler before it runs or
 * resumes a thread. */
extern dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* Blocks run one at a time, so a block's shared memory can be static. */
#define __shared__ static

void emu_syncthreads();
#define __syncthreads() emu_syncthreads()

extern char *emu_dynamic_smem;
#define DYNAMIC_SHARED(T, name) T *name = (T *)emu_dynamic_smem
