/* Multi-head attention around batched GEMMs: the packed projections are
 * split into per-head q, k, v [B, H, T, hd], the weights softmax'd per row,
 * the heads merged back into [B, T, H·hd]. */

/* qkv [B, T, 3, H, hd] → q, k, v [B, H, T, hd]. */
extern "C" __global__ void qkv_split(float *q, float *k, float *v, const float *qkv, int b, int t, int heads,
                                     int hd) {
	int d = heads * hd;
	GRID_STRIDE(i, b * t * 3 * d) {
		int bi = i / (t * 3 * d), r = i % (t * 3 * d);
		int ti = r / (3 * d), r2 = r % (3 * d);
		int which = r2 / d, hh = (r2 % d) / hd, e = r2 % hd;
		float *dst = which == 0 ? q : (which == 1 ? k : v);
		dst[(((long long)bi * heads + hh) * t + ti) * hd + e] = qkv[i];
	}
}

/* The inverse of qkv_split. */
extern "C" __global__ void qkv_merge(float *qkv, const float *q, const float *k, const float *v, int b, int t,
                                     int heads, int hd) {
	int d = heads * hd;
	GRID_STRIDE(i, b * t * 3 * d) {
		int bi = i / (t * 3 * d), r = i % (t * 3 * d);
		int ti = r / (3 * d), r2 = r % (3 * d);
		int which = r2 / d, hh = (r2 % d) / hd, e = r2 % hd;
		const float *src = which == 0 ? q : (which == 1 ? k : v);
		qkv[i] = src[(((long long)bi * heads + hh) * t + ti) * hd + e];
	}
}

/* o [B, H, T, hd] → out [B, T, H·hd] (merge), or back (split). */
extern "C" __global__ void heads_merge(float *out, const float *o, int b, int t, int heads, int hd) {
	int d = heads * hd;
	GRID_STRIDE(i, b * t * d) {
		int bi = i / (t * d), r = i % (t * d);
		int ti = r / d, hh = (r % d) / hd, e = r % hd;
		out[i] = o[(((long long)bi * heads + hh) * t + ti) * hd + e];
	}
}

extern "C" __global__ void heads_split(float *o, const float *out, int b, int t, int heads, int hd) {
	int d = heads * hd;
	GRID_STRIDE(i, b * t * d) {
		int bi = i / (t * d), r = i % (t * d);
		int ti = r / d, hh = (r % d) / hd, e = r % hd;
		o[(((long long)bi * heads + hh) * t + ti) * hd + e] = out[i];
	}
}

/* One block per row of a [rows, n]: the softmax in place, as trainer/nn's
 * (exponentials of the float differences in double, a double sum, the
 * float reciprocal). */
extern "C" __global__ void softmax_rows(float *a, int n) {
	__shared__ double sh[RED];
	__shared__ float mx[RED];
	float *row = a + (long long)blockIdx.x * n;
	float m = row[0];
	for (int i = threadIdx.x; i < n; i += RED) m = fmaxf(m, row[i]);
	mx[threadIdx.x] = m;
	__syncthreads();
	for (int s = RED / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s) mx[threadIdx.x] = fmaxf(mx[threadIdx.x], mx[threadIdx.x + s]);
		__syncthreads();
	}
	m = mx[0];
	double sum = 0;
	for (int i = threadIdx.x; i < n; i += RED) {
		float e = (float)exp((double)(row[i] - m));
		row[i] = e;
		sum += (double)e;
	}
	sum = block_sum(sum, sh);
	float inv = (float)(1.0 / sum);
	for (int i = threadIdx.x; i < n; i += RED) row[i] *= inv;
}

/* One block per row: the softmax backward in place on da,
 * da ← a ⊙ (da − Σ a·da). */
extern "C" __global__ void softmax_bwd(float *da, const float *a, int n) {
	__shared__ double sh[RED];
	long long off = (long long)blockIdx.x * n;
	double dot = 0;
	for (int i = threadIdx.x; i < n; i += RED) dot += (double)a[off + i] * (double)da[off + i];
	dot = block_sum(dot, sh);
	for (int i = threadIdx.x; i < n; i += RED) da[off + i] = a[off + i] * (float)((double)da[off + i] - dot);
}
