/* A row-major, strided-batched SGEMM for devices without cuBLAS (and the
 * host emulation): C = alpha·op(A)·op(B) + beta·C with gonum's conventions
 * (lda, ldb, ldc are row strides; beta = 0 never reads C). Block (16, 16)
 * computes a 16x16 tile of C; grid.z is the batch index. */

#define TILE 16

extern "C" __global__ void sgemm_rm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda,
                                    long long sa, const float *B, int ldb, long long sb, float beta, float *C, int ldc,
                                    long long sc) {
	__shared__ float As[TILE][TILE + 1];
	__shared__ float Bs[TILE][TILE + 1];
	A += blockIdx.z * sa;
	B += blockIdx.z * sb;
	C += blockIdx.z * sc;
	int tx = threadIdx.x, ty = threadIdx.y;
	int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
	float acc = 0.f;
	for (int t = 0; t < k; t += TILE) {
		int ac = t + tx;
		float av = 0.f;
		if (row < m && ac < k) av = ta ? A[(long long)ac * lda + row] : A[(long long)row * lda + ac];
		As[ty][tx] = av;
		int br = t + ty;
		float bv = 0.f;
		if (br < k && col < n) bv = tb ? B[(long long)col * ldb + br] : B[(long long)br * ldb + col];
		Bs[ty][tx] = bv;
		__syncthreads();
		for (int i = 0; i < TILE; i++) acc += As[ty][i] * Bs[i][tx];
		__syncthreads();
	}
	if (row < m && col < n) {
		float *c = C + (long long)row * ldc + col;
		*c = beta == 0.f ? alpha * acc : alpha * acc + beta * *c;
	}
}
