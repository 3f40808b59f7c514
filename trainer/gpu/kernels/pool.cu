/* Pooling with trainer/nn's semantics. */

/* The plane index of window (oy, ox)'s maximum: the first in row-major
 * window order, a NaN at once (torch propagates NaN); padding never wins. */
__device__ int pool_argmax(const float *xc, int h, int w, int oy, int ox, int k, int s, int p) {
	float best = 0.f;
	int bi = -1;
	for (int i = 0; i < k; i++) {
		int y = oy * s - p + i;
		if (y < 0 || y >= h) continue;
		for (int j = 0; j < k; j++) {
			int xx = ox * s - p + j;
			if (xx < 0 || xx >= w) continue;
			float v = xc[y * w + xx];
			if (bi < 0 || v > best || v != v) {
				best = v;
				bi = y * w + xx;
				if (v != v) return bi;
			}
		}
	}
	return bi;
}

extern "C" __global__ void maxpool_fwd(float *y, const float *x, int planes, int h, int w, int oh, int ow, int k,
                                       int s, int p) {
	GRID_STRIDE(i, planes * oh * ow) {
		int pl = i / (oh * ow), r = i % (oh * ow);
		const float *xc = x + (long long)pl * h * w;
		y[i] = xc[pool_argmax(xc, h, w, r / ow, r % ow, k, s, p)];
	}
}

/* One thread per input element: the gradients of the outputs whose window
 * maximum it is, added in row-major output order (trainer/nn's order, so
 * the sums match bit for bit). */
extern "C" __global__ void maxpool_bwd(float *dx, const float *dy, const float *x, int planes, int h, int w, int oh,
                                       int ow, int k, int s, int p) {
	GRID_STRIDE(i, planes * h * w) {
		int pl = i / (h * w), r = i % (h * w);
		int iy = r / w, ix = r % w;
		const float *xc = x + (long long)pl * h * w;
		const float *g = dy + (long long)pl * oh * ow;
		/* Outputs oy with oy·s − p ≤ iy ≤ oy·s − p + k − 1. */
		int oy0 = iy + p - k + 1 > 0 ? (iy + p - k + 1 + s - 1) / s : 0;
		int oy1 = (iy + p) / s;
		int ox0 = ix + p - k + 1 > 0 ? (ix + p - k + 1 + s - 1) / s : 0;
		int ox1 = (ix + p) / s;
		float acc = 0.f;
		for (int oy = oy0; oy <= oy1 && oy < oh; oy++)
			for (int ox = ox0; ox <= ox1 && ox < ow; ox++)
				if (pool_argmax(xc, h, w, oy, ox, k, s, p) == r) acc += g[oy * ow + ox];
		dx[i] = acc;
	}
}

/* One thread per plane (the pooled maps are small: 7x7 at 224 px):
 * y = float(Σx / sp), the sum in double and in order, as trainer/nn's. */
extern "C" __global__ void gap_fwd(float *y, const float *x, int planes, int sp) {
	GRID_STRIDE(i, planes) {
		const float *xs = x + (long long)i * sp;
		double s = 0;
		for (int j = 0; j < sp; j++) s += (double)xs[j];
		y[i] = (float)(s / sp);
	}
}

extern "C" __global__ void gap_bwd(float *dx, const float *dy, int planes, int sp) {
	float inv = 1.f / (float)sp;
	GRID_STRIDE(i, planes * sp) dx[i] = dy[i / sp] * inv;
}
