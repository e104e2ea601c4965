// Int8 kernels: types and the int8 section of the kernel table.
// Included by kernels/kernels.h; read that file's shape legend first.
//
// Conventions (what PyTorch's default qconfigs and XNNPACK/fbgemm users expect):
// - Activations are u8 with a zero point (s8 activations are accepted by the
//   GEMM too). Weights are s8, symmetric (zero point 0), with one scale per
//   output channel or one per tensor; the scales only enter through the
//   epilogue's multiplier.
// - The accumulator is int32, wrapping modulo 2^32 (every SIMD add wraps; the
//   reference wraps the same way). For K ≤ 65792 no u8×s8 sum can wrap at all.
//     acc[m][n] = Σ_k (a[m][k] − a_zp) · w[n][k] + bias[n]
//   Fast paths compute Σ a·w − a_zp·Σ_k w (row sums made at pack time); modulo
//   2^32 both are the same number, so every path is bit-exact with ref.
// - The epilogue turns acc into the output with kernels/quant_math.h, the one
//   definition of quantized arithmetic (rounding, clamping, order of fp32 ops).
// - Activations are NHWC (N×H×W×C, C contiguous); conv weights are K×R×S×(C/G)
//   ("OHWI", each output channel's filter contiguous, as XNNPACK/TFLite).
//
// Packed weights are made once by the pack entry of the table that will run
// them; the layout belongs to that path, and handing them to another path's
// kernel is an error (std::invalid_argument), never a silent misread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace lowbit::kernels {

enum class Isa;  // kernels.h

// Output of a quantized GEMM/conv.
enum class QOut : int32_t {
  u8,   // requantized: clamp(round(acc · multiplier) + out_zp, qmin, qmax)
  s8,   // same, signed
  f32,  // dequantized: acc · multiplier (multiplier = s_in·s_w; last layer, dynamic quantization)
};

// The fused epilogue of GEMM and convolution (see quant_math.h for the math).
// ReLU is qmin = out_zp; ReLU6 is qmax = out_zp + round(6 / s_out); no clamp
// is qmin/qmax = the type's range. qmin/qmax must lie inside the output type's
// range and qmin ≤ qmax (checked, std::invalid_argument). Ignored for f32.
struct QuantEpilogue {
  const float* multiplier = nullptr;  // N values if per_channel, else 1: s_in·s_w/s_out (u8/s8) or s_in·s_w (f32)
  bool per_channel = false;
  const int32_t* bias = nullptr;      // N values (already in acc units: round(b / (s_in·s_w))), or null
  int32_t out_zp = 0, qmin = 0, qmax = 255;
  QOut out = QOut::u8;
};

// 64-byte aligned owned bytes.
struct AlignedBytes {
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t[], Free> ptr;
  size_t size = 0;
  void allocate(size_t bytes);  // zero-filled
  uint8_t* data() { return ptr.get(); }
  const uint8_t* data() const { return ptr.get(); }
};

// Weights packed for one path's GEMM (or depthwise) kernels. `groups` blocks,
// each an n×k matrix (rows = output channels); group g's bytes start at
// g·group_bytes. row_sums[g·n + j] = Σ_k w (int32), for the zero-point term.
struct PackedQGemmWeights {
  Isa isa{};                   // path that packed it
  const char* layout = "";     // that path's layout name (for errors and `lowbit info`)
  int64_t n = 0, k = 0, groups = 0;
  size_t group_bytes = 0;
  AlignedBytes data;
  std::vector<int32_t> row_sums;
};

// ---- convolution -------------------------------------------------------------
// Input x N×H×W×C u8, weights K×R×S×(C/G) s8, output y N×P×Q×K (u8/s8/f32 per
// the epilogue), all contiguous. Padding reads as the input zero point, which
// is exactly zero in real terms (as PyTorch pads the float tensor with 0).
struct QConv2dShape {
  int64_t n, h, w, c;  // input
  int64_t k, r, s;     // output channels, filter
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
  int64_t p() const { return (h + 2 * pad_h - dil_h * (r - 1) - 1) / stride_h + 1; }
  int64_t q() const { return (w + 2 * pad_w - dil_w * (s - 1) - 1) / stride_w + 1; }
  // Depthwise: one filter per input channel (groups = C = K).
  bool depthwise() const { return groups == c && k == c && groups > 1; }
};

// Conv weights packed by one path: a GEMM per group (W_g: K/G × R·S·C/G, the
// reduction in (r, s, c) order, as an im2col row), or for depthwise convs the
// path's depthwise layout. Packing depends only on the filter (c, k, r, s, G);
// the conv checks those against its shape.
struct PackedQConvWeights {
  int64_t c = 0, k = 0, r = 0, s = 0, groups = 0;
  bool depthwise = false;
  // Path-specific: when > 0, the reduction is stored per filter row, the S·C
  // values of each row padded with zero weights to row_segment (a whole number
  // of the path's K groups), so a row can be read straight from the input.
  int64_t row_segment = 0;
  PackedQGemmWeights w;
};

// Max / average pooling on NHWC u8 (p, q given by the caller, who handles
// ceil_mode). Max pooling ignores padding; average pooling divides by the
// window clipped to the input, or by R·S when count_include_pad (padding then
// counts as the zero point, i.e. real zero).
struct QPool2dShape {
  int64_t n, h, w, c;
  int64_t r, s;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t p, q;
  bool count_include_pad = true;
};

// ---- the int8 part of the kernel table --------------------------------------
// Shapes: GEMM C[M×N] = A[M×K] · Wᵀ with W N×K (PyTorch's Linear weight),
// row strides lda/ldc in elements. Quantization parameters for the helpers
// are per channel along a middle axis: x holds outer × channels × inner
// elements and element (o, c, i) uses scale[c], zero_point[c]; per tensor is
// channels = 1. NHWC activations: outer = N·H·W, inner = 1; OHWI weights:
// outer = 1, channels = K, inner = R·S·C/G; NCHW: outer = N, inner = H·W.
struct Int8Kernels {
  // Packs W[N×K] (s8, row-major) for this path's GEMM.
  void (*qgemm_pack)(PackedQGemmWeights& out, const int8_t* w, int64_t n, int64_t k);
  // C = epilogue(Σ_k (A − a_zp)·Wᵀ + bias). A u8 (a_zp in [0, 255]) or s8 (a_zp in [−128, 127]);
  // c is uint8_t*, int8_t* or float* per ep.out.
  void (*qu8_qs8_gemm)(void* c, int64_t ldc, const uint8_t* a, int64_t lda, int32_t a_zp,
                       const PackedQGemmWeights& w, const QuantEpilogue& ep, int64_t m);
  void (*qs8_qs8_gemm)(void* c, int64_t ldc, const int8_t* a, int64_t lda, int32_t a_zp,
                       const PackedQGemmWeights& w, const QuantEpilogue& ep, int64_t m);
  // Convolution: pack once per layer, then run on any N, H, W, stride, padding, dilation.
  void (*qconv2d_pack)(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh);
  void (*qu8_qs8_conv2d)(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w,
                         const QuantEpilogue& ep, const QConv2dShape& sh);

  // y = quantize(x): clamp(round_half_even(x · (1/scale)) + zp, type range).
  void (*quantize_f32_u8)(uint8_t* y, const float* x, const float* scale, const int32_t* zero_point,
                          int64_t outer, int64_t channels, int64_t inner);
  void (*quantize_f32_s8)(int8_t* y, const float* x, const float* scale, const int32_t* zero_point,
                          int64_t outer, int64_t channels, int64_t inner);
  // y = (q − zp) · scale.
  void (*dequantize_u8_f32)(float* y, const uint8_t* x, const float* scale, const int32_t* zero_point,
                            int64_t outer, int64_t channels, int64_t inner);
  void (*dequantize_s8_f32)(float* y, const int8_t* x, const float* scale, const int32_t* zero_point,
                            int64_t outer, int64_t channels, int64_t inner);
  // y = quantize(dequantize(x)) with new parameters (per tensor), as PyTorch's requantize.
  void (*requantize_u8)(uint8_t* y, const uint8_t* x, float in_scale, int32_t in_zp, float out_scale,
                        int32_t out_zp, int64_t n);
  // y = quantize(dequantize(a) + dequantize(b)), clamped to [qmin, qmax] (ReLU fold: qmin = y_zp).
  void (*qu8_add)(uint8_t* y, const uint8_t* a, float a_scale, int32_t a_zp, const uint8_t* b, float b_scale,
                  int32_t b_zp, float y_scale, int32_t y_zp, int32_t qmin, int32_t qmax, int64_t n);
  // NHWC pooling. Max keeps the quantization parameters; average requantizes
  // from (x_scale, x_zp) to (y_scale, y_zp) (equal parameters are common).
  void (*qu8_max_pool2d)(uint8_t* y, const uint8_t* x, const QPool2dShape& sh);
  void (*qu8_avg_pool2d)(uint8_t* y, const uint8_t* x, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
                         const QPool2dShape& sh);
  // y[n][c] = average over H·W of x[n][·][·][c] (NHWC), requantized likewise.
  void (*qu8_global_avg_pool)(uint8_t* y, const uint8_t* x, float x_scale, int32_t x_zp, float y_scale,
                              int32_t y_zp, int64_t n, int64_t hw, int64_t c);
  // Fake quantization (quant/'s simulation, same arithmetic):
  //   y = (clamp(round_half_even(x · (1/scale)) + zp, qmin, qmax) − zp) · scale, per channel as above;
  // mask (may be null) = 1 where the unclamped round(x/scale) + zp lies in [qmin, qmax]
  // (the straight-through gradient passes there).
  void (*fake_quantize_f32)(float* y, uint8_t* mask, const float* x, const float* scale, const int32_t* zero_point,
                            int32_t qmin, int32_t qmax, int64_t outer, int64_t channels, int64_t inner);
  // LSQ/LSQ+ backward over one run with one step s (inv = 1/s), offset β, zero point zp
  // (quant/fake_quant_ops.h): v = (x − β)·inv, inside ⇔ qmin ≤ v + zp ≤ qmax;
  // dx = inside ? g : 0; *dscale = Σ g·(inside ? round(v) − v : (below ? qmin : qmax) − zp);
  // *doffset = Σ (inside ? 0 : g). dx is exact on every path; the sums are float
  // gradients (ref adds in double, vector paths in fp32 lanes per block, blocks in double).
  void (*lsq_backward_f32)(float* dx, double* dscale, double* doffset, const float* g, const float* x, float inv,
                           float offset, int32_t zp, int32_t qmin, int32_t qmax, int64_t n);
  // min and max of n > 0 floats; false if any is NaN or ±Inf (mn, mx then unspecified).
  bool (*f32_minmax)(float* mn, float* mx, const float* x, int64_t n);
  // Layout changes: x N×C×HW → y N×HW×C and back.
  void (*u8_nchw_to_nhwc)(uint8_t* y, const uint8_t* x, int64_t n, int64_t c, int64_t hw);
  void (*u8_nhwc_to_nchw)(uint8_t* y, const uint8_t* x, int64_t n, int64_t c, int64_t hw);
  void (*f32_nchw_to_nhwc)(float* y, const float* x, int64_t n, int64_t c, int64_t hw);
  void (*f32_nhwc_to_nchw)(float* y, const float* x, int64_t n, int64_t c, int64_t hw);

  // Names of the chosen implementations, for `lowbit info`.
  const char* gemm_path;
  const char* conv_path;
  const char* depthwise_path;
  const char* elementwise_path;
};

}  // namespace lowbit::kernels
