// Declarations shared by the cgo wrappers (kernels_cgo_amd64.go) and the
// AVX2/FMA kernels (kernels_amd64.c).

#include <stddef.h>
#include <stdint.h>

// Activation codes of the element-wise and BatchNorm kernels.
enum { NN_ACT_NONE = 0, NN_ACT_RELU = 1, NN_ACT_RELU6 = 2 };

// nn_conv is a convolution's per-group geometry, as convGeom holds it.
typedef struct {
	int32_t cg, h, w;   // input channels per group, input height and width
	int32_t kh, kw;     // kernel size
	int32_t oh, ow;     // output size
	int32_t sh, sw;     // stride
	int32_t ph, pw;     // padding
	int32_t dh, dw;     // dilation
} nn_conv;

int nn_has_avx2_fma(void);
void nn_im2col(nn_conv gv, const float *x, ptrdiff_t img_stride, int cnt, float *col);
void nn_col2im(nn_conv gv, float *dx, ptrdiff_t img_stride, int cnt, float *col);
void nn_copy_blocks(float *dst, ptrdiff_t dst_outer, ptrdiff_t dst_inner,
	const float *src, ptrdiff_t src_outer, ptrdiff_t src_inner, int outer, int inner, ptrdiff_t len);
// nn_sums are one channel's BatchNorm sums (float64 accumulators).
typedef struct { double sx, sxx, sdy, sdyx; } nn_sums;
nn_sums nn_bn_sums(const float *x, const float *dy, const float *y, int act,
	ptrdiff_t n, ptrdiff_t stride, ptrdiff_t sp);
void nn_bn_apply(float *out, const float *x, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t sp,
	float scale, float shift, int act);
// nn_bn_coef is what one channel's BatchNorm input gradient needs:
// gamma/std, the mean, 1/std, mean(dy) and mean(dy·xhat).
typedef struct { double g, mean, inv, mdy, mdyx; } nn_bn_coef;
void nn_bn_dx(float *dx, const float *x, const float *dy, const float *y, int act,
	ptrdiff_t n, ptrdiff_t stride, ptrdiff_t sp, int train, nn_bn_coef k);
void nn_act_forward(int act, float *out, const float *x, ptrdiff_t n);
void nn_act_backward(int act, float *dx, const float *dy, const float *x, ptrdiff_t n);
void nn_add(float *out, const float *a, const float *b, ptrdiff_t n);
// nn_pool is a max pool's geometry: square kernel k, stride s, padding p.
typedef struct {
	int32_t h, w, oh, ow, k, s, p;
} nn_pool;
// avx2 selects the 8-wide path (the CPU must have AVX2).
void nn_maxpool_forward(nn_pool g, const float *x, float *out, ptrdiff_t planes, int avx2);
void nn_maxpool_backward(nn_pool g, const float *x, const float *dy, float *dx, ptrdiff_t planes, int avx2);
// Winograd F(2x2, 3x3) transforms of a 3x3 stride-1 pad-1 convolution
// (output size = input size h x w, tiles of 2x2 outputs, th = (h+1)/2 by
// tw = (w+1)/2 per image, tile t = image·th·tw + ty·tw + tx of T in all).
// nn_wino_input writes V [16][c][T] from cnt images of c planes (image i
// at x + i·img_stride); nn_wino_output writes the 2x2 outputs of
// M [16][o][T] into cnt images of o planes (image i at out + i·out_stride).
void nn_wino_input(const float *x, ptrdiff_t img_stride, int cnt, int c, int h, int w, float *v, int avx2);
void nn_wino_output(const float *m, int cnt, int o, int h, int w, float *out, ptrdiff_t out_stride, int avx2);
// nn_wino_grad_output writes dM [16][o][T] = A·dY·Aᵀ for the 2x2 output
// gradients of every tile of cnt images of o planes (outputs outside the
// plane count as zero), for the filter gradient in the transformed domain.
void nn_wino_grad_output(const float *dy, ptrdiff_t img_stride, int cnt, int o, int h, int w, float *dm, int avx2);
