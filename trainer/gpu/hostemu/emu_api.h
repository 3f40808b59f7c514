/* The emulation's C API, for emu.go. */
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The kernel table: count, names and parameter counts. */
int emu_kernel_count(void);
const char *emu_kernel_name(int k);
int emu_kernel_params(int k);

/* Errors emu_launch returns. */
enum {
	EMU_OK = 0,
	EMU_BAD_KERNEL = 1,
	EMU_BAD_SHAPE = 2,        /* beyond CUDA's grid or block limits */
	EMU_BAD_SHARED = 3,       /* too much dynamic shared memory */
	EMU_BARRIER_DIVERGED = 4, /* the block's threads passed different numbers of barriers */
};

/* Runs kernel k over the grid with cuLaunchKernel's parameter pointers. */
int emu_launch(int k, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, size_t shmem,
               void **params);

/* The host SGEMM standing in for cuBLAS (row-major, strided-batched). */
void emu_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, long long sa, const float *B,
               int ldb, long long sb, float beta, float *C, int ldc, long long sc, int batch);

#ifdef __cplusplus
}
#endif
