//go:build cgo

// AVX2/FMA kernels for the memory-bound loops of package nn: im2col and
// col2im, block copies, BatchNorm (channel sums, normalisation, input
// gradient, optionally fused with ReLU/ReLU6), ReLU/ReLU6 and Add. Each has
// a Go twin (the fallback for CGO_ENABLED=0, other architectures and CPUs
// without AVX2/FMA) that the tests compare it with.
//
// The functions are compiled for target("avx2,fma") only, so the package
// still loads on older CPUs; the Go side calls them only after
// nn_has_avx2_fma says the CPU has both. Every reduction runs in an order
// fixed by the code (per-lane float64 accumulators, then the lanes in
// order), never by the threads, so results are identical run to run.

#include <stdlib.h>
#include <string.h>
#include <immintrin.h>
#include "kernels.h"

#define TARGET __attribute__((target("avx2,fma")))

int nn_has_avx2_fma(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// valid_range: the output positions [lo, hi) whose input coordinate
// xs + o*stride lies in [0, w) (validRange in conv.go).
static inline void valid_range(int xs, int stride, int w, int ow, int *lo, int *hi) {
	int l = 0, h = ow;
	if (xs < 0) l = (-xs + stride - 1) / stride;
	if (xs + (ow - 1) * stride >= w) h = (w - 1 - xs < 0) ? 0 : (w - 1 - xs) / stride + 1;
	if (h < l) h = l;
	*lo = l;
	*hi = h;
}

// zero_edges clears, in rows [oylo, oyhi) of a [*, ow] block, the columns
// outside [lo, hi).
static inline void zero_edges(float *d, int ow, int oylo, int oyhi, int lo, int hi) {
	for (int oy = oylo; oy < oyhi; oy++) {
		float *o = d + oy * ow;
		for (int ox = 0; ox < lo; ox++) o[ox] = 0;
		for (int ox = hi; ox < ow; ox++) o[ox] = 0;
	}
}

// flat reports the common stride-1 "same" geometry (output width = input
// width): there a kernel offset's valid outputs are the input plane shifted
// by one constant, so its column row is one contiguous run of the plane
// plus a few edge columns to clear, instead of one short copy per row.
static inline int flat(const nn_conv *g) { return g->sh == 1 && g->sw == 1 && g->ow == g->w; }

// Small maps and strided convolutions copy only a few values per row, so
// the per-row loops of nn_im2col/nn_col2im spend their time on
// bookkeeping. There one table per kernel offset maps every position of the
// chunk to its source (-1 for padding), built once per call and shared by
// all channels, and the copies become 8-wide masked gathers. col2im uses
// them for stride 1 only: with stride 2 most input positions receive
// nothing and the gathers would mostly load masked lanes.
static int use_gather(const nn_conv *g, ptrdiff_t img_stride, int cnt) {
	// Measured: from 8 columns on, the flat path's contiguous runs are as
	// fast as the gathers, and faster beyond.
	if (flat(g) && g->ow >= 8) return 0;
	// Offsets must fit the gathers' int32 indices.
	return (double)img_stride * cnt + (double)g->cg * g->h * g->w * g->kh * g->kw < 2e9;
}

// src_of returns the input offset (y·w + x) that output position (oy, ox)
// reads at kernel offset (ki, kj), or -1 on padding.
static inline int src_of(const nn_conv *g, int oy, int ox, int ki, int kj) {
	const int y = oy * g->sh + ki * g->dh - g->ph, x = ox * g->sw + kj * g->dw - g->pw;
	if (y < 0 || y >= g->h || x < 0 || x >= g->w) return -1;
	return y * g->w + x;
}

// gather8 loads base[idx] for the lanes whose idx >= 0, 0 elsewhere.
TARGET static inline __m256 gather8(const float *base, const int32_t *idx) {
	__m256i vi = _mm256_loadu_si256((const __m256i *)idx);
	__m256 m = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vi, _mm256_set1_epi32(-1)));
	return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, vi, m, 4);
}

TARGET static int im2col_gather(const nn_conv *g, const float *x, ptrdiff_t img_stride, int cnt, float *col) {
	const int p = g->oh * g->ow, kk = g->kh * g->kw, q = cnt * p;
	const ptrdiff_t plane = (ptrdiff_t)g->h * g->w, ld = q;
	int32_t *idx = malloc(sizeof(int32_t) * (size_t)q);
	if (idx == NULL) return 0;
	for (int t = 0; t < kk; t++) {
		const int ki = t / g->kw, kj = t % g->kw;
		for (int i = 0; i < cnt; i++) {
			for (int oy = 0, j = 0; oy < g->oh; oy++) {
				for (int ox = 0; ox < g->ow; ox++, j++) {
					int s = src_of(g, oy, ox, ki, kj);
					idx[i * p + j] = s < 0 ? -1 : (int32_t)(i * img_stride + s);
				}
			}
		}
		for (int c = 0; c < g->cg; c++) {
			const float *base = x + c * plane;
			float *d = col + (ptrdiff_t)(c * kk + t) * ld;
			int j = 0;
			for (; j + 8 <= q; j += 8) _mm256_storeu_ps(d + j, gather8(base, idx + j));
			for (; j < q; j++) d[j] = idx[j] < 0 ? 0 : base[idx[j]];
		}
	}
	free(idx);
	return 1;
}

// col2im_gather sums, for every input position, the columns that read it,
// kernel offsets in order (as col2imGo adds the rows), and writes each
// position once.
TARGET static int col2im_gather(const nn_conv *g, float *dx, ptrdiff_t img_stride, int cnt, const float *col) {
	const int p = g->oh * g->ow, kk = g->kh * g->kw, plane = g->h * g->w, q = cnt * plane;
	const ptrdiff_t ld = (ptrdiff_t)cnt * p;
	// idx[t*q + i*plane + e]: the column (i*p + j) that writes input
	// position e of image i at kernel offset t, or -1.
	int32_t *idx = malloc(sizeof(int32_t) * (size_t)q * (size_t)kk);
	if (idx == NULL) return 0;
	for (int t = 0; t < kk; t++) {
		int32_t *it = idx + (ptrdiff_t)t * q;
		for (int e = 0; e < q; e++) it[e] = -1;
		const int ki = t / g->kw, kj = t % g->kw;
		for (int i = 0; i < cnt; i++) {
			for (int oy = 0, j = 0; oy < g->oh; oy++) {
				for (int ox = 0; ox < g->ow; ox++, j++) {
					int s = src_of(g, oy, ox, ki, kj);
					if (s >= 0) it[i * plane + s] = i * p + j;
				}
			}
		}
	}
	for (int c = 0; c < g->cg; c++) {
		const float *cb = col + (ptrdiff_t)c * kk * ld;
		int e = 0;
		for (; e + 8 <= q; e += 8) {
			__m256 acc = _mm256_setzero_ps();
			for (int t = 0; t < kk; t++) acc = _mm256_add_ps(acc, gather8(cb + t * ld, idx + (ptrdiff_t)t * q + e));
			const int i0 = e / plane, i7 = (e + 7) / plane;
			float *d0 = dx + i0 * img_stride + c * plane + (e - i0 * plane);
			if (i0 == i7) {
				_mm256_storeu_ps(d0, acc);
				continue;
			}
			float tmp[8];
			_mm256_storeu_ps(tmp, acc);
			for (int l = 0; l < 8; l++) {
				const int el = e + l, i = el / plane;
				dx[i * img_stride + c * plane + (el - i * plane)] = tmp[l];
			}
		}
		for (; e < q; e++) {
			float acc = 0;
			for (int t = 0; t < kk; t++) {
				int32_t k = idx[(ptrdiff_t)t * q + e];
				acc += k < 0 ? 0.0f : cb[t * ld + k];
			}
			const int i = e / plane;
			dx[i * img_stride + c * plane + (e - i * plane)] = acc;
		}
	}
	free(idx);
	return 1;
}

// nn_im2col unfolds cnt images (image i's group at x + i*img_stride) side
// by side: row r (of cg*kh*kw) of col holds oh*ow values per image, image
// i's at col[r*cnt*p + i*p]. Rows are written in order, each whole.
TARGET void nn_im2col(nn_conv gv, const float *x, ptrdiff_t img_stride, int cnt, float *col) {
	const nn_conv *g = &gv;
	if (use_gather(g, img_stride, cnt) && im2col_gather(g, x, img_stride, cnt, col)) return;
	const int ow = g->ow, oh = g->oh, p = oh * ow;
	const ptrdiff_t ld = (ptrdiff_t)cnt * p, plane = (ptrdiff_t)g->h * g->w;
	const int isflat = flat(g);
	ptrdiff_t row = 0;
	for (int c = 0; c < g->cg; c++) {
		for (int ki = 0; ki < g->kh; ki++) {
			const int ys = ki * g->dh - g->ph;
			int oylo, oyhi;
			valid_range(ys, g->sh, g->h, oh, &oylo, &oyhi);
			for (int kj = 0; kj < g->kw; kj++, row++) {
				const int xs = kj * g->dw - g->pw;
				int lo, hi;
				valid_range(xs, g->sw, g->w, ow, &lo, &hi);
				float *dr = col + row * ld;
				for (int i = 0; i < cnt; i++) {
					const float *xc = x + i * img_stride + c * plane;
					float *d = dr + (ptrdiff_t)i * p;
					memset(d, 0, sizeof(float) * (size_t)(oylo * ow));
					memset(d + oyhi * ow, 0, sizeof(float) * (size_t)((oh - oyhi) * ow));
					if (isflat && hi > lo) {
						// Outputs [a, b) read the plane at +off; the
						// columns outside [lo, hi) wrapped and are cleared.
						const int a = oylo * ow + lo, b = (oyhi - 1) * ow + hi, off = ys * g->w + xs;
						float *restrict o = d + a;
						const float *restrict xr = xc + a + off;
						for (int j = 0; j < b - a; j++) o[j] = xr[j];
						zero_edges(d, ow, oylo, oyhi, lo, hi);
						continue;
					}
					for (int oy = oylo; oy < oyhi; oy++) {
						const float *restrict xr = xc + (ptrdiff_t)(oy * g->sh + ys) * g->w;
						float *restrict o = d + oy * ow;
						for (int ox = 0; ox < lo; ox++) o[ox] = 0;
						if (g->sw == 1) {
							for (int ox = lo; ox < hi; ox++) o[ox] = xr[xs + ox];
						} else {
							for (int ox = lo; ox < hi; ox++) o[ox] = xr[xs + ox * g->sw];
						}
						for (int ox = hi; ox < ow; ox++) o[ox] = 0;
					}
				}
			}
		}
	}
}

// nn_col2im is the adjoint of nn_im2col: it overwrites the cnt images'
// groups (at dx + i*img_stride) with the columns summed back, one image at
// a time so that its planes stay in cache, rows in order. In the flat
// geometry the columns that fall on padding are cleared in col (which the
// caller no longer needs) so that each row is added as one contiguous run;
// the sums are those of col2imGo, as adding a zero changes nothing.
TARGET void nn_col2im(nn_conv gv, float *dx, ptrdiff_t img_stride, int cnt, float *col) {
	const nn_conv *g = &gv;
	if (g->sh == 1 && g->sw == 1 && use_gather(g, img_stride, cnt) && col2im_gather(g, dx, img_stride, cnt, col)) return;
	const int ow = g->ow, oh = g->oh, p = oh * ow;
	const ptrdiff_t ld = (ptrdiff_t)cnt * p, plane = (ptrdiff_t)g->h * g->w;
	const int isflat = flat(g);
	for (int i = 0; i < cnt; i++) {
		float *di = dx + i * img_stride;
		memset(di, 0, sizeof(float) * (size_t)(g->cg * plane));
		ptrdiff_t row = 0;
		for (int c = 0; c < g->cg; c++) {
			float *dc = di + c * plane;
			for (int ki = 0; ki < g->kh; ki++) {
				const int ys = ki * g->dh - g->ph;
				int oylo, oyhi;
				valid_range(ys, g->sh, g->h, oh, &oylo, &oyhi);
				for (int kj = 0; kj < g->kw; kj++, row++) {
					const int xs = kj * g->dw - g->pw;
					int lo, hi;
					valid_range(xs, g->sw, g->w, ow, &lo, &hi);
					float *src = col + row * ld + (ptrdiff_t)i * p;
					if (isflat) {
						if (hi <= lo || oyhi <= oylo) continue;
						zero_edges(src, ow, oylo, oyhi, lo, hi);
						const int a = oylo * ow + lo, b = (oyhi - 1) * ow + hi, off = ys * g->w + xs;
						float *restrict dr = dc + a + off;
						const float *restrict s = src + a;
						for (int j = 0; j < b - a; j++) dr[j] += s[j];
						continue;
					}
					for (int oy = oylo; oy < oyhi; oy++) {
						float *restrict dr = dc + (ptrdiff_t)(oy * g->sh + ys) * g->w;
						const float *restrict s = src + oy * ow;
						if (g->sw == 1) {
							for (int ox = lo; ox < hi; ox++) dr[xs + ox] += s[ox];
						} else {
							for (int ox = lo; ox < hi; ox++) dr[xs + ox * g->sw] += s[ox];
						}
					}
				}
			}
		}
	}
}

// nn_copy_blocks copies outer*inner blocks of len floats: block (o, i)
// from src + o*src_outer + i*src_inner to dst + o*dst_outer + i*dst_inner.
TARGET void nn_copy_blocks(float *dst, ptrdiff_t dst_outer, ptrdiff_t dst_inner,
		const float *src, ptrdiff_t src_outer, ptrdiff_t src_inner, int outer, int inner, ptrdiff_t len) {
	for (int o = 0; o < outer; o++) {
		for (int i = 0; i < inner; i++) {
			float *restrict d = dst + o * dst_outer + i * dst_inner;
			const float *restrict s = src + o * src_outer + i * src_inner;
			for (ptrdiff_t k = 0; k < len; k++) d[k] = s[k];
		}
	}
}

// act_mask8 is all ones where the activation passes the gradient: y > 0
// (ReLU), 0 < y < 6 (ReLU6), everywhere without an activation. y is the
// activation's output, which is inside those bounds exactly when its input
// is, NaN failing both as in the Go code.
TARGET static inline __m256 act_mask8(int act, __m256 y) {
	const __m256 zero = _mm256_setzero_ps();
	if (act == NN_ACT_RELU) return _mm256_cmp_ps(y, zero, _CMP_GT_OQ);
	if (act == NN_ACT_RELU6)
		return _mm256_and_ps(_mm256_cmp_ps(y, zero, _CMP_GT_OQ), _mm256_cmp_ps(y, _mm256_set1_ps(6), _CMP_LT_OQ));
	return _mm256_castsi256_ps(_mm256_set1_epi32(-1));
}

static inline int act_pass(int act, float y) {
	if (act == NN_ACT_RELU) return y > 0;
	if (act == NN_ACT_RELU6) return y > 0 && y < 6;
	return 1;
}

// act8 applies the activation; max(0, v) and min(6, v) return v when it is
// NaN, so NaN propagates as in Go's max and min.
TARGET static inline __m256 act8(int act, __m256 v) {
	if (act == NN_ACT_NONE) return v;
	v = _mm256_max_ps(_mm256_setzero_ps(), v);
	if (act == NN_ACT_RELU6) v = _mm256_min_ps(_mm256_set1_ps(6), v);
	return v;
}

static inline float act1(int act, float v) {
	if (act == NN_ACT_NONE || v != v) return v;
	if (v < 0) v = 0;
	if (act == NN_ACT_RELU6 && v > 6) v = 6;
	return v;
}

TARGET static inline double hsum4(__m256d v) {
	double t[4];
	_mm256_storeu_pd(t, v);
	return (t[0] + t[1]) + (t[2] + t[3]);
}

// nn_bn_sums sums, over n blocks of sp floats (block b at x + b*stride),
// x and x² and, when dy is not NULL, dy and dy·x, dy masked by the fused activation's output y when act is set.
// Accumulation is in float64, as in channelSumsGo.
TARGET nn_sums nn_bn_sums(const float *x, const float *dy, const float *y, int act,
		ptrdiff_t n, ptrdiff_t stride, ptrdiff_t sp) {
	__m256d sx0 = _mm256_setzero_pd(), sx1 = sx0, sxx0 = sx0, sxx1 = sx0;
	__m256d sd0 = sx0, sd1 = sx0, sdx0 = sx0, sdx1 = sx0;
	double tx = 0, txx = 0, td = 0, tdx = 0;
	for (ptrdiff_t b = 0; b < n; b++) {
		const float *xs = x + b * stride;
		ptrdiff_t i = 0;
		if (dy == NULL) {
			for (; i + 8 <= sp; i += 8) {
				__m256 v = _mm256_loadu_ps(xs + i);
				__m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
				__m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
				sx0 = _mm256_add_pd(sx0, lo);
				sx1 = _mm256_add_pd(sx1, hi);
				sxx0 = _mm256_fmadd_pd(lo, lo, sxx0);
				sxx1 = _mm256_fmadd_pd(hi, hi, sxx1);
			}
			for (; i < sp; i++) {
				double f = xs[i];
				tx += f;
				txx += f * f;
			}
			continue;
		}
		const float *ds = dy + b * stride;
		const float *ys = y ? y + b * stride : NULL;
		for (; i + 8 <= sp; i += 8) {
			__m256 v = _mm256_loadu_ps(xs + i);
			__m256 g = _mm256_loadu_ps(ds + i);
			if (act != NN_ACT_NONE) g = _mm256_and_ps(g, act_mask8(act, _mm256_loadu_ps(ys + i)));
			__m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
			__m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
			__m256d glo = _mm256_cvtps_pd(_mm256_castps256_ps128(g));
			__m256d ghi = _mm256_cvtps_pd(_mm256_extractf128_ps(g, 1));
			sx0 = _mm256_add_pd(sx0, lo);
			sx1 = _mm256_add_pd(sx1, hi);
			sxx0 = _mm256_fmadd_pd(lo, lo, sxx0);
			sxx1 = _mm256_fmadd_pd(hi, hi, sxx1);
			sd0 = _mm256_add_pd(sd0, glo);
			sd1 = _mm256_add_pd(sd1, ghi);
			sdx0 = _mm256_fmadd_pd(glo, lo, sdx0);
			sdx1 = _mm256_fmadd_pd(ghi, hi, sdx1);
		}
		for (; i < sp; i++) {
			double f = xs[i], gv = ds[i];
			if (act != NN_ACT_NONE && !act_pass(act, ys[i])) gv = 0;
			tx += f;
			txx += f * f;
			td += gv;
			tdx += gv * f;
		}
	}
	nn_sums s = {0, 0, 0, 0};
	s.sx = hsum4(_mm256_add_pd(sx0, sx1)) + tx;
	s.sxx = hsum4(_mm256_add_pd(sxx0, sxx1)) + txx;
	if (dy != NULL) {
		s.sdy = hsum4(_mm256_add_pd(sd0, sd1)) + td;
		s.sdyx = hsum4(_mm256_add_pd(sdx0, sdx1)) + tdx;
	}
	return s;
}

// nn_bn_apply writes act(x*scale + shift) over n blocks of sp floats.
TARGET void nn_bn_apply(float *out, const float *x, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t sp,
		float scale, float shift, int act) {
	const __m256 vs = _mm256_set1_ps(scale), vb = _mm256_set1_ps(shift);
	for (ptrdiff_t b = 0; b < n; b++) {
		const float *xs = x + b * stride;
		float *o = out + b * stride;
		ptrdiff_t i = 0;
		for (; i + 8 <= sp; i += 8)
			_mm256_storeu_ps(o + i, act8(act, _mm256_fmadd_ps(_mm256_loadu_ps(xs + i), vs, vb)));
		for (; i < sp; i++) o[i] = act1(act, __builtin_fmaf(xs[i], scale, shift));
	}
}

// nn_bn_dx writes BatchNorm's input gradient over n blocks of sp floats,
// in float64 as bnDxGo: dx = g·(dy − mdy − xhat·mdyx) in training and
// g·dy with running statistics, dy masked by the fused activation.
TARGET void nn_bn_dx(float *dx, const float *x, const float *dy, const float *y, int act,
		ptrdiff_t n, ptrdiff_t stride, ptrdiff_t sp, int train, nn_bn_coef k) {
	const double g = k.g, mean = k.mean, inv = k.inv, mdy = k.mdy, mdyx = k.mdyx;
	const __m256d vg = _mm256_set1_pd(g), vmean = _mm256_set1_pd(mean), vinv = _mm256_set1_pd(inv);
	const __m256d vmdy = _mm256_set1_pd(mdy), vmdyx = _mm256_set1_pd(mdyx);
	for (ptrdiff_t b = 0; b < n; b++) {
		const float *xs = x + b * stride, *ds = dy + b * stride;
		const float *ys = y ? y + b * stride : NULL;
		float *o = dx + b * stride;
		ptrdiff_t i = 0;
		for (; i + 8 <= sp; i += 8) {
			__m256 gv = _mm256_loadu_ps(ds + i);
			if (act != NN_ACT_NONE) gv = _mm256_and_ps(gv, act_mask8(act, _mm256_loadu_ps(ys + i)));
			__m256d glo = _mm256_cvtps_pd(_mm256_castps256_ps128(gv));
			__m256d ghi = _mm256_cvtps_pd(_mm256_extractf128_ps(gv, 1));
			__m256d rlo, rhi;
			if (train) {
				__m256 v = _mm256_loadu_ps(xs + i);
				__m256d xlo = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vmean), vinv);
				__m256d xhi = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vmean), vinv);
				rlo = _mm256_mul_pd(vg, _mm256_fnmadd_pd(xlo, vmdyx, _mm256_sub_pd(glo, vmdy)));
				rhi = _mm256_mul_pd(vg, _mm256_fnmadd_pd(xhi, vmdyx, _mm256_sub_pd(ghi, vmdy)));
			} else {
				rlo = _mm256_mul_pd(glo, vg);
				rhi = _mm256_mul_pd(ghi, vg);
			}
			__m256 r = _mm256_set_m128(_mm256_cvtpd_ps(rhi), _mm256_cvtpd_ps(rlo));
			_mm256_storeu_ps(o + i, r);
		}
		for (; i < sp; i++) {
			double gv = ds[i];
			if (act != NN_ACT_NONE && !act_pass(act, ys[i])) gv = 0;
			if (train) {
				double xhat = ((double)xs[i] - mean) * inv;
				o[i] = (float)(g * (gv - mdy - xhat * mdyx));
			} else {
				o[i] = (float)(gv * g);
			}
		}
	}
}

// nn_act_forward writes act(x) (ReLU or ReLU6) for n floats.
TARGET void nn_act_forward(int act, float *out, const float *x, ptrdiff_t n) {
	ptrdiff_t i = 0;
	for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, act8(act, _mm256_loadu_ps(x + i)));
	for (; i < n; i++) out[i] = act1(act, x[i]);
}

// nn_act_backward writes dy where the activation passes the gradient of
// its input x, zero elsewhere.
TARGET void nn_act_backward(int act, float *dx, const float *dy, const float *x, ptrdiff_t n) {
	ptrdiff_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(dx + i, _mm256_and_ps(_mm256_loadu_ps(dy + i), act_mask8(act, _mm256_loadu_ps(x + i))));
	for (; i < n; i++) dx[i] = act_pass(act, x[i]) ? dy[i] : 0;
}

// nn_add writes a + b for n floats.
TARGET void nn_add(float *out, const float *a, const float *b, ptrdiff_t n) {
	ptrdiff_t i = 0;
	for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
	for (; i < n; i++) out[i] = a[i] + b[i];
}

// pool_argmax returns the offset in plane xc of the maximum of output
// (oy, ox)'s window: the first maximum in row-major window order, or the
// first NaN (torch propagates NaN), as maxPoolKernel.argmax. The window is
// clipped to the plane once, so the inner loops carry no bounds checks.
static inline int pool_argmax(const nn_pool *g, const float *xc, int oy, int ox) {
	int y0 = oy * g->s - g->p, x0 = ox * g->s - g->p;
	int y1 = y0 + g->k, x1 = x0 + g->k;
	if (y0 < 0) y0 = 0;
	if (x0 < 0) x0 = 0;
	if (y1 > g->h) y1 = g->h;
	if (x1 > g->w) x1 = g->w;
	int bi = y0 * g->w + x0;
	float best = xc[bi];
	if (best != best) return bi;
	for (int y = y0; y < y1; y++) {
		const float *row = xc + y * g->w;
		for (int x = (y == y0 ? x0 + 1 : x0); x < x1; x++) {
			const float v = row[x];
			// !(v <= best): greater, or NaN.
			if (!(v <= best)) {
				best = v;
				bi = y * g->w + x;
				if (v != v) return bi;
			}
		}
	}
	return bi;
}

// pool_rows8 finds, for the 8 outputs (oy, ox0..ox0+7) whose windows lie
// inside the plane, each window's maximum and its offset in the plane, with
// 8-wide gathers and blends: a strict greater-than keeps the first maximum
// in row-major window order, as pool_argmax does. It returns 0 when a window
// holds a NaN, which the caller then resolves with pool_argmax. Random data
// made the scalar loop's compare branch mispredict about every other window
// element, so the maximum of 9 values cost ~25 ns.
TARGET static inline int pool_rows8(const nn_pool *g, const float *xc, int oy, int ox0, __m256 *vmax, __m256i *vidx) {
	const __m256i lane = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(g->s));
	const int y0 = oy * g->s - g->p, x0 = ox0 * g->s - g->p;
	__m256i idx = _mm256_add_epi32(lane, _mm256_set1_epi32(y0 * g->w + x0));
	__m256 best = _mm256_i32gather_ps(xc, idx, 4), nan = _mm256_cmp_ps(best, best, _CMP_UNORD_Q);
	__m256i bi = idx;
	for (int i = 0; i < g->k; i++) {
		for (int j = (i == 0); j < g->k; j++) {
			const __m256i at = _mm256_add_epi32(lane, _mm256_set1_epi32((y0 + i) * g->w + x0 + j));
			const __m256 v = _mm256_i32gather_ps(xc, at, 4);
			const __m256 gt = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
			nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
			best = _mm256_blendv_ps(best, v, gt);
			bi = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bi), _mm256_castsi256_ps(at), gt));
		}
	}
	*vmax = best;
	*vidx = bi;
	return _mm256_movemask_ps(nan) == 0;
}

// pool_inner returns the output range [lo, hi) whose windows lie inside
// [0, n) along one axis (n input positions, on outputs).
static inline void pool_inner(const nn_pool *g, int n, int on, int *lo, int *hi) {
	int l = (g->p + g->s - 1) / g->s, h = on;
	// Window of output o covers [o·s − p, o·s − p + k).
	while (h > l && (h - 1) * g->s - g->p + g->k > n) h--;
	if (h < l) h = l;
	*lo = l;
	*hi = h;
}

// pool_plane_scalar runs the forward (dy == NULL) or backward of one plane.
static void pool_plane_scalar(const nn_pool *g, const float *xc, float *o, const float *dy, float *dx) {
	for (int oy = 0; oy < g->oh; oy++) {
		for (int ox = 0; ox < g->ow; ox++) {
			const int a = pool_argmax(g, xc, oy, ox);
			if (dy == NULL) o[oy * g->ow + ox] = xc[a];
			else dx[a] += dy[oy * g->ow + ox];
		}
	}
}

// pool_plane_avx2 is pool_plane_scalar 8-wide over the windows inside the
// plane, pool_argmax at the edges and on NaN.
TARGET static void pool_plane_avx2(const nn_pool *g, const float *xc, float *o, const float *dy, float *dx) {
	int ylo, yhi, xlo, xhi;
	pool_inner(g, g->h, g->oh, &ylo, &yhi);
	pool_inner(g, g->w, g->ow, &xlo, &xhi);
	// Offsets must fit the gathers' int32 indices.
	const int simd = (double)g->h * g->w < 2e9;
	for (int oy = 0; oy < g->oh; oy++) {
		int ox = 0;
		for (; ox < g->ow; ox++) {
			if (simd && oy >= ylo && oy < yhi && ox >= xlo && ox + 8 <= xhi) {
				__m256 m;
				__m256i bi;
				if (pool_rows8(g, xc, oy, ox, &m, &bi)) {
					if (dy == NULL) {
						_mm256_storeu_ps(o + oy * g->ow + ox, m);
					} else {
						int32_t at[8];
						_mm256_storeu_si256((__m256i *)at, bi);
						// In output order, as the scalar loop adds.
						for (int l = 0; l < 8; l++) dx[at[l]] += dy[oy * g->ow + ox + l];
					}
					ox += 7;
					continue;
				}
				for (int l = 0; l < 8; l++, ox++) {
					const int a = pool_argmax(g, xc, oy, ox);
					if (dy == NULL) o[oy * g->ow + ox] = xc[a];
					else dx[a] += dy[oy * g->ow + ox];
				}
				ox--;
				continue;
			}
			const int a = pool_argmax(g, xc, oy, ox);
			if (dy == NULL) o[oy * g->ow + ox] = xc[a];
			else dx[a] += dy[oy * g->ow + ox];
		}
	}
}

void nn_maxpool_forward(nn_pool g, const float *x, float *out, ptrdiff_t planes, int avx2) {
	const ptrdiff_t in = (ptrdiff_t)g.h * g.w, on = (ptrdiff_t)g.oh * g.ow;
	for (ptrdiff_t c = 0; c < planes; c++) {
		if (avx2) pool_plane_avx2(&g, x + c * in, out + c * on, NULL, NULL);
		else pool_plane_scalar(&g, x + c * in, out + c * on, NULL, NULL);
	}
}

void nn_maxpool_backward(nn_pool g, const float *x, const float *dy, float *dx, ptrdiff_t planes, int avx2) {
	const ptrdiff_t in = (ptrdiff_t)g.h * g.w, on = (ptrdiff_t)g.oh * g.ow;
	for (ptrdiff_t c = 0; c < planes; c++) {
		if (avx2) pool_plane_avx2(&g, x + c * in, NULL, dy + c * on, dx + c * in);
		else pool_plane_scalar(&g, x + c * in, NULL, dy + c * on, dx + c * in);
	}
}

// Winograd F(2x2, 3x3): V = Bᵀ·d·B for a 4x4 input patch d, Y = Aᵀ·M·A for
// a 4x4 product M, with Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] and
// Aᵀ = [1 1 1 0; 0 1 -1 -1].

// WINO_IN4 applies Bᵀ to four values.
#define WINO_IN4(a0, a1, a2, a3, r0, r1, r2, r3) \
	do { r0 = (a0) - (a2); r1 = (a1) + (a2); r2 = (a2) - (a1); r3 = (a1) - (a3); } while (0)

// wino_patch loads the 4x4 input patch of tile (ty, tx), zero outside the
// plane.
static inline void wino_patch(const float *xc, int h, int w, int ty, int tx, float d[16]) {
	const int y0 = 2 * ty - 1, x0 = 2 * tx - 1;
	if (y0 >= 0 && x0 >= 0 && y0 + 4 <= h && x0 + 4 <= w) {
		for (int r = 0; r < 4; r++)
			for (int s = 0; s < 4; s++) d[r * 4 + s] = xc[(y0 + r) * w + x0 + s];
		return;
	}
	for (int r = 0; r < 4; r++) {
		const int y = y0 + r;
		for (int s = 0; s < 4; s++) {
			const int xx = x0 + s;
			d[r * 4 + s] = (y >= 0 && y < h && xx >= 0 && xx < w) ? xc[y * w + xx] : 0.0f;
		}
	}
}

// wino_input_tile writes tile t's 16 transformed values of one channel:
// v[ξ·stride + t] for ξ = 4·row + column.
static inline void wino_input_tile(const float d[16], float *v, ptrdiff_t stride, ptrdiff_t t) {
	// Along each row first, then down each column: the order (and so the
	// rounding) of wino_input8.
	float b[16];
	for (int r = 0; r < 4; r++) WINO_IN4(d[4 * r], d[4 * r + 1], d[4 * r + 2], d[4 * r + 3], b[4 * r], b[4 * r + 1], b[4 * r + 2], b[4 * r + 3]);
	for (int s = 0; s < 4; s++) {
		float o0, o1, o2, o3;
		WINO_IN4(b[s], b[4 + s], b[8 + s], b[12 + s], o0, o1, o2, o3);
		v[(0 + s) * stride + t] = o0;
		v[(4 + s) * stride + t] = o1;
		v[(8 + s) * stride + t] = o2;
		v[(12 + s) * stride + t] = o3;
	}
}

// deinterleave splits 16 consecutive floats at p into their even and odd
// elements.
TARGET static inline void deinterleave(const float *p, __m256 *even, __m256 *odd) {
	const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
	*even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
	*odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

// lane_mask returns the mask of the first n of 8 lanes (n clipped to 0..8).
TARGET static inline __m256i lane_mask(int n) {
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// store8 writes v to dst, only the lanes in mask unless the block is full.
TARGET static inline void store8(float *dst, __m256 v, int full, __m256i mask) {
	if (full) _mm256_storeu_ps(dst, v);
	else _mm256_maskstore_ps(dst, mask, v);
}

// wino_input_avx2 transforms one plane, 8 tiles at a time. The plane is
// first copied into pad, zero-bordered (by the caller, once per call) and
// wide enough that every block of 8 tiles reads inside it: the tiles at the edges (a third of them on a
// 28x28 map, all of them on 14x14 and smaller) then take the 8-wide path
// too, and a row's last block stores only its valid lanes.
TARGET static void wino_input_avx2(const float *xc, int h, int w, int th, int tw, float *v, ptrdiff_t stride, ptrdiff_t t0, float *pad) {
	const int wp = 2 * tw + 18;
	// Padded row r + 1 holds input row r; column c + 1 input column c. The
	// border, cleared by the caller, is never written.
	for (int r = 0; r < h; r++) memcpy(pad + (ptrdiff_t)(r + 1) * wp + 1, xc + (ptrdiff_t)r * w, sizeof(float) * (size_t)w);
	for (int ty = 0; ty < th; ty++) {
		for (int tx = 0; tx < tw; tx += 8) {
			__m256 b[16];
			for (int r = 0; r < 4; r++) {
				// Patch row r of tile (ty, tx) is padded row 2ty + r, from
				// padded column 2tx.
				const float *row = pad + (ptrdiff_t)(2 * ty + r) * wp + 2 * tx;
				__m256 c0, c1, c2, c3;
				deinterleave(row, &c0, &c1);
				deinterleave(row + 2, &c2, &c3);
				b[4 * r + 0] = _mm256_sub_ps(c0, c2);
				b[4 * r + 1] = _mm256_add_ps(c1, c2);
				b[4 * r + 2] = _mm256_sub_ps(c2, c1);
				b[4 * r + 3] = _mm256_sub_ps(c1, c3);
			}
			float *vt = v + t0 + ty * tw + tx;
			const __m256i mask = lane_mask(tw - tx);
			const int full = tw - tx >= 8;
			for (int s = 0; s < 4; s++) {
				const __m256 d0 = b[s], d1 = b[4 + s], d2 = b[8 + s], d3 = b[12 + s];
				const __m256 o[4] = {_mm256_sub_ps(d0, d2), _mm256_add_ps(d1, d2), _mm256_sub_ps(d2, d1), _mm256_sub_ps(d1, d3)};
				for (int q = 0; q < 4; q++) store8(vt + (4 * q + s) * stride, o[q], full, mask);
			}
		}
	}
}

// wino_plane transforms one plane (h x w at src) into the tile columns
// t0.. of a [16][·][T] buffer (row stride stride) at dst; pad is the
// AVX2 versions' zero-bordered scratch.
typedef void (*wino_plane)(const float *src, int h, int w, int th, int tw, float *dst, ptrdiff_t stride, ptrdiff_t t0, float *pad);

// wino_planes runs f over the c planes of cnt images (image i at
// src + i·img_stride), plane ch going to rows ch of dst [16][c][T].
static void wino_planes(wino_plane f, const float *src, ptrdiff_t img_stride, int cnt, int c, int h, int w, float *dst, float *pad) {
	const int th = (h + 1) / 2, tw = (w + 1) / 2;
	const ptrdiff_t T = (ptrdiff_t)cnt * th * tw;
	for (int i = 0; i < cnt; i++)
		for (int ch = 0; ch < c; ch++)
			f(src + i * img_stride + (ptrdiff_t)ch * h * w, h, w, th, tw, dst + ch * T, (ptrdiff_t)c * T, (ptrdiff_t)i * th * tw, pad);
}

static void wino_input_scalar(const float *xc, int h, int w, int th, int tw, float *v, ptrdiff_t stride, ptrdiff_t t0, float *pad) {
	(void)pad;
	for (int ty = 0; ty < th; ty++) {
		for (int tx = 0; tx < tw; tx++) {
			float d[16];
			wino_patch(xc, h, w, ty, tx, d);
			wino_input_tile(d, v, stride, t0 + ty * tw + tx);
		}
	}
}

void nn_wino_input(const float *x, ptrdiff_t img_stride, int cnt, int c, int h, int w, float *v, int avx2) {
	const int th = (h + 1) / 2, tw = (w + 1) / 2;
	float *pad = avx2 ? calloc((size_t)(2 * th + 2) * (size_t)(2 * tw + 18), sizeof(float)) : NULL;
	wino_planes(pad != NULL ? wino_input_avx2 : wino_input_scalar, x, img_stride, cnt, c, h, w, v, pad);
	free(pad);
}

// wino_output_tile returns tile t's 2x2 outputs Aᵀ·M·A (y00 y01 y10 y11).
static inline void wino_output_tile(const float *m, ptrdiff_t stride, ptrdiff_t t, float y[4]) {
	float r[8]; // Aᵀ applied down each of the 4 columns: 2 rows x 4
	for (int s = 0; s < 4; s++) {
		const float m0 = m[s * stride + t], m1 = m[(4 + s) * stride + t], m2 = m[(8 + s) * stride + t], m3 = m[(12 + s) * stride + t];
		r[s] = m0 + m1 + m2;
		r[4 + s] = m1 - m2 - m3;
	}
	y[0] = r[0] + r[1] + r[2];
	y[1] = r[1] - r[2] - r[3];
	y[2] = r[4] + r[5] + r[6];
	y[3] = r[5] - r[6] - r[7];
}

// wino_output_avx2 writes one plane's outputs, 8 tiles (two rows of 16
// outputs) at a time; a row's last block loads and stores only its valid
// lanes, and an odd last output row is skipped.
TARGET static void wino_output_avx2(const float *m, ptrdiff_t stride, ptrdiff_t t0, float *oc, int h, int w, int th, int tw) {
	for (int ty = 0; ty < th; ty++) {
		for (int tx = 0; tx < tw; tx += 8) {
			const ptrdiff_t t = t0 + ty * tw + tx;
			const int full = tw - tx >= 8;
			const __m256i mask = lane_mask(tw - tx);
			__m256 r[8];
			for (int s = 0; s < 4; s++) {
				__m256 mm[4];
				for (int q = 0; q < 4; q++) {
					const float *src = m + (4 * q + s) * stride + t;
					mm[q] = full ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, mask);
				}
				r[s] = _mm256_add_ps(_mm256_add_ps(mm[0], mm[1]), mm[2]);
				r[4 + s] = _mm256_sub_ps(_mm256_sub_ps(mm[1], mm[2]), mm[3]);
			}
			// Outputs 2tx .. 2tx+15 of the row, clipped to the plane.
			const int n = w - 2 * tx;
			const __m256i m0 = lane_mask(n), m1 = lane_mask(n - 8);
			for (int row = 0; row < 2 && 2 * ty + row < h; row++) {
				const __m256 *q = r + 4 * row;
				const __m256 y0 = _mm256_add_ps(_mm256_add_ps(q[0], q[1]), q[2]);
				const __m256 y1 = _mm256_sub_ps(_mm256_sub_ps(q[1], q[2]), q[3]);
				const __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
				const __m256 a = _mm256_permute2f128_ps(lo, hi, 0x20), b = _mm256_permute2f128_ps(lo, hi, 0x31);
				float *o = oc + (ptrdiff_t)(2 * ty + row) * w + 2 * tx;
				if (n >= 16) {
					_mm256_storeu_ps(o, a);
					_mm256_storeu_ps(o + 8, b);
				} else {
					_mm256_maskstore_ps(o, m0, a);
					_mm256_maskstore_ps(o + 8, m1, b);
				}
			}
		}
	}
}

void nn_wino_output(const float *m, int cnt, int o, int h, int w, float *out, ptrdiff_t out_stride, int avx2) {
	const int th = (h + 1) / 2, tw = (w + 1) / 2;
	const ptrdiff_t T = (ptrdiff_t)cnt * th * tw, stride = (ptrdiff_t)o * T;
	for (int i = 0; i < cnt; i++) {
		for (int oc = 0; oc < o; oc++) {
			float *op = out + i * out_stride + (ptrdiff_t)oc * h * w;
			const float *mc = m + oc * T;
			const ptrdiff_t t0 = (ptrdiff_t)i * th * tw;
			if (avx2) {
				wino_output_avx2(mc, stride, t0, op, h, w, th, tw);
				continue;
			}
			for (int ty = 0; ty < th; ty++) {
				for (int tx = 0; tx < tw; tx++) {
					float y[4];
					wino_output_tile(mc, stride, t0 + ty * tw + tx, y);
					for (int a = 0; a < 2; a++)
						for (int b = 0; b < 2; b++)
							if (2 * ty + a < h && 2 * tx + b < w) op[(2 * ty + a) * w + 2 * tx + b] = y[2 * a + b];
				}
			}
		}
	}
}

// wino_grad_tile writes tile t's dM = A·dY·Aᵀ for dY = [a b; c d], with
// A = [1 0; 1 1; 1 -1; 0 -1]: rows (a, b), (a+c, b+d), (a−c, b−d), (−c, −d),
// each row (p, q) then becoming (p, p+q, p−q, −q).
static inline void wino_grad_tile(float a, float b, float c, float d, float *dm, ptrdiff_t stride, ptrdiff_t t) {
	const float p[4] = {a, a + c, a - c, -c}, q[4] = {b, b + d, b - d, -d};
	for (int r = 0; r < 4; r++) {
		dm[(4 * r + 0) * stride + t] = p[r];
		dm[(4 * r + 1) * stride + t] = p[r] + q[r];
		dm[(4 * r + 2) * stride + t] = p[r] - q[r];
		dm[(4 * r + 3) * stride + t] = -q[r];
	}
}

// wino_grad_avx2 is wino_grad_tile 8 tiles at a time, from pad: a copy of
// the plane with zero rows and columns past its end (cleared by the caller).
TARGET static void wino_grad_avx2(const float *gc, int h, int w, int th, int tw, float *dm, ptrdiff_t stride, ptrdiff_t t0, float *pad) {
	const int wp = 2 * tw + 16;
	for (int r = 0; r < h; r++) memcpy(pad + (ptrdiff_t)r * wp, gc + (ptrdiff_t)r * w, sizeof(float) * (size_t)w);
	const __m256 zero = _mm256_setzero_ps();
	for (int ty = 0; ty < th; ty++) {
		for (int tx = 0; tx < tw; tx += 8) {
			__m256 a, b, c, d;
			deinterleave(pad + (ptrdiff_t)(2 * ty) * wp + 2 * tx, &a, &b);
			deinterleave(pad + (ptrdiff_t)(2 * ty + 1) * wp + 2 * tx, &c, &d);
			const __m256 p[4] = {a, _mm256_add_ps(a, c), _mm256_sub_ps(a, c), _mm256_sub_ps(zero, c)};
			const __m256 q[4] = {b, _mm256_add_ps(b, d), _mm256_sub_ps(b, d), _mm256_sub_ps(zero, d)};
			float *dt = dm + t0 + ty * tw + tx;
			const int full = tw - tx >= 8;
			const __m256i mask = lane_mask(tw - tx);
			for (int r = 0; r < 4; r++) {
				const __m256 o[4] = {p[r], _mm256_add_ps(p[r], q[r]), _mm256_sub_ps(p[r], q[r]), _mm256_sub_ps(zero, q[r])};
				for (int k = 0; k < 4; k++) store8(dt + (4 * r + k) * stride, o[k], full, mask);
			}
		}
	}
}

static void wino_grad_scalar(const float *gc, int h, int w, int th, int tw, float *dm, ptrdiff_t stride, ptrdiff_t t0, float *pad) {
	(void)pad;
	for (int ty = 0; ty < th; ty++) {
		for (int tx = 0; tx < tw; tx++) {
			const int y = 2 * ty, x = 2 * tx;
			const float a = gc[y * w + x];
			const float b = x + 1 < w ? gc[y * w + x + 1] : 0;
			const float c = y + 1 < h ? gc[(y + 1) * w + x] : 0;
			const float d = x + 1 < w && y + 1 < h ? gc[(y + 1) * w + x + 1] : 0;
			wino_grad_tile(a, b, c, d, dm, stride, t0 + ty * tw + tx);
		}
	}
}

void nn_wino_grad_output(const float *dy, ptrdiff_t img_stride, int cnt, int o, int h, int w, float *dm, int avx2) {
	const int th = (h + 1) / 2, tw = (w + 1) / 2;
	float *pad = avx2 ? calloc((size_t)(2 * th) * (size_t)(2 * tw + 16), sizeof(float)) : NULL;
	wino_planes(pad != NULL ? wino_grad_avx2 : wino_grad_scalar, dy, img_stride, cnt, o, h, w, dm, pad);
	free(pad);
}
