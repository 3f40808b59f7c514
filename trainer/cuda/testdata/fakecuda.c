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

/* cuDNN (9's legacy API), textbook semantics on host memory: NCHW float
 * tensors, cross-correlation with groups, spatial BatchNorm. The algorithm
 * lists put a tensor-core entry and one needing too much workspace before
 * the usable one (algorithm 5, 4096 bytes of workspace), which the caller
 * must skip. */
#include <math.h>
typedef struct { int n, c, h, w; } tdesc;
typedef struct { int k, c, h, w; } fdesc;
typedef struct { int ph, pw, sh, sw, dh, dw, groups, math; } cdesc;
typedef struct { int algo, status; float time; size_t memory; int determinism, mathType; int reserved[3]; } perf_t;

int cudnnCreate(void **h) { *h = (void *)0x600; return 0; }
int cudnnDestroy(void *h) { return 0; }
int cudnnSetStream(void *h, void *s) { return 0; }
size_t cudnnGetVersion(void) { return 91000; }
const char *cudnnGetErrorString(int s) { return "CUDNN_STATUS_BAD_PARAM (fake)"; }
int cudnnCreateTensorDescriptor(tdesc **d) { *d = calloc(1, sizeof(tdesc)); return 0; }
int cudnnSetTensor4dDescriptor(tdesc *d, int format, int dtype, int n, int c, int h, int w) {
	if (format != 0 || dtype != 0 || n < 1 || c < 1 || h < 1 || w < 1) return 3;
	d->n = n; d->c = c; d->h = h; d->w = w;
	return 0;
}
int cudnnDestroyTensorDescriptor(tdesc *d) { free(d); return 0; }
int cudnnCreateFilterDescriptor(fdesc **d) { *d = calloc(1, sizeof(fdesc)); return 0; }
int cudnnSetFilter4dDescriptor(fdesc *d, int dtype, int format, int k, int c, int h, int w) {
	if (format != 0 || dtype != 0) return 3;
	d->k = k; d->c = c; d->h = h; d->w = w;
	return 0;
}
int cudnnDestroyFilterDescriptor(fdesc *d) { free(d); return 0; }
int cudnnCreateConvolutionDescriptor(cdesc **d) { *d = calloc(1, sizeof(cdesc)); (*d)->groups = 1; return 0; }
int cudnnSetConvolution2dDescriptor(cdesc *d, int ph, int pw, int u, int v, int dh, int dw, int mode, int ctype) {
	if (mode != 1 || ctype != 0) return 3;
	d->ph = ph; d->pw = pw; d->sh = u; d->sw = v; d->dh = dh; d->dw = dw;
	return 0;
}
int cudnnSetConvolutionGroupCount(cdesc *d, int g) { d->groups = g; return 0; }
int cudnnSetConvolutionMathType(cdesc *d, int m) { d->math = m; return 0; }
int cudnnDestroyConvolutionDescriptor(cdesc *d) { free(d); return 0; }
static int outdim(int in, int k, int p, int s, int d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }
int cudnnGetConvolution2dForwardOutputDim(cdesc *c, tdesc *x, fdesc *f, int *n, int *k, int *h, int *w) {
	if (f->c * c->groups != x->c) return 3;
	*n = x->n; *k = f->k;
	*h = outdim(x->h, f->h, c->ph, c->sh, c->dh);
	*w = outdim(x->w, f->w, c->pw, c->sw, c->dw);
	return 0;
}
static int perfs(int req, int *ret, perf_t *p) {
	perf_t list[3] = {{2, 0, 0.5f, 0, 1, 1}, {0, 0, 1.f, (size_t)1 << 40, 1, 3}, {5, 0, 2.f, 1024, 1, 3}};
	*ret = req < 3 ? req : 3;
	for (int i = 0; i < *ret; i++) p[i] = list[i];
	return 0;
}
int cudnnGetConvolutionForwardAlgorithm_v7(void *h, void *a, void *b, void *c, void *d, int req, int *ret, perf_t *p) { return perfs(req, ret, p); }
int cudnnGetConvolutionBackwardDataAlgorithm_v7(void *h, void *a, void *b, void *c, void *d, int req, int *ret, perf_t *p) { return perfs(req, ret, p); }
int cudnnGetConvolutionBackwardFilterAlgorithm_v7(void *h, void *a, void *b, void *c, void *d, int req, int *ret, perf_t *p) { return perfs(req, ret, p); }
static int wsSize(int algo, size_t *s) { *s = algo == 5 ? 4096 : 0; return algo == 5 || algo == 2 ? 0 : 3; }
int cudnnGetConvolutionForwardWorkspaceSize(void *h, void *a, void *b, void *c, void *d, int algo, size_t *s) { return wsSize(algo, s); }
int cudnnGetConvolutionBackwardDataWorkspaceSize(void *h, void *a, void *b, void *c, void *d, int algo, size_t *s) { return wsSize(algo, s); }
int cudnnGetConvolutionBackwardFilterWorkspaceSize(void *h, void *a, void *b, void *c, void *d, int algo, size_t *s) { return wsSize(algo, s); }

/* visit calls f for every (input element, filter element, output element)
 * triple of the convolution, by index. */
static void visit(const tdesc *x, const fdesc *f, const cdesc *c, void (*fn)(long, long, long, void *), void *ctx) {
	int oh = outdim(x->h, f->h, c->ph, c->sh, c->dh), ow = outdim(x->w, f->w, c->pw, c->sw, c->dw);
	int cg = f->c, kg = f->k / c->groups;
	for (int n = 0; n < x->n; n++)
		for (int k = 0; k < f->k; k++)
			for (int oy = 0; oy < oh; oy++)
				for (int ox = 0; ox < ow; ox++)
					for (int ci = 0; ci < cg; ci++)
						for (int r = 0; r < f->h; r++)
							for (int q = 0; q < f->w; q++) {
								int iy = oy * c->sh - c->ph + r * c->dh, ix = ox * c->sw - c->pw + q * c->dw;
								if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w) continue;
								long xi = (((long)n * x->c + (k / kg) * cg + ci) * x->h + iy) * x->w + ix;
								long wi = (((long)k * cg + ci) * f->h + r) * f->w + q;
								long yi = (((long)n * f->k + k) * oh + oy) * ow + ox;
								fn(xi, wi, yi, ctx);
							}
}
typedef struct { const float *a, *b; double *acc; int which; } conv_ctx;
static void fwdFn(long xi, long wi, long yi, void *p) { conv_ctx *c = p; c->acc[yi] += (double)c->a[xi] * c->b[wi]; }
static void bdFn(long xi, long wi, long yi, void *p) { conv_ctx *c = p; c->acc[xi] += (double)c->a[yi] * c->b[wi]; }
static void bfFn(long xi, long wi, long yi, void *p) { conv_ctx *c = p; c->acc[wi] += (double)c->a[xi] * c->b[yi]; }
static int finish(double *acc, long n, const float *alpha, const float *beta, float *out) {
	for (long i = 0; i < n; i++) out[i] = (float)(*alpha * acc[i] + (*beta == 0 ? 0 : *beta * out[i]));
	free(acc);
	return 0;
}
static int checkWs(int algo, void *ws, size_t n) { return (algo == 5 && ws != 0 && n >= 4096) || algo == 2 ? 0 : 3; }
int cudnnConvolutionForward(void *h, const float *alpha, tdesc *xd, const float *x, fdesc *wd, const float *w, cdesc *cd,
                            int algo, void *ws, size_t wsn, const float *beta, tdesc *yd, float *y) {
	if (checkWs(algo, ws, wsn)) return 3;
	long n = (long)yd->n * yd->c * yd->h * yd->w;
	conv_ctx c = {x, w, calloc(n, sizeof(double)), 0};
	visit(xd, wd, cd, fwdFn, &c);
	return finish(c.acc, n, alpha, beta, y);
}
int cudnnConvolutionBackwardData(void *h, const float *alpha, fdesc *wd, const float *w, tdesc *dyd, const float *dy,
                                 cdesc *cd, int algo, void *ws, size_t wsn, const float *beta, tdesc *dxd, float *dx) {
	if (checkWs(algo, ws, wsn)) return 3;
	long n = (long)dxd->n * dxd->c * dxd->h * dxd->w;
	conv_ctx c = {dy, w, calloc(n, sizeof(double)), 0};
	visit(dxd, wd, cd, bdFn, &c);
	return finish(c.acc, n, alpha, beta, dx);
}
int cudnnConvolutionBackwardFilter(void *h, const float *alpha, tdesc *xd, const float *x, tdesc *dyd, const float *dy,
                                   cdesc *cd, int algo, void *ws, size_t wsn, const float *beta, fdesc *dwd, float *dw) {
	if (checkWs(algo, ws, wsn)) return 3;
	long n = (long)dwd->k * dwd->c * dwd->h * dwd->w;
	conv_ctx c = {x, dy, calloc(n, sizeof(double)), 0};
	visit(xd, dwd, cd, bfFn, &c);
	return finish(c.acc, n, alpha, beta, dw);
}
int cudnnDeriveBNTensorDescriptor(tdesc *bn, tdesc *x, int mode) {
	if (mode != 1) return 3;
	bn->n = 1; bn->c = x->c; bn->h = 1; bn->w = 1;
	return 0;
}
static void moments(const tdesc *d, const float *x, int ch, double *mean, double *var) {
	double s = 0, q = 0;
	long cnt = (long)d->n * d->h * d->w, sp = (long)d->h * d->w;
	for (int n = 0; n < d->n; n++)
		for (long i = 0; i < sp; i++) s += x[((long)n * d->c + ch) * sp + i];
	*mean = s / cnt;
	for (int n = 0; n < d->n; n++)
		for (long i = 0; i < sp; i++) {
			double v = x[((long)n * d->c + ch) * sp + i] - *mean;
			q += v * v;
		}
	*var = q / cnt;
}
int cudnnBatchNormalizationForwardTraining(void *h, int mode, const float *alpha, const float *beta, tdesc *xd,
                                           const float *x, tdesc *yd, float *y, tdesc *bnd, const float *scale,
                                           const float *bias, double factor, float *rmean, float *rvar, double eps,
                                           float *smean, float *sinv) {
	if (mode != 1 || bnd->c != xd->c) return 3;
	long sp = (long)xd->h * xd->w, cnt = xd->n * sp;
	for (int ch = 0; ch < xd->c; ch++) {
		double mean, var;
		moments(xd, x, ch, &mean, &var);
		double inv = 1 / sqrt(var + eps);
		for (int n = 0; n < xd->n; n++)
			for (long i = 0; i < sp; i++) {
				long j = ((long)n * xd->c + ch) * sp + i;
				y[j] = (float)(*alpha * (scale[ch] * (x[j] - mean) * inv + bias[ch]));
			}
		rmean[ch] = (float)((1 - factor) * rmean[ch] + factor * mean);
		rvar[ch] = (float)((1 - factor) * rvar[ch] + factor * var * cnt / (cnt - 1));
	}
	return 0;
}
int cudnnBatchNormalizationForwardInference(void *h, int mode, const float *alpha, const float *beta, tdesc *xd,
                                            const float *x, tdesc *yd, float *y, tdesc *bnd, const float *scale,
                                            const float *bias, const float *mean, const float *var, double eps) {
	if (mode != 1) return 3;
	long sp = (long)xd->h * xd->w;
	for (int n = 0; n < xd->n; n++)
		for (int ch = 0; ch < xd->c; ch++)
			for (long i = 0; i < sp; i++) {
				long j = ((long)n * xd->c + ch) * sp + i;
				y[j] = (float)(scale[ch] * (x[j] - mean[ch]) / sqrt(var[ch] + eps) + bias[ch]);
			}
	return 0;
}
int cudnnBatchNormalizationBackward(void *h, int mode, const float *aD, const float *bD, const float *aP,
                                    const float *bP, tdesc *xd, const float *x, tdesc *dyd, const float *dy, tdesc *dxd,
                                    float *dx, tdesc *bnd, const float *scale, float *dscale, float *dbias, double eps,
                                    const float *smean, const float *sinv) {
	if (mode != 1) return 3;
	long sp = (long)xd->h * xd->w, cnt = xd->n * sp;
	for (int ch = 0; ch < xd->c; ch++) {
		double mean, var, sdy = 0, sdyx = 0;
		moments(xd, x, ch, &mean, &var);
		double inv = 1 / sqrt(var + eps);
		for (int n = 0; n < xd->n; n++)
			for (long i = 0; i < sp; i++) {
				long j = ((long)n * xd->c + ch) * sp + i;
				sdy += dy[j];
				sdyx += dy[j] * (x[j] - mean) * inv;
			}
		for (int n = 0; n < xd->n; n++)
			for (long i = 0; i < sp; i++) {
				long j = ((long)n * xd->c + ch) * sp + i;
				double xhat = (x[j] - mean) * inv;
				double g = scale[ch] * inv * (dy[j] - sdy / cnt - xhat * sdyx / cnt);
				dx[j] = (float)(*aD * g + (*bD == 0 ? 0 : *bD * dx[j]));
			}
		dscale[ch] = (float)(*aP * sdyx + *bP * dscale[ch]);
		dbias[ch] = (float)(*aP * sdy + *bP * dbias[ch]);
	}
	return 0;
}
