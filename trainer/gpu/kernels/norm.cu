/* BatchNorm and LayerNorm with trainer/nn's semantics: sums in double,
 * the batch variance biased in the normalisation and unbiased in the
 * running update (torch's rule), the float scale and shift trainer/nn
 * applies. */

/* One thread per channel: the moments from bn_partial's sums (training) or
 * the running statistics, the running update, and ss[2ch] = scale,
 * ss[2ch+1] = shift. */
extern "C" __global__ void bn_finish_fwd(float *ss, const double *part, const float *gamma, const float *beta,
                                         float *rmean, float *rvar, int c, int cnt, int chunks, int train,
                                         double momentum, double eps) {
	GRID_STRIDE(ch, c) {
		double mean, var;
		if (train) {
			double sx = 0, sxx = 0;
			for (int k = 0; k < chunks; k++) {
				sx += part[((long long)ch * chunks + k) * 4];
				sxx += part[((long long)ch * chunks + k) * 4 + 1];
			}
			mean = sx / cnt;
			var = sxx / cnt - mean * mean;
			if (var < 0) var = 0;
			rmean[ch] = (float)((1 - momentum) * (double)rmean[ch] + momentum * mean);
			rvar[ch] = (float)((1 - momentum) * (double)rvar[ch] + momentum * var * cnt / (cnt - 1));
		} else {
			mean = (double)rmean[ch];
			var = (double)rvar[ch];
		}
		double inv = 1.0 / sqrt(var + eps);
		ss[2 * ch] = (float)((double)gamma[ch] * inv);
		ss[2 * ch + 1] = (float)((double)beta[ch] - mean * (double)gamma[ch] * inv);
	}
}

/* y = act(x·scale + shift) per channel. */
extern "C" __global__ void bn_apply(float *y, const float *x, const float *ss, int total, int c, int sp, int act) {
	GRID_STRIDE(i, total) {
		int ch = (i / sp) % c;
		float v = x[i] * ss[2 * ch] + ss[2 * ch + 1];
		y[i] = act ? ssl_act(v, act) : v;
	}
}

/* One thread per channel: dgamma and dbeta added, and the coefficients of
 * the input gradient, coef[5ch..5ch+4] = gamma/std, mean, 1/std, mean(dy'),
 * mean(dy'·xhat). */
extern "C" __global__ void bn_finish_bwd(double *coef, float *dgamma, float *dbeta, const double *part,
                                         const float *gamma, const float *rmean, const float *rvar, int c, int cnt,
                                         int chunks, int train, double eps) {
	GRID_STRIDE(ch, c) {
		double sx = 0, sxx = 0, sdy = 0, sdyx = 0;
		for (int k = 0; k < chunks; k++) {
			const double *p = part + ((long long)ch * chunks + k) * 4;
			sx += p[0];
			sxx += p[1];
			sdy += p[2];
			sdyx += p[3];
		}
		double mean = sx / cnt, var = sxx / cnt - mean * mean;
		if (var < 0) var = 0;
		if (!train) {
			mean = (double)rmean[ch];
			var = (double)rvar[ch];
		}
		double inv = 1.0 / sqrt(var + eps);
		sdyx = (sdyx - mean * sdy) * inv;
		dgamma[ch] += (float)sdyx;
		dbeta[ch] += (float)sdy;
		double *k = coef + 5 * (long long)ch;
		k[0] = (double)gamma[ch] * inv;
		k[1] = mean;
		k[2] = inv;
		k[3] = sdy / cnt;
		k[4] = sdyx / cnt;
	}
}

/* The input gradient: gamma/std·(dy' − mean(dy') − xhat·mean(dy'·xhat)) with
 * the batch statistics, dy'·gamma/std with the running ones. */
extern "C" __global__ void bn_dx(float *dx, const float *x, const float *dy, const float *y, const double *coef,
                                 int total, int c, int sp, int act, int train) {
	GRID_STRIDE(i, total) {
		int ch = (i / sp) % c;
		const double *k = coef + 5 * ch;
		double g = (double)dy[i];
		if (act != 0 && !ssl_passes(y[i], act)) g = 0;
		if (!train) {
			dx[i] = (float)(g * k[0]);
		} else {
			double xhat = ((double)x[i] - k[1]) * k[2];
			dx[i] = (float)(k[0] * (g - k[3] - xhat * k[4]));
		}
	}
}

/* Row moments in double, two passes as trainer/nn: the mean, then the
 * biased variance of the deviations. */
__device__ void row_moments(const float *xs, int d, double eps, double *sh, double *mean, double *inv) {
	double s = 0;
	for (int i = threadIdx.x; i < d; i += RED) s += (double)xs[i];
	double m = block_sum(s, sh) / d;
	double q = 0;
	for (int i = threadIdx.x; i < d; i += RED) {
		double dv = (double)xs[i] - m;
		q += dv * dv;
	}
	q = block_sum(q, sh) / d;
	*mean = m;
	*inv = 1.0 / sqrt(q + eps);
}

/* One block per row of x [rows, d]: y = float((x − mean)/std)·w + b. */
extern "C" __global__ void ln_fwd(float *y, const float *x, const float *w, const float *b, int d, double eps) {
	__shared__ double sh[RED];
	const float *xs = x + (long long)blockIdx.x * d;
	float *ys = y + (long long)blockIdx.x * d;
	double mean, inv;
	row_moments(xs, d, eps, sh, &mean, &inv);
	for (int i = threadIdx.x; i < d; i += RED) ys[i] = (float)(((double)xs[i] - mean) * inv) * w[i] + b[i];
}

/* One block per row: the input gradient, and the row's mean and 1/std into
 * stats[2·row] for ln_param_partial. */
extern "C" __global__ void ln_bwd_dx(float *dx, double *stats, const float *dy, const float *x, const float *w,
                                     int d, double eps) {
	__shared__ double sh[RED];
	long long off = (long long)blockIdx.x * d;
	const float *xs = x + off, *gs = dy + off;
	double mean, inv;
	row_moments(xs, d, eps, sh, &mean, &inv);
	double m1 = 0, m2 = 0;
	for (int i = threadIdx.x; i < d; i += RED) {
		double gw = (double)gs[i] * (double)w[i];
		m1 += gw;
		m2 += gw * ((double)xs[i] - mean) * inv;
	}
	m1 = block_sum(m1, sh) / d;
	m2 = block_sum(m2, sh) / d;
	for (int i = threadIdx.x; i < d; i += RED) {
		double xhat = ((double)xs[i] - mean) * inv;
		dx[off + i] = (float)(inv * ((double)gs[i] * (double)w[i] - m1 - xhat * m2));
	}
	if (threadIdx.x == 0) {
		stats[2 * blockIdx.x] = mean;
		stats[2 * blockIdx.x + 1] = inv;
	}
}

/* Partial sums of the LayerNorm weight and bias gradients over chunks of
 * rows (colsum_partial's layout): part[(k·d + col)·2] = Σ dy·xhat,
 * part[(k·d + col)·2 + 1] = Σ dy. */
extern "C" __global__ void ln_param_partial(double *part, const float *dy, const float *x, const double *stats,
                                            int rows, int d, int chunks) {
	__shared__ double sw[RED];
	__shared__ double sb[RED];
	int tx = threadIdx.x % 32, ty = threadIdx.x / 32, lanes = RED / 32;
	int col = blockIdx.x * 32 + tx, k = blockIdx.y;
	int lo = (int)((long long)rows * k / chunks), hi = (int)((long long)rows * (k + 1) / chunks);
	double a = 0, b = 0;
	if (col < d)
		for (int r = lo + ty; r < hi; r += lanes) {
			long long off = (long long)r * d + col;
			double g = (double)dy[off];
			a += g * ((double)x[off] - stats[2 * r]) * stats[2 * r + 1];
			b += g;
		}
	sw[threadIdx.x] = a;
	sb[threadIdx.x] = b;
	__syncthreads();
	if (ty == 0 && col < d) {
		for (int l = 1; l < lanes; l++) {
			a += sw[l * 32 + tx];
			b += sb[l * 32 + tx];
		}
		part[((long long)k * d + col) * 2] = a;
		part[((long long)k * d + col) * 2 + 1] = b;
	}
}

/* dw[col] += Σ_k part[(k·d+col)·2], db[col] += Σ_k part[(k·d+col)·2+1]. */
extern "C" __global__ void ln_param_finish(float *dw, float *db, const double *part, int d, int chunks) {
	GRID_STRIDE(col, d) {
		double a = 0, b = 0;
		for (int k = 0; k < chunks; k++) {
			a += part[((long long)k * d + col) * 2];
			b += part[((long long)k * d + col) * 2 + 1];
		}
		dw[col] += (float)a;
		db[col] += (float)b;
	}
}
