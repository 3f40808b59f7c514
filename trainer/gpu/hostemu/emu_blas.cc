//go:build cgo

/* A host SGEMM with cuBLAS's role in the emulation (Device.HostBLAS):
 * row-major, strided-batched, C = alpha·op(A)·op(B) + beta·C, float sums. */
#include <stdlib.h>

#include "emu_api.h"

extern "C" void emu_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, long long sa,
                          const float *B, int ldb, long long sb, float beta, float *C, int ldc, long long sc,
                          int batch) {
	float *acc = (float *)malloc(sizeof(float) * (n > 0 ? n : 1));
	for (int b = 0; b < batch; b++) {
		const float *a = A + b * sa, *bm = B + b * sb;
		float *c = C + b * sc;
		for (int i = 0; i < m; i++) {
			for (int j = 0; j < n; j++) acc[j] = 0.f;
			for (int p = 0; p < k; p++) {
				float av = ta ? a[(long long)p * lda + i] : a[(long long)i * lda + p];
				if (tb)
					for (int j = 0; j < n; j++) acc[j] += av * bm[(long long)j * ldb + p];
				else
					for (int j = 0; j < n; j++) acc[j] += av * bm[(long long)p * ldb + j];
			}
			float *row = c + (long long)i * ldc;
			for (int j = 0; j < n; j++) row[j] = beta == 0.f ? alpha * acc[j] : alpha * acc[j] + beta * row[j];
		}
	}
	free(acc);
}
