// Scalar reference kernels: the definition of correct for every fast path.
// Plain loops, no intrinsics, no cleverness. See kernels/kernels.h for the
// shape legend (N, C, H, W, K, R, S, P, Q; GEMM M×N×K).
#pragma once
#include "kernels/kernels.h"

namespace lowbit::kernels::ref {

// ---- kernel-table entries (same contracts as FloatKernels in kernels.h) ----
void f32_unary(float* y, const float* x, Unary op, int64_t n);
void f32_binary(float* y, const float* a, int64_t sa, const float* b, int64_t sb, Binary op, int64_t n);
void f32_axpby(float* y, const float* a, float alpha, const float* b, float beta, int64_t n);
double f32_sum(const float* x, int64_t n);
float f32_max(const float* x, int64_t n);
void f32_channel_moments(float* mean, float* var, const float* x, int64_t n, int64_t c, int64_t hw);
void f32_bn_backward(float* dx, float* sum_g, float* sum_gxhat, const float* x, const float* g, const float* y,
                     Act act, const float* mean, const float* invstd, const float* weight, bool training, int64_t n, int64_t c, int64_t hw);
void f32_channel_affine(float* y, const float* x, const float* scale, const float* shift, Act act,
                        int64_t n, int64_t c, int64_t hw);
void f32_gemm(float* c, int64_t ldc, const float* a, int64_t lda, const float* b, int64_t ldb,
              bool trans_a, bool trans_b, float beta, int64_t m, int64_t n, int64_t k);
// Convolution as im2col + f32_gemm of the given table path (gemm may be ref::f32_gemm).
using GemmFn = decltype(&f32_gemm);
void f32_conv2d_forward_im2col(float* y, const float* x, const float* w, const float* bias,
                               const Conv2dShape& sh, GemmFn gemm);
void f32_conv2d_backward_input_im2col(float* dx, const float* dy, const float* w, const Conv2dShape& sh,
                                      GemmFn gemm);
void f32_conv2d_backward_weight_im2col(float* dw, float* db, const float* dy, const float* x,
                                       const Conv2dShape& sh, GemmFn gemm);
void f32_conv2d_forward(float* y, const float* x, const float* w, const float* bias, const Conv2dShape& sh);
void f32_conv2d_backward_input(float* dx, const float* dy, const float* w, const Conv2dShape& sh);
void f32_conv2d_backward_weight(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& sh);

// Peak probes (PeakProbes in kernels.h): plain C++ chains, whatever the compiler makes of them.
int64_t peak_f32_fma(float* sink, int64_t iters);
int64_t peak_s8_dot(int32_t* sink, int64_t iters);

// ---- reference-only kernels (no fast path yet; core calls these directly) ----
// im2col for one image and one group: col[(c*R*S) × (P*Q)] from x[C×H×W] (C = channels of the group).
void f32_im2col(float* col, const float* x, int64_t c, int64_t h, int64_t w, const Conv2dShape& sh);
// col2im accumulates (+=) into x[C×H×W].
void f32_col2im(float* x, const float* col, int64_t c, int64_t h, int64_t w, const Conv2dShape& sh);

struct Pool2dShape {
  int64_t n, c, h, w;          // input (NCHW, contiguous); n*c planes
  int64_t r, s;                // window
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h = 1, dil_w = 1;
  int64_t p, q;                // output size (caller computes, ceil_mode handled there)
  bool count_include_pad = true;  // avg pool only
};
// argmax[i] = index of the max inside its H×W plane (first max wins, NaN propagates).
void f32_max_pool2d_forward(float* y, int32_t* argmax, const float* x, const Pool2dShape& sh);
// dx is overwritten (zeroed, then dy scattered to argmax positions).
void f32_max_pool2d_backward(float* dx, const float* dy, const int32_t* argmax, const Pool2dShape& sh);
void f32_avg_pool2d_forward(float* y, const float* x, const Pool2dShape& sh);
void f32_avg_pool2d_backward(float* dx, const float* dy, const Pool2dShape& sh);  // dx overwritten
// Adaptive average pooling to P×Q as PyTorch: bins [floor(i*H/P), ceil((i+1)*H/P)).
void f32_adaptive_avg_pool2d_forward(float* y, const float* x, int64_t nc, int64_t h, int64_t w,
                                     int64_t p, int64_t q);
void f32_adaptive_avg_pool2d_backward(float* dx, const float* dy, int64_t nc, int64_t h, int64_t w,
                                      int64_t p, int64_t q);  // dx overwritten

// Row-wise softmax / log-softmax over `cols` contiguous values, `rows` rows (max-subtracted).
void f32_softmax_rows(float* y, const float* x, int64_t rows, int64_t cols, bool log);

}  // namespace lowbit::kernels::ref
