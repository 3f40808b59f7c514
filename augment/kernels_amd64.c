//go:build cgo

// AVX2 kernels for the hot loops of package augment. Every kernel computes
// exactly what its Go twin in resample_go.go / blur.go / adjust.go computes:
// integer arithmetic is exact in any order, and the float code of the hue
// kernel performs the same IEEE operations in the same order. The kernels
// are compiled for target("avx2") only, without "fma", so the compiler cannot
// contract a multiply and an add into one rounding. The Go code only calls
// them after sslight_has_avx2() says the CPU supports AVX2.

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <math.h>
#include <immintrin.h>

#define PREC 22

// Hue tables, filled by sslight_has_avx2 with hsv2rgb's own expressions:
// f = (float)(h*6.0/255.0 - i) per 8-bit hue h, fs = (float)(s/255.0) per
// 8-bit saturation s.
static float hue_f[256], sat_fs[256];

int sslight_has_avx2(void) {
	for (int v = 0; v < 256; v++) {
		double hd = (float)v * 6.0 / 255.0;
		hue_f[v] = (float)(hd - (float)floor(hd));
		sat_fs[v] = (float)((float)v / 255.0);
	}
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}

static inline uint8_t clip8(int32_t v) {
	if (v >= (255 << PREC)) return 255;
	if (v <= 0) return 0;
	return (uint8_t)(v >> PREC);
}

// Horizontal resampling pass, two rows per step. The fixed-point weights
// (|w| < 2^23) are split exactly as w = hi·2^11 + lo with hi a signed and lo
// an unsigned 11-bit value, so both fit the 16-bit operands of pmaddwd, and
// Σ v·w = 2^11·Σ v·hi + Σ v·lo in int32 (no overflow while ksize <= 1024,
// which the caller guarantees). Four taps form a group: 16 bytes are loaded
// from the group's first pixel of each of the two rows (one row per 128-bit
// lane), two byte shuffles pair up taps (0,1) and (2,3) per channel, and
// wq holds per output column and group the packed int16 pairs
// {hi(0,1), lo(0,1), hi(2,3), lo(2,3)} (zero for missing taps). Columns whose
// 16-byte loads would pass src_len, and the taps of every column when its
// count exceeds the groups, fall back to the scalar path with the plain
// weights w.
__attribute__((target("avx2")))
void sslight_resample_rows_avx2(const uint8_t *src, ptrdiff_t sstride, ptrdiff_t src_len,
		uint8_t *dst, ptrdiff_t dstride, int rows, int outw,
		const int32_t *start, const int32_t *count, const int32_t *w, int ksize,
		const int32_t *wq, int groups) {
	const __m256i shufA = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
		0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
	const __m256i shufB = _mm256_setr_epi8(6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1,
		6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
	const __m256i bias = _mm256_set1_epi32(1 << (PREC - 1));
	const uint8_t *src_end = src + src_len;
	for (int y = 0; y < rows; y += 2) {
		const int two = y + 1 < rows;
		const uint8_t *in0 = src + (ptrdiff_t)y * sstride;
		const uint8_t *in1 = two ? in0 + sstride : in0;
		uint8_t *out0 = dst + (ptrdiff_t)y * dstride;
		uint8_t *out1 = out0 + dstride;
		for (int xx = 0; xx < outw; xx++) {
			const int n = count[xx];
			const ptrdiff_t off = 3 * (ptrdiff_t)start[xx];
			const int g = (n + 3) / 4;
			if (in1 + off + 12 * (ptrdiff_t)g + 4 > src_end) {
				const int32_t *k = w + (ptrdiff_t)xx * ksize;
				for (int r = 0; r <= two; r++) {
					const uint8_t *p = (r ? in1 : in0) + off;
					uint8_t *o = (r ? out1 : out0) + 3 * xx;
					int32_t s0 = 1 << (PREC - 1), s1 = s0, s2 = s0;
					for (int i = 0; i < n; i++) {
						s0 += (int32_t)p[3 * i] * k[i];
						s1 += (int32_t)p[3 * i + 1] * k[i];
						s2 += (int32_t)p[3 * i + 2] * k[i];
					}
					o[0] = clip8(s0);
					o[1] = clip8(s1);
					o[2] = clip8(s2);
				}
				continue;
			}
			const int32_t *q = wq + (ptrdiff_t)xx * groups * 4;
			const uint8_t *p0 = in0 + off, *p1 = in1 + off;
			__m256i hi = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
			for (int j = 0; j < g; j++) {
				__m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p0 + 12 * j))),
					_mm_loadu_si128((const __m128i *)(p1 + 12 * j)), 1);
				__m256i a = _mm256_shuffle_epi8(v, shufA);
				__m256i b = _mm256_shuffle_epi8(v, shufB);
				hi = _mm256_add_epi32(hi, _mm256_madd_epi16(a, _mm256_set1_epi32(q[4 * j])));
				lo = _mm256_add_epi32(lo, _mm256_madd_epi16(a, _mm256_set1_epi32(q[4 * j + 1])));
				hi = _mm256_add_epi32(hi, _mm256_madd_epi16(b, _mm256_set1_epi32(q[4 * j + 2])));
				lo = _mm256_add_epi32(lo, _mm256_madd_epi16(b, _mm256_set1_epi32(q[4 * j + 3])));
			}
			__m256i acc = _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(hi, 11), lo), bias);
			acc = _mm256_srai_epi32(acc, PREC);
			acc = _mm256_packs_epi32(acc, acc);
			acc = _mm256_packus_epi16(acc, acc);
			uint32_t px0 = (uint32_t)_mm_cvtsi128_si32(_mm256_castsi256_si128(acc));
			uint8_t *o0 = out0 + 3 * xx;
			o0[0] = (uint8_t)px0;
			o0[1] = (uint8_t)(px0 >> 8);
			o0[2] = (uint8_t)(px0 >> 16);
			if (two) {
				uint32_t px1 = (uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(acc, 1));
				uint8_t *o1 = out1 + 3 * xx;
				o1[0] = (uint8_t)px1;
				o1[1] = (uint8_t)(px1 >> 8);
				o1[2] = (uint8_t)(px1 >> 16);
			}
		}
	}
}

// Vertical resampling pass: output row yy is the weighted sum of source rows
// start[yy] ... start[yy]+count[yy]-1 (relative to src), nbytes bytes each.
__attribute__((target("avx2")))
void sslight_resample_cols_avx2(const uint8_t *src, ptrdiff_t sstride, uint8_t *dst, ptrdiff_t dstride,
		int outh, int nbytes, const int32_t *start, const int32_t *count, const int32_t *w, int ksize) {
	const __m256i bias = _mm256_set1_epi32(1 << (PREC - 1));
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	for (int yy = 0; yy < outh; yy++) {
		const int32_t *k = w + (ptrdiff_t)yy * ksize;
		int n = count[yy];
		const uint8_t *base = src + (ptrdiff_t)start[yy] * sstride;
		uint8_t *out = dst + (ptrdiff_t)yy * dstride;
		int x = 0;
		for (; x + 32 <= nbytes; x += 32) {
			__m256i a0 = bias, a1 = bias, a2 = bias, a3 = bias;
			for (int i = 0; i < n; i++) {
				const uint8_t *r = base + (ptrdiff_t)i * sstride + x;
				__m256i wv = _mm256_set1_epi32(k[i]);
				a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)r)), wv));
				a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r + 8))), wv));
				a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r + 16))), wv));
				a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r + 24))), wv));
			}
			a0 = _mm256_srai_epi32(a0, PREC);
			a1 = _mm256_srai_epi32(a1, PREC);
			a2 = _mm256_srai_epi32(a2, PREC);
			a3 = _mm256_srai_epi32(a3, PREC);
			__m256i p = _mm256_packus_epi16(_mm256_packs_epi32(a0, a1), _mm256_packs_epi32(a2, a3));
			_mm256_storeu_si256((__m256i *)(out + x), _mm256_permutevar8x32_epi32(p, order));
		}
		for (; x + 8 <= nbytes; x += 8) {
			__m256i a0 = bias;
			for (int i = 0; i < n; i++) {
				const uint8_t *r = base + (ptrdiff_t)i * sstride + x;
				a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)r)), _mm256_set1_epi32(k[i])));
			}
			a0 = _mm256_srai_epi32(a0, PREC);
			__m128i s = _mm_packs_epi32(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1));
			_mm_storel_epi64((__m128i *)(out + x), _mm_packus_epi16(s, s));
		}
		for (; x < nbytes; x++) {
			int32_t s = 1 << (PREC - 1);
			for (int i = 0; i < n; i++) {
				s += (int32_t)base[(ptrdiff_t)i * sstride + x] * k[i];
			}
			out[x] = clip8(s);
		}
	}
}

// One box-blur pass along the columns of a tight plane of h rows of nbytes
// bytes: out = (ww·Σ_{|k−y|≤r} in[k] + fw·(in[y−r−1] + in[y+r+1]) + 2²³) >> 24
// with row indices clamped (edge replication), in uint32 like PIL. acc holds
// nbytes uint32 of scratch.
__attribute__((target("avx2")))
void sslight_box_cols_avx2(uint8_t *dst, const uint8_t *src, int nbytes, int h, int r,
		uint32_t ww, uint32_t fw, uint32_t *acc) {
	const int last = h - 1;
#define ROW(k) (src + (ptrdiff_t)((k) < 0 ? 0 : ((k) > last ? last : (k))) * nbytes)
	memset(acc, 0, sizeof(uint32_t) * (size_t)nbytes);
	for (int k = -r; k <= r; k++) {
		const uint8_t *row = ROW(k);
		for (int i = 0; i < nbytes; i++) acc[i] += row[i];
	}
	const __m256i vww = _mm256_set1_epi32((int32_t)ww);
	const __m256i vfw = _mm256_set1_epi32((int32_t)fw);
	const __m256i half = _mm256_set1_epi32(1 << 23);
	for (int y = 0; y < h; y++) {
		const uint8_t *lo = ROW(y - r - 1), *hi = ROW(y + r + 1), *sub = ROW(y - r);
		uint8_t *out = dst + (ptrdiff_t)y * nbytes;
		int x = 0;
		for (; x + 8 <= nbytes; x += 8) {
			__m256i a = _mm256_loadu_si256((const __m256i *)(acc + x));
			__m256i l = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(lo + x)));
			__m256i g = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(hi + x)));
			__m256i s = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(sub + x)));
			__m256i v = _mm256_add_epi32(_mm256_mullo_epi32(a, vww), _mm256_mullo_epi32(_mm256_add_epi32(l, g), vfw));
			v = _mm256_srli_epi32(_mm256_add_epi32(v, half), 24);
			__m128i p = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
			_mm_storel_epi64((__m128i *)(out + x), _mm_packus_epi16(p, p));
			_mm256_storeu_si256((__m256i *)(acc + x), _mm256_sub_epi32(_mm256_add_epi32(a, g), s));
		}
		for (; x < nbytes; x++) {
			uint32_t v = acc[x] * ww + ((uint32_t)lo[x] + (uint32_t)hi[x]) * fw + (1u << 23);
			out[x] = (uint8_t)(v >> 24);
			acc[x] += (uint32_t)hi[x] - (uint32_t)sub[x];
		}
	}
#undef ROW
}

// transpose3 writes the w×h RGB plane src (row stride sstride bytes) as its
// h×w transpose into dst (row stride dstride bytes), in 16×16 blocks.
void sslight_transpose3(uint8_t *dst, ptrdiff_t dstride, const uint8_t *src, ptrdiff_t sstride, int w, int h) {
	enum { B = 16 };
	for (int y0 = 0; y0 < h; y0 += B) {
		int y1 = y0 + B < h ? y0 + B : h;
		for (int x0 = 0; x0 < w; x0 += B) {
			int x1 = x0 + B < w ? x0 + B : w;
			for (int y = y0; y < y1; y++) {
				const uint8_t *s = src + (ptrdiff_t)y * sstride;
				for (int x = x0; x < x1; x++) {
					uint8_t *d = dst + (ptrdiff_t)x * dstride + 3 * (ptrdiff_t)y;
					d[0] = s[3 * x];
					d[1] = s[3 * x + 1];
					d[2] = s[3 * x + 2];
				}
			}
		}
	}
}

// ---- Hue: PIL's rgb2hsv, H += shift, hsv2rgb, 8 pixels per step ----------
//
// Mirrors rgbToHSV / hsvToRGB in adjust.go operation for operation. The
// float32 quantities (cr, s, rc, gc, bc, h, f, fs) are float lanes; the
// expressions PIL evaluates in double are double lanes. Three facts keep the
// vector code exact: a float difference like bc − gc equals the double
// difference rounded once to float (so every hue case is computed exactly in
// double and rounded once); fmod(x, 1) on [5/6, 11/6) is x − 1 above 1; and
// round half away from zero of x ≥ 0 is floor(x) + (x − floor(x) ≥ 0.5).

__attribute__((target("avx2")))
static inline __m256d round_half_away_pos(__m256d x) {
	__m256d fl = _mm256_floor_pd(x);
	__m256d up = _mm256_and_pd(_mm256_cmp_pd(_mm256_sub_pd(x, fl), _mm256_set1_pd(0.5), _CMP_GE_OQ), _mm256_set1_pd(1.0));
	return _mm256_add_pd(fl, up);
}

// hsv_to_rgb4 converts 4 lanes of PIL HSV to RGB given, per lane, the
// sector i = floor(h·6/255), f and fs (from the tables) and s, v.
__attribute__((target("avx2")))
static inline void hsv_to_rgb4(__m128i i, __m128 f, __m128 fs, __m128i s, __m128i v, __m128i *ro, __m128i *go, __m128i *bo) {
	const __m256d one = _mm256_set1_pd(1.0);
	__m256d vd = _mm256_cvtepi32_pd(v);
	__m256d fsd = _mm256_cvtps_pd(fs);
	__m256d p = round_half_away_pos(_mm256_mul_pd(vd, _mm256_sub_pd(one, fsd)));
	__m256d q = round_half_away_pos(_mm256_mul_pd(vd, _mm256_sub_pd(one, _mm256_cvtps_pd(_mm_mul_ps(fs, f)))));
	__m256d t = round_half_away_pos(_mm256_mul_pd(vd, _mm256_sub_pd(one, _mm256_mul_pd(fsd, _mm256_sub_pd(one, _mm256_cvtps_pd(f))))));
	const __m128i zero = _mm_setzero_si128(), c255 = _mm_set1_epi32(255);
	__m128i pi = _mm_min_epi32(_mm_max_epi32(_mm256_cvttpd_epi32(p), zero), c255);
	__m128i qi = _mm_min_epi32(_mm_max_epi32(_mm256_cvttpd_epi32(q), zero), c255);
	__m128i ti = _mm_min_epi32(_mm_max_epi32(_mm256_cvttpd_epi32(t), zero), c255);
	// i is 0..6; case 6 is case 0 (i % 6).
	i = _mm_andnot_si128(_mm_cmpeq_epi32(i, _mm_set1_epi32(6)), i);
	__m128i m1 = _mm_cmpeq_epi32(i, _mm_set1_epi32(1));
	__m128i m2 = _mm_cmpeq_epi32(i, _mm_set1_epi32(2));
	__m128i m3 = _mm_cmpeq_epi32(i, _mm_set1_epi32(3));
	__m128i m4 = _mm_cmpeq_epi32(i, _mm_set1_epi32(4));
	__m128i m5 = _mm_cmpeq_epi32(i, _mm_set1_epi32(5));
	// case:      0  1  2  3  4  5
	// R:         v  q  p  p  t  v
	// G:         t  v  v  q  p  p
	// B:         p  p  t  v  v  q
	__m128i r = v;
	r = _mm_blendv_epi8(r, qi, m1);
	r = _mm_blendv_epi8(r, pi, _mm_or_si128(m2, m3));
	r = _mm_blendv_epi8(r, ti, m4);
	__m128i g = ti;
	g = _mm_blendv_epi8(g, v, _mm_or_si128(m1, m2));
	g = _mm_blendv_epi8(g, qi, m3);
	g = _mm_blendv_epi8(g, pi, _mm_or_si128(m4, m5));
	__m128i b = pi;
	b = _mm_blendv_epi8(b, ti, m2);
	b = _mm_blendv_epi8(b, v, _mm_or_si128(m3, m4));
	b = _mm_blendv_epi8(b, qi, m5);
	__m128i grey = _mm_cmpeq_epi32(s, zero);
	*ro = _mm_blendv_epi8(r, v, grey);
	*go = _mm_blendv_epi8(g, v, grey);
	*bo = _mm_blendv_epi8(b, v, grey);
}

// hue_half computes PIL's 8-bit hue for 4 lanes from q (the float division
// of the middle channel, see hue8) and the per-lane constants a, sgn of
// h = a + sgn·q, which is exact in double.
__attribute__((target("avx2")))
static inline __m128i hue_half(__m128 q, __m128 a, __m128 sgn) {
	__m256d hd = _mm256_add_pd(_mm256_cvtps_pd(a), _mm256_mul_pd(_mm256_cvtps_pd(sgn), _mm256_cvtps_pd(q)));
	// h is a float in PIL: round once.
	__m256d x = _mm256_cvtps_pd(_mm256_cvtpd_ps(hd));
	x = _mm256_add_pd(_mm256_div_pd(x, _mm256_set1_pd(6.0)), _mm256_set1_pd(1.0));
	x = _mm256_sub_pd(x, _mm256_and_pd(_mm256_cmp_pd(x, _mm256_set1_pd(1.0), _CMP_GE_OQ), _mm256_set1_pd(1.0)));
	x = _mm256_cvtps_pd(_mm256_cvtpd_ps(x));
	return _mm256_cvttpd_epi32(_mm256_mul_pd(x, _mm256_set1_pd(255.0)));
}

__attribute__((target("avx2")))
static inline __m128i sat_half(__m128 s) {
	return _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_cvtps_pd(s), _mm256_set1_pd(255.0)));
}

// ---- Fused per-pixel colour operations ------------------------------------

// pixel_op mirrors the Go pixelOp struct (same field order and sizes).
typedef struct {
	int32_t kind;  // OP_* below
	int32_t arg;   // contrast: grey level; hue: shift; solarize: threshold
	float alpha;   // blend factor (brightness, contrast, saturation)
	int32_t pad;
} pixel_op;

// pixel_ops is a short operation list passed by value, so the Go caller
// hands C no pointer to its (otherwise stack-allocated) list.
#define MAX_PIXEL_OPS 8
typedef struct {
	pixel_op op[MAX_PIXEL_OPS];
	int32_t n;
} pixel_ops;

enum { OP_BRIGHTNESS = 0, OP_CONTRAST = 1, OP_SATURATION = 2, OP_HUE = 3, OP_GRAY = 4, OP_SOLARIZE = 5 };

// blend8 is blendValue on 8 lanes: deg + alpha·(v − deg) in float32, clamped
// to [0, 255] (before truncation, so huge factors saturate like PIL's
// extrapolation branch), truncated.
__attribute__((target("avx2")))
static inline __m256i blend8(__m256i deg, __m256i v, __m256 alpha) {
	__m256 t = _mm256_add_ps(_mm256_cvtepi32_ps(deg), _mm256_mul_ps(alpha, _mm256_cvtepi32_ps(_mm256_sub_epi32(v, deg))));
	t = _mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), _mm256_set1_ps(255.0f));
	return _mm256_cvttps_epi32(t);
}

// luma8 is PIL's L conversion on 8 lanes.
__attribute__((target("avx2")))
static inline __m256i luma8(__m256i r, __m256i g, __m256i b) {
	__m256i l = _mm256_add_epi32(_mm256_mullo_epi32(r, _mm256_set1_epi32(19595)), _mm256_mullo_epi32(g, _mm256_set1_epi32(38470)));
	l = _mm256_add_epi32(l, _mm256_mullo_epi32(b, _mm256_set1_epi32(7471)));
	return _mm256_srli_epi32(_mm256_add_epi32(l, _mm256_set1_epi32(0x8000)), 16);
}

// hue8 is rgbToHSV, H += shift, hsvToRGB on 8 lanes.
//
// In PIL's rgb2hsv one of rc, gc, bc is 0 (the maximum's) and one is exactly
// 1 (the minimum's: cr/cr), so the hue needs one float division, of the
// middle channel, q = (max − mid)/cr, and h = a + sgn·q with
//   r max: g min → q − 1, else 1 − q;   g max: r min → 3 − q, else 1 + q;
//   b max: r min → 3 + q, else 5 − q,
// each exactly PIL's float/double expression (2.0 + rc − bc etc. with the
// 1 substituted is exact in double). Ties follow PIL's order of tests.
__attribute__((target("avx2")))
static inline void hue8(__m256i *pr, __m256i *pg, __m256i *pb, int shift) {
	const __m256i zero = _mm256_setzero_si256(), c255 = _mm256_set1_epi32(255);
	__m256i r = *pr, g = *pg, b = *pb;
	__m256i mx = _mm256_max_epi32(r, _mm256_max_epi32(g, b));
	__m256i mn = _mm256_min_epi32(r, _mm256_min_epi32(g, b));
	__m256i mid = _mm256_sub_epi32(_mm256_sub_epi32(_mm256_add_epi32(r, _mm256_add_epi32(g, b)), mx), mn);
	__m256i flat = _mm256_cmpeq_epi32(mx, mn);
	__m256 cr = _mm256_cvtepi32_ps(_mm256_sub_epi32(mx, mn));
	// Flat pixels divide 0/0 here; their lanes are replaced below.
	__m256 sf = _mm256_div_ps(cr, _mm256_cvtepi32_ps(mx));
	__m256 q = _mm256_div_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(mx, mid)), cr);
	__m256i rmax = _mm256_cmpeq_epi32(r, mx);
	__m256i gmax = _mm256_andnot_si256(rmax, _mm256_cmpeq_epi32(g, mx));
	__m256i bmax = _mm256_andnot_si256(_mm256_or_si256(rmax, gmax), _mm256_set1_epi32(-1));
	__m256i gmin = _mm256_cmpeq_epi32(g, mn), rmin = _mm256_cmpeq_epi32(r, mn);
	// a and sgn per case.
	__m256 a = _mm256_set1_ps(1.0f), sgn = _mm256_set1_ps(-1.0f); // r max, b min
	__m256 one = _mm256_set1_ps(1.0f), mone = _mm256_set1_ps(-1.0f);
	__m256 c;
	c = _mm256_castsi256_ps(_mm256_and_si256(rmax, gmin));
	a = _mm256_blendv_ps(a, mone, c); sgn = _mm256_blendv_ps(sgn, one, c);
	c = _mm256_castsi256_ps(_mm256_and_si256(gmax, rmin));
	a = _mm256_blendv_ps(a, _mm256_set1_ps(3.0f), c); sgn = _mm256_blendv_ps(sgn, mone, c);
	c = _mm256_castsi256_ps(_mm256_andnot_si256(rmin, gmax));
	a = _mm256_blendv_ps(a, one, c); sgn = _mm256_blendv_ps(sgn, one, c);
	c = _mm256_castsi256_ps(_mm256_and_si256(bmax, rmin));
	a = _mm256_blendv_ps(a, _mm256_set1_ps(3.0f), c); sgn = _mm256_blendv_ps(sgn, one, c);
	c = _mm256_castsi256_ps(_mm256_andnot_si256(rmin, bmax));
	a = _mm256_blendv_ps(a, _mm256_set1_ps(5.0f), c); sgn = _mm256_blendv_ps(sgn, mone, c);
	__m128i h0 = hue_half(_mm256_castps256_ps128(q), _mm256_castps256_ps128(a), _mm256_castps256_ps128(sgn));
	__m128i h1 = hue_half(_mm256_extractf128_ps(q, 1), _mm256_extractf128_ps(a, 1), _mm256_extractf128_ps(sgn, 1));
	__m256i hh = _mm256_set_m128i(h1, h0);
	__m256i ss = _mm256_set_m128i(sat_half(_mm256_extractf128_ps(sf, 1)), sat_half(_mm256_castps256_ps128(sf)));
	hh = _mm256_min_epi32(_mm256_max_epi32(hh, zero), c255);
	ss = _mm256_min_epi32(_mm256_max_epi32(ss, zero), c255);
	hh = _mm256_andnot_si256(flat, hh);
	ss = _mm256_andnot_si256(flat, ss);
	hh = _mm256_and_si256(_mm256_add_epi32(hh, _mm256_set1_epi32(shift)), c255);
	// hsv2rgb: sector i = floor(h·6/255) = ((6h + 1)·257) >> 16 for h in
	// 0..255 (checked exhaustively in the tests), f and fs from the tables.
	__m256i sect = _mm256_srli_epi32(_mm256_mullo_epi32(_mm256_add_epi32(_mm256_mullo_epi32(hh, _mm256_set1_epi32(6)), _mm256_set1_epi32(1)), _mm256_set1_epi32(257)), 16);
	__m256 f = _mm256_i32gather_ps(hue_f, hh, 4);
	__m256 fs = _mm256_i32gather_ps(sat_fs, ss, 4);
	__m128i r0, g0, b0, r1, g1, b1;
	hsv_to_rgb4(_mm256_castsi256_si128(sect), _mm256_castps256_ps128(f), _mm256_castps256_ps128(fs),
		_mm256_castsi256_si128(ss), _mm256_castsi256_si128(mx), &r0, &g0, &b0);
	hsv_to_rgb4(_mm256_extracti128_si256(sect, 1), _mm256_extractf128_ps(f, 1), _mm256_extractf128_ps(fs, 1),
		_mm256_extracti128_si256(ss, 1), _mm256_extracti128_si256(mx, 1), &r1, &g1, &b1);
	*pr = _mm256_set_m128i(r1, r0);
	*pg = _mm256_set_m128i(g1, g0);
	*pb = _mm256_set_m128i(b1, b0);
}

// sslight_pixel_ops_avx2 applies the operations of list, in order, to the
// first w8 (a multiple of 8) pixels of each of h rows, writing dst (which may
// be src) unless dst is NULL. With want_luma it returns the sum of PIL's L
// over the results (else 0). The caller handles the rest of each row.
__attribute__((target("avx2")))
uint64_t sslight_pixel_ops_avx2(uint8_t *dst, ptrdiff_t dstride, const uint8_t *src, ptrdiff_t sstride,
		int w8, int h, pixel_ops list, int want_luma) {
	const pixel_op *ops = list.op;
	const int nops = list.n < MAX_PIXEL_OPS ? list.n : MAX_PIXEL_OPS;
	// Byte shuffles that split 8 interleaved RGB pixels (24 bytes: 16 in lo,
	// 8 in hi) into 8 R, 8 G and 8 B bytes, and merge them back.
	const __m128i rlo = _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
	const __m128i rhi = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, -1, -1, -1, -1, -1, -1, -1, -1);
	const __m128i glo = _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
	const __m128i ghi = _mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, -1, -1, -1, -1, -1, -1, -1, -1);
	const __m128i blo = _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
	const __m128i bhi = _mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, -1, -1, -1, -1, -1, -1, -1, -1);
	// Merge: x = [R0..R7 G0..G7], y = [B0..B7]; output bytes 0..15 and 16..23.
	const __m128i o0x = _mm_setr_epi8(0, 8, -1, 1, 9, -1, 2, 10, -1, 3, 11, -1, 4, 12, -1, 5);
	const __m128i o0y = _mm_setr_epi8(-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1);
	const __m128i o1x = _mm_setr_epi8(13, -1, 6, 14, -1, 7, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1);
	const __m128i o1y = _mm_setr_epi8(-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, -1, -1, -1, -1, -1, -1);
	const __m256i zero = _mm256_setzero_si256();
	uint64_t total = 0;
	for (int y = 0; y < h; y++) {
		const uint8_t *s = src + (ptrdiff_t)y * sstride;
		uint8_t *d = dst ? dst + (ptrdiff_t)y * dstride : NULL;
		__m256i lsum = zero;
		for (int x = 0; x < w8; x += 8) {
			__m128i lo = _mm_loadu_si128((const __m128i *)(s + 3 * x));
			__m128i hi = _mm_loadl_epi64((const __m128i *)(s + 3 * x + 16));
			__m256i r = _mm256_cvtepu8_epi32(_mm_or_si128(_mm_shuffle_epi8(lo, rlo), _mm_shuffle_epi8(hi, rhi)));
			__m256i g = _mm256_cvtepu8_epi32(_mm_or_si128(_mm_shuffle_epi8(lo, glo), _mm_shuffle_epi8(hi, ghi)));
			__m256i b = _mm256_cvtepu8_epi32(_mm_or_si128(_mm_shuffle_epi8(lo, blo), _mm_shuffle_epi8(hi, bhi)));
			for (int k = 0; k < nops; k++) {
				const pixel_op *op = &ops[k];
				switch (op->kind) {
				case OP_BRIGHTNESS: {
					__m256 a = _mm256_set1_ps(op->alpha);
					r = blend8(zero, r, a);
					g = blend8(zero, g, a);
					b = blend8(zero, b, a);
					break;
				}
				case OP_CONTRAST: {
					__m256 a = _mm256_set1_ps(op->alpha);
					__m256i m = _mm256_set1_epi32(op->arg);
					r = blend8(m, r, a);
					g = blend8(m, g, a);
					b = blend8(m, b, a);
					break;
				}
				case OP_SATURATION: {
					__m256 a = _mm256_set1_ps(op->alpha);
					__m256i l = luma8(r, g, b);
					r = blend8(l, r, a);
					g = blend8(l, g, a);
					b = blend8(l, b, a);
					break;
				}
				case OP_HUE:
					hue8(&r, &g, &b, op->arg);
					break;
				case OP_GRAY: {
					__m256i l = luma8(r, g, b);
					r = l;
					g = l;
					b = l;
					break;
				}
				case OP_SOLARIZE: {
					__m256i th = _mm256_set1_epi32(op->arg);
					__m256i c255 = _mm256_set1_epi32(255);
					r = _mm256_blendv_epi8(_mm256_sub_epi32(c255, r), r, _mm256_cmpgt_epi32(th, r));
					g = _mm256_blendv_epi8(_mm256_sub_epi32(c255, g), g, _mm256_cmpgt_epi32(th, g));
					b = _mm256_blendv_epi8(_mm256_sub_epi32(c255, b), b, _mm256_cmpgt_epi32(th, b));
					break;
				}
				}
			}
			if (want_luma) lsum = _mm256_add_epi32(lsum, luma8(r, g, b));
			if (d) {
				__m128i r8 = _mm_packus_epi16(_mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)), _mm_setzero_si128());
				__m128i g8 = _mm_packus_epi16(_mm_packus_epi32(_mm256_castsi256_si128(g), _mm256_extracti128_si256(g, 1)), _mm_setzero_si128());
				__m128i b8 = _mm_packus_epi16(_mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)), _mm_setzero_si128());
				__m128i xv = _mm_unpacklo_epi64(r8, g8);
				__m128i o0 = _mm_or_si128(_mm_shuffle_epi8(xv, o0x), _mm_shuffle_epi8(b8, o0y));
				__m128i o1 = _mm_or_si128(_mm_shuffle_epi8(xv, o1x), _mm_shuffle_epi8(b8, o1y));
				_mm_storeu_si128((__m128i *)(d + 3 * x), o0);
				_mm_storel_epi64((__m128i *)(d + 3 * x + 16), o1);
			}
		}
		if (want_luma) {
			uint32_t lanes[8];
			_mm256_storeu_si256((__m256i *)lanes, lsum);
			for (int k = 0; k < 8; k++) total += lanes[k];
		}
	}
	return total;
}
