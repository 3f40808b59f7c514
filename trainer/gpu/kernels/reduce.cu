/* Reductions. Every reduction runs in an order fixed by the launch shape
 * (blocks of RED threads, a tree in shared memory, partial sums added in
 * chunk order), never by scheduling: results are reproducible bit for bit.
 * The host launches the kernels below with blockDim.x = RED. */

#define RED 256

/* block_sum returns the sum of v over the block's RED threads, to every
 * thread; sh holds RED doubles. */
__device__ double block_sum(double v, double *sh) {
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int s = RED / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads();
	return r;
}

/* block_sum4 is block_sum of four values at once (one tree, one set of
 * barriers); sh holds 4·RED doubles. */
__device__ void block_sum4(double *v, double *sh) {
	for (int q = 0; q < 4; q++) sh[q * RED + threadIdx.x] = v[q];
	__syncthreads();
	for (int s = RED / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s)
			for (int q = 0; q < 4; q++) sh[q * RED + threadIdx.x] += sh[q * RED + threadIdx.x + s];
		__syncthreads();
	}
	for (int q = 0; q < 4; q++) v[q] = sh[q * RED];
	__syncthreads();
}

/* Per-channel partial sums over x [n, c, sp] (and dy): block (ch, k) sums
 * chunk k of the channel's n·sp values into part[(ch·chunks + k)·4 + q]:
 * q = 0 Σx, 1 Σx², 2 Σdy', 3 Σdy'·x, where dy' is dy masked by the fused
 * activation's pass test on y (act 0: none). dy NULL: only q = 0, 1. */
extern "C" __global__ void bn_partial(double *part, const float *x, const float *dy, const float *y,
                                      int n, int c, int sp, int chunks, int act) {
	__shared__ double sh[4 * RED];
	int ch = blockIdx.x, k = blockIdx.y;
	int cnt = n * sp;
	int lo = (int)((long long)cnt * k / chunks), hi = (int)((long long)cnt * (k + 1) / chunks);
	double sx = 0, sxx = 0, sdy = 0, sdyx = 0;
	for (int i = lo + threadIdx.x; i < hi; i += RED) {
		int off = ((i / sp) * c + ch) * sp + i % sp;
		double v = (double)x[off];
		sx += v;
		sxx += v * v;
		if (dy) {
			double g = (double)dy[off];
			if (act != 0 && !ssl_passes(y[off], act)) g = 0;
			sdy += g;
			sdyx += g * v;
		}
	}
	double v[4] = {sx, sxx, sdy, sdyx};
	block_sum4(v, sh);
	if (threadIdx.x == 0)
		for (int q = 0; q < 4; q++) part[((long long)ch * chunks + k) * 4 + q] = v[q];
}

/* Column sums of x [rows, cols] in chunks of rows: part[k·cols + col].
 * Block (b, k) covers 32 columns and chunk k with RED/32 row lanes. */
extern "C" __global__ void colsum_partial(double *part, const float *x, int rows, int cols, int chunks) {
	__shared__ double sh[RED];
	int tx = threadIdx.x % 32, ty = threadIdx.x / 32, lanes = RED / 32;
	int col = blockIdx.x * 32 + tx, k = blockIdx.y;
	int lo = (int)((long long)rows * k / chunks), hi = (int)((long long)rows * (k + 1) / chunks);
	double s = 0;
	if (col < cols)
		for (int r = lo + ty; r < hi; r += lanes) s += (double)x[(long long)r * cols + col];
	sh[threadIdx.x] = s;
	__syncthreads();
	if (ty == 0 && col < cols) {
		for (int l = 1; l < lanes; l++) s += sh[l * 32 + tx];
		part[(long long)k * cols + col] = s;
	}
}

/* out[col] += Σ_k part[k·cols + col], the chunks in order. */
extern "C" __global__ void colsum_finish(float *out, const double *part, int cols, int chunks) {
	GRID_STRIDE(col, cols) {
		double s = 0;
		for (int k = 0; k < chunks; k++) s += part[(long long)k * cols + col];
		out[col] += (float)s;
	}
}

/* Per-plane partial sums of x [n, c, sp] for a channel bias's gradient:
 * part[(ch·chunks + k)] = Σ over chunk k of channel ch. */
extern "C" __global__ void chansum_partial(double *part, const float *x, int n, int c, int sp, int chunks) {
	__shared__ double sh[RED];
	int ch = blockIdx.x, k = blockIdx.y;
	int cnt = n * sp;
	int lo = (int)((long long)cnt * k / chunks), hi = (int)((long long)cnt * (k + 1) / chunks);
	double s = 0;
	for (int i = lo + threadIdx.x; i < hi; i += RED) s += (double)x[((i / sp) * c + ch) * sp + i % sp];
	s = block_sum(s, sh);
	if (threadIdx.x == 0) part[(long long)ch * chunks + k] = s;
}

/* out[ch] += Σ_k part[ch·chunks + k]. */
extern "C" __global__ void chansum_finish(float *out, const double *part, int c, int chunks) {
	GRID_STRIDE(ch, c) {
		double s = 0;
		for (int k = 0; k < chunks; k++) s += part[(long long)ch * chunks + k];
		out[ch] += (float)s;
	}
}
