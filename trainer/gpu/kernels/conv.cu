/* The convolutions when cuDNN is absent: im2col + GEMM for dense and
 * grouped ones (images of a chunk side by side, as trainer/nn), direct
 * kernels for depthwise ones. Geometry arguments follow torch.nn.Conv2d:
 * x [n, c, h, w], w [o, c/g, kh, kw], y [n, o, oh, ow]. */

/* col [cg·kh·kw, nb·oh·ow]: group g of images 0..nb-1 of x (x points at the
 * chunk's first image). */
extern "C" __global__ void im2col(float *col, const float *x, int nb, int c, int h, int w, int cg, int g, int kh,
                                  int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
	int p = oh * ow, cols = nb * p;
	GRID_STRIDE(i, cg * kh * kw * cols) {
		int row = i / cols, cidx = i % cols;
		int img = cidx / p, q = cidx % p;
		int ci = row / (kh * kw), kk = row % (kh * kw);
		int y = (q / ow) * sh - ph + (kk / kw) * dh;
		int xx = (q % ow) * sw - pw + (kk % kw) * dw;
		float v = 0.f;
		if (y >= 0 && y < h && xx >= 0 && xx < w) v = x[(((long long)img * c + g * cg + ci) * h + y) * w + xx];
		col[i] = v;
	}
}

/* The adjoint of im2col: group g's channels of dx for nb images are
 * overwritten with the sum of the columns that read them. */
extern "C" __global__ void col2im(float *dx, const float *col, int nb, int c, int h, int w, int cg, int g, int kh,
                                  int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
	int p = oh * ow, cols = nb * p;
	GRID_STRIDE(i, nb * cg * h * w) {
		int img = i / (cg * h * w), r = i % (cg * h * w);
		int ci = r / (h * w), iy = (r / w) % h, ix = r % w;
		float acc = 0.f;
		for (int ki = 0; ki < kh; ki++) {
			int ty = iy + ph - ki * dh;
			if (ty < 0 || ty % sh) continue;
			int oy = ty / sh;
			if (oy >= oh) continue;
			for (int kj = 0; kj < kw; kj++) {
				int tx = ix + pw - kj * dw;
				if (tx < 0 || tx % sw) continue;
				int ox = tx / sw;
				if (ox >= ow) continue;
				int row = (ci * kh + ki) * kw + kj;
				acc += col[(long long)row * cols + img * p + oy * ow + ox];
			}
		}
		dx[(((long long)img * c + g * cg + ci) * h + iy) * w + ix] = acc;
	}
}

/* dst [cnt, nb·p] ← channels c0..c0+cnt-1 of src [nb, ctot, p] (an output
 * gradient's group gathered for the filter and data GEMMs). */
extern "C" __global__ void gather_groups(float *dst, const float *src, int nb, int ctot, int c0, int cnt, int p) {
	GRID_STRIDE(i, cnt * nb * p) {
		int oc = i / (nb * p), r = i % (nb * p);
		int img = r / p, q = r % p;
		dst[i] = src[((long long)img * ctot + c0 + oc) * p + q];
	}
}

/* The inverse: channels c0.. of dst [nb, ctot, p] ← src [cnt, nb·p]. */
extern "C" __global__ void scatter_groups(float *dst, const float *src, int nb, int ctot, int c0, int cnt, int p) {
	GRID_STRIDE(i, cnt * nb * p) {
		int oc = i / (nb * p), r = i % (nb * p);
		int img = r / p, q = r % p;
		dst[((long long)img * ctot + c0 + oc) * p + q] = src[i];
	}
}

/* Depthwise (groups = c = o): one thread per output. */
extern "C" __global__ void dw_fwd(float *y, const float *x, const float *wt, int n, int c, int h, int w, int kh,
                                  int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
	GRID_STRIDE(i, n * c * oh * ow) {
		int pl = i / (oh * ow), q = i % (oh * ow);
		int ch = pl % c, oy = q / ow, ox = q % ow;
		const float *xc = x + (long long)pl * h * w;
		const float *wc = wt + ch * kh * kw;
		float acc = 0.f;
		for (int ki = 0; ki < kh; ki++) {
			int yy = oy * sh - ph + ki * dh;
			if (yy < 0 || yy >= h) continue;
			for (int kj = 0; kj < kw; kj++) {
				int xx = ox * sw - pw + kj * dw;
				if (xx >= 0 && xx < w) acc += wc[ki * kw + kj] * xc[yy * w + xx];
			}
		}
		y[i] = acc;
	}
}

/* Depthwise input gradient: one thread per input element, gathering the
 * outputs that read it. */
extern "C" __global__ void dw_bwd_data(float *dx, const float *dy, const float *wt, int n, int c, int h, int w,
                                       int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
	GRID_STRIDE(i, n * c * h * w) {
		int pl = i / (h * w), r = i % (h * w);
		int ch = pl % c, iy = r / w, ix = r % w;
		const float *g = dy + (long long)pl * oh * ow;
		const float *wc = wt + ch * kh * kw;
		float acc = 0.f;
		for (int ki = 0; ki < kh; ki++) {
			int ty = iy + ph - ki * dh;
			if (ty < 0 || ty % sh) continue;
			int oy = ty / sh;
			if (oy >= oh) continue;
			for (int kj = 0; kj < kw; kj++) {
				int tx = ix + pw - kj * dw;
				if (tx < 0 || tx % sw) continue;
				int ox = tx / sw;
				if (ox < ow) acc += wc[ki * kw + kj] * g[oy * ow + ox];
			}
		}
		dx[i] = acc;
	}
}

/* Depthwise filter gradient for filters of up to DW_TAPS taps: block ch
 * reads the channel's input and output gradient once, each thread summing
 * every tap over its share of the positions, and one tree reduces the taps
 * together; the sums are added into dw. */
#define DW_TAPS 9
extern "C" __global__ void dw_bwd_filter(float *dwt, const float *x, const float *dy, int n, int c, int h, int w,
                                         int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh,
                                         int ow) {
	__shared__ double part[DW_TAPS * RED];
	int ch = blockIdx.x, taps = kh * kw, p = oh * ow;
	double s[DW_TAPS];
	for (int t = 0; t < DW_TAPS; t++) s[t] = 0;
	for (int i = threadIdx.x; i < n * p; i += RED) {
		int img = i / p, q = i % p;
		long long pl = (long long)img * c + ch;
		double g = (double)dy[pl * p + q];
		int y0 = (q / ow) * sh - ph, x0 = (q % ow) * sw - pw;
		for (int t = 0; t < taps; t++) {
			int yy = y0 + (t / kw) * dh, xx = x0 + (t % kw) * dw;
			if (yy >= 0 && yy < h && xx >= 0 && xx < w) s[t] += (double)x[(pl * h + yy) * w + xx] * g;
		}
	}
	for (int t = 0; t < taps; t++) part[t * RED + threadIdx.x] = s[t];
	__syncthreads();
	for (int st = RED / 2; st > 0; st >>= 1) {
		if ((int)threadIdx.x < st)
			for (int t = 0; t < taps; t++) part[t * RED + threadIdx.x] += part[t * RED + threadIdx.x + st];
		__syncthreads();
	}
	if ((int)threadIdx.x < taps) dwt[ch * taps + threadIdx.x] += (float)part[threadIdx.x * RED];
}

/* The same for larger filters: block (ch·kh·kw + tap) reduces one tap. */
extern "C" __global__ void dw_bwd_filter_tap(float *dwt, const float *x, const float *dy, int n, int c, int h, int w,
                                         int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh,
                                         int ow) {
	__shared__ double sh_[RED];
	int ch = blockIdx.x / (kh * kw), tap = blockIdx.x % (kh * kw);
	int ki = tap / kw, kj = tap % kw;
	int p = oh * ow;
	double s = 0;
	for (int i = threadIdx.x; i < n * p; i += RED) {
		int img = i / p, q = i % p;
		int yy = (q / ow) * sh - ph + ki * dh, xx = (q % ow) * sw - pw + kj * dw;
		if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
		long long pl = (long long)img * c + ch;
		s += (double)x[(pl * h + yy) * w + xx] * (double)dy[pl * p + q];
	}
	s = block_sum(s, sh_);
	if (threadIdx.x == 0) dwt[blockIdx.x] += (float)s;
}
