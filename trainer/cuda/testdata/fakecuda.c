/* A stand-in for libcuda.so.1, libnvrtc.so.13 and libcublas.so.13 that runs
 * on the CPU, for trainer/cuda's tests: device memory is host memory, a
 * "kernel" launch records what it received, cuBLAS's SGEMM is the reference
 * column-major BLAS definition. FAKE_NO_DEVICE (an environment variable)
 * makes cuInit fail as on a machine whose driver sees no GPU. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

CUresult cuInit(unsigned int flags) { return getenv("FAKE_NO_DEVICE") ? 100 : 0; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return 0; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
CUresult cuDeviceGet(int *d, int ordinal) { *d = ordinal; return ordinal == 0 ? 0 : 101; }
CUresult cuDeviceGetName(char *name, int len, int dev) { strncpy(name, "Fake GPU", len); return 0; }
CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
	switch (attr) {
	case 75: *v = 9; break;     /* compute capability 9.0 */
	case 76: *v = 0; break;
	case 16: *v = 132; break;   /* SMs */
	case 1: *v = 1024; break;
	case 8: *v = 49152; break;
	default: *v = 0;
	}
	return 0;
}
CUresult cuDeviceTotalMem_v2(size_t *b, int dev) { *b = (size_t)80 << 30; return 0; }
CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) { *ctx = (void *)0x1234; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(int dev) { return 0; }
CUresult cuCtxSetCurrent(void *ctx) { return ctx == (void *)0x1234 ? 0 : 201; }
CUresult cuCtxSynchronize(void) { return 0; }
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) { *p = (CUdeviceptr)malloc(n); return *p ? 0 : 2; }
CUresult cuMemFree_v2(CUdeviceptr p) { free((void *)p); return 0; }
CUresult cuMemGetInfo_v2(size_t *f, size_t *t) { *f = (size_t)70 << 30; *t = (size_t)80 << 30; return 0; }
CUresult cuMemHostAlloc(void **p, size_t n, unsigned int flags) { *p = malloc(n); return *p ? 0 : 2; }
CUresult cuMemFreeHost(void *p) { free(p); return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n) { memcpy((void *)d, s, n); return 0; }
CUresult cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t n) { memcpy(d, (void *)s, n); return 0; }
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *s, size_t n, void *st) { memcpy((void *)d, s, n); return 0; }
CUresult cuMemcpyDtoHAsync_v2(void *d, CUdeviceptr s, size_t n, void *st) { memcpy(d, (void *)s, n); return 0; }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, void *st) { memmove((void *)d, (void *)s, n); return 0; }
CUresult cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, void *st) {
	for (size_t i = 0; i < n; i++) ((unsigned int *)d)[i] = v;
	return 0;
}
static int streams, events;
CUresult cuStreamCreate(void **s, unsigned int flags) { *s = (void *)(uintptr_t)(0x100 + ++streams); return 0; }
CUresult cuStreamDestroy_v2(void *s) { return 0; }
CUresult cuStreamSynchronize(void *s) { return 0; }
CUresult cuStreamWaitEvent(void *s, void *e, unsigned int f) { return 0; }
CUresult cuEventCreate(void **e, unsigned int flags) { *e = (void *)(uintptr_t)(0x200 + ++events); return 0; }
CUresult cuEventDestroy_v2(void *e) { return 0; }
CUresult cuEventRecord(void *e, void *s) { return 0; }
CUresult cuEventSynchronize(void *e) { return 0; }
CUresult cuEventElapsedTime_v2(float *ms, void *a, void *b) { *ms = 1.5f; return 0; }
CUresult cuModuleLoadData(void **m, const void *image) { *m = (void *)0x300; return memcmp(image, "CUBIN", 5) ? 218 : 0; }
CUresult cuModuleUnload(void *m) { return 0; }
CUresult cuModuleGetFunction(void **f, void *m, const char *name) {
	if (strcmp(name, "probe") != 0) return 500; /* CUDA_ERROR_NOT_FOUND */
	*f = (void *)0x400;
	return 0;
}
/* The "probe" kernel: probe(float *out, int a, float b, double c, long long d)
 * writes its arguments and its launch shape into out. */
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, void *stream, void **params, void **extra) {
	if (f != (void *)0x400 || extra != 0) return 400;
	float *out = *(float **)params[0];
	out[0] = (float)*(int *)params[1];
	out[1] = *(float *)params[2];
	out[2] = (float)*(double *)params[3];
	out[3] = (float)*(long long *)params[4];
	out[4] = gx; out[5] = gy; out[6] = gz; out[7] = bx; out[8] = by; out[9] = bz; out[10] = shmem;
	return 0;
}
CUresult cuGetErrorString(CUresult r, const char **s) {
	*s = r == 100 ? "no CUDA-capable device is detected" : "fake error";
	return 0;
}
CUresult cuGetErrorName(CUresult r, const char **s) {
	*s = r == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_FAKE";
	return 0;
}

/* NVRTC */
typedef struct { int compiled; } prog_t;
int nvrtcVersion(int *major, int *minor) { *major = 13; *minor = 0; return 0; }
int nvrtcCreateProgram(prog_t **p, const char *src, const char *name, int nh, const char **h, const char **in) {
	*p = calloc(1, sizeof(prog_t));
	return 0;
}
static char lastOptions[512];
static int compiles;
int fakeCompiles(void) { return compiles; }
int nvrtcCompileProgram(prog_t *p, int n, const char **opts) {
	compiles++;
	lastOptions[0] = 0;
	for (int i = 0; i < n; i++) {
		strncat(lastOptions, opts[i], sizeof lastOptions - strlen(lastOptions) - 2);
		strcat(lastOptions, " ");
	}
	p->compiled = 1;
	return 0;
}
const char *fakeLastOptions(void) { return lastOptions; }
int nvrtcGetProgramLogSize(prog_t *p, size_t *n) { *n = 3; return 0; }
int nvrtcGetProgramLog(prog_t *p, char *log) { strcpy(log, "ok"); return 0; }
int nvrtcGetCUBINSize(prog_t *p, size_t *n) { *n = 6; return 0; }
int nvrtcGetCUBIN(prog_t *p, char *buf) { memcpy(buf, "CUBIN", 6); return 0; }
int nvrtcGetPTXSize(prog_t *p, size_t *n) { *n = 4; return 0; }
int nvrtcGetPTX(prog_t *p, char *buf) { memcpy(buf, "PTX", 4); return 0; }
int nvrtcDestroyProgram(prog_t **p) { free(*p); *p = 0; return 0; }
const char *nvrtcGetErrorString(int r) { return "NVRTC_ERROR_FAKE"; }
int nvrtcGetNumSupportedArchs(int *n) { *n = 3; return 0; }
int nvrtcGetSupportedArchs(int *a) { a[0] = 75; a[1] = 80; a[2] = 90; return 0; }

/* cuBLAS: column-major, C = alpha*op(A)*op(B) + beta*C. */
int cublasCreate_v2(void **h) { *h = (void *)0x500; return 0; }
int cublasDestroy_v2(void *h) { return 0; }
int cublasSetStream_v2(void *h, void *s) { return 0; }
int cublasGetVersion_v2(void *h, int *v) { *v = 130100; return 0; }
static int mathMode = -1;
int cublasSetMathMode(void *h, int m) { mathMode = m; return 0; }
int fakeMathMode(void) { return mathMode; }
static float at(const float *m, int ld, int trans, int i, int j) { return trans ? m[j + i * ld] : m[i + j * ld]; }
int cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k, const float *alpha, const float *A, int lda,
                   const float *B, int ldb, const float *beta, float *C, int ldc) {
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			double s = 0;
			for (int p = 0; p < k; p++) s += (double)at(A, lda, ta, i, p) * at(B, ldb, tb, p, j);
			C[i + j * ldc] = (float)(*alpha * s + (*beta == 0 ? 0 : *beta * C[i + j * ldc]));
		}
	return 0;
}
int cublasSgemmStridedBatched(void *h, int ta, int tb, int m, int n, int k, const float *alpha, const float *A, int lda,
                              long long sa, const float *B, int ldb, long long sb, const float *beta, float *C, int ldc,
                              long long sc, int batch) {
	for (int b = 0; b < batch; b++)
		cublasSgemm_v2(h, ta, tb, m, n, k, alpha, A + b * sa, lda, B + b * sb, ldb, beta, C + b * sc, ldc);
	return 0;
}
