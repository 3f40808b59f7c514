/* A ViT's token plumbing. */

/* y [B, 1+n, d]: row 0 = cls + pos[0], row 1+i = patches[:, :, i] + pos[1+i]
 * (patches [B, d, n], the patch embedding's NCHW output). */
extern "C" __global__ void tokens_fwd(float *y, const float *patches, const float *cls, const float *pos, int b,
                                      int d, int n) {
	int t = 1 + n;
	GRID_STRIDE(i, b * t * d) {
		int bi = i / (t * d), r = i % (t * d);
		int ti = r / d, j = r % d;
		y[i] = ti == 0 ? cls[j] + pos[j] : patches[((long long)bi * d + j) * n + ti - 1] + pos[r];
	}
}

extern "C" __global__ void tokens_bwd_patches(float *dp, const float *dy, int b, int d, int n) {
	int t = 1 + n;
	GRID_STRIDE(i, b * d * n) {
		int bi = i / (d * n), r = i % (d * n);
		int j = r / n, ti = r % n;
		dp[i] = dy[((long long)bi * t + 1 + ti) * d + j];
	}
}

/* dpos[e] += Σ_b dy[b, e]; dcls[j] += Σ_b dy[b, 0, j]. */
extern "C" __global__ void tokens_bwd_params(float *dcls, float *dpos, const float *dy, int b, int d, int n) {
	int t = 1 + n;
	GRID_STRIDE(e, t * d) {
		double s = 0;
		for (int bi = 0; bi < b; bi++) s += (double)dy[(long long)bi * t * d + e];
		dpos[e] += (float)s;
		if (e < d) dcls[e] += (float)s;
	}
}

/* y [B, d] = x[:, 0, :] of x [B, t, d]. */
extern "C" __global__ void cls_fwd(float *y, const float *x, int b, int t, int d) {
	GRID_STRIDE(i, b * d) y[i] = x[(long long)(i / d) * t * d + i % d];
}

/* dx [B, t, d]: dy at token 0, zero elsewhere. */
extern "C" __global__ void cls_bwd(float *dx, const float *dy, int b, int t, int d) {
	GRID_STRIDE(i, b * t * d) {
		int bi = i / (t * d), r = i % (t * d);
		dx[i] = r < d ? dy[bi * d + r] : 0.f;
	}
}
