/* Element-wise kernels. Every index is an int: the executor refuses tensors
 * of 2^31 elements or more. Grid-stride loops let the host cap the grid. */

#define GRID_STRIDE(i, n) for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += blockDim.x * gridDim.x)

/* The activations (gpu.Act): 1 ReLU, 2 ReLU6, 3 GELU (exact erf). */
__device__ __forceinline__ float ssl_act(float v, int act) {
	switch (act) {
	case 1: return v > 0.f ? v : (v != v ? v : 0.f);
	case 2: return v != v ? v : fminf(fmaxf(v, 0.f), 6.f);
	case 3: return (float)(0.5 * (double)v * (1.0 + erf((double)v * 0.7071067811865476)));
	}
	return v;
}

/* Whether a piecewise-linear activation passes the gradient at v (its input
 * or its output): strictly inside (0, inf) for ReLU, (0, 6) for ReLU6. */
__device__ __forceinline__ int ssl_passes(float v, int act) {
	switch (act) {
	case 1: return v > 0.f;
	case 2: return v > 0.f && v < 6.f;
	}
	return 1;
}

extern "C" __global__ void add_to(float *dst, const float *src, int n) {
	GRID_STRIDE(i, n) dst[i] += src[i];
}

extern "C" __global__ void add2(float *y, const float *a, const float *b, int n) {
	GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

extern "C" __global__ void act_fwd(float *y, const float *x, int n, int act) {
	GRID_STRIDE(i, n) y[i] = ssl_act(x[i], act);
}

extern "C" __global__ void act_bwd(float *dx, const float *dy, const float *x, int n, int act) {
	GRID_STRIDE(i, n) {
		float v = x[i];
		if (act == 3) {
			double f = (double)v;
			double cdf = 0.5 * (1.0 + erf(f * 0.7071067811865476));
			double pdf = 0.3989422804014327 * exp(-0.5 * f * f);
			dx[i] = (float)((double)dy[i] * (cdf + f * pdf));
		} else {
			dx[i] = ssl_passes(v, act) ? dy[i] : 0.f;
		}
	}
}

/* y[n, c, s] += b[c] over total = n·c·sp elements. */
extern "C" __global__ void channel_bias(float *y, const float *b, int total, int c, int sp) {
	GRID_STRIDE(i, total) y[i] += b[(i / sp) % c];
}

/* y = x · mask[sample], per = elements per sample. */
extern "C" __global__ void drop_path(float *y, const float *x, const float *mask, int n, int per) {
	GRID_STRIDE(i, n) y[i] = x[i] * mask[i / per];
}

/* y[r, :] = b for m rows of o (a linear layer's bias, before its GEMM adds
 * x·wᵀ with beta = 1). */
extern "C" __global__ void bias_rows(float *y, const float *b, int m, int o) {
	GRID_STRIDE(i, m * o) y[i] = b[i % o];
}
