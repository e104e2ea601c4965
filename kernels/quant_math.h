// The one definition of quantized arithmetic in lowbit. The reference
// kernels, every fast path's scalar tail, and fake quantization in quant/ call
// these functions; every vector path performs exactly these fp32 operations in
// this order, so all of them agree bit for bit (and with PyTorch, which uses
// the same formulas in quantize_per_tensor and fake_quantize_per_*_affine).
//
//   quantize     q = clamp(round_half_even(x · inv_scale) + zp, qmin, qmax),  inv_scale = 1.0f / scale
//   dequantize   x = (float)(q − zp) · scale
//   requantize   q = clamp(round_half_even((float)acc · multiplier) + zp, qmin, qmax)
//                multiplier = s_in · s_w / s_out   (for f32 output: (float)acc · s_in·s_w)
//
// Details that make it exact everywhere:
// - round_half_even is nearbyint under the default rounding mode: cvtps2dq on
//   x86, fcvtns on AArch64. Nobody here changes the rounding mode.
// - int32 → float is the exact-or-round-to-nearest-even conversion of C++
//   (cvtdq2ps, scvtf): exact for |acc| < 2^24.
// - Before converting float → int, the value is clamped to ±kRoundLimit, so
//   the conversion is defined (no UB, no 0x80000000 "integer indefinite")
//   while the final clamp to [qmin, qmax] gives the same result as the
//   unclamped math (|zp| ≤ 255 ≪ 2^23). The clamp is written as the x86
//   maxps/minps and AArch64 fmaxnm/fminnm semantics: a NaN becomes the lower
//   limit, so NaN inputs give qmin on every path.
// - No fused multiply-add: products are rounded to fp32 before any addition
//   (the build passes -ffp-contract=off: g++ contracts a*b + c into an
//   FMA by default in C++, even with -std=c++20; vector code uses
//   separate mul and add).
#pragma once
#include <cmath>
#include <cstdint>

namespace lowbit::kernels::qmath {

inline constexpr float kRoundLimit = 8388608.0f;  // 2^23: every float beyond is an integer anyway

// max(f, −limit) then min(·, limit), NaN → −limit (maxps(f, lo) returns lo when f is NaN).
inline float clamp_for_rounding(float f) {
  f = f > -kRoundLimit ? f : -kRoundLimit;
  f = f < kRoundLimit ? f : kRoundLimit;
  return f;
}

// round half to even of a clamped float, as int32.
inline int32_t round_half_even(float f) { return static_cast<int32_t>(std::nearbyint(clamp_for_rounding(f))); }

inline int32_t clamp_q(int32_t q, int32_t qmin, int32_t qmax) { return q < qmin ? qmin : (q > qmax ? qmax : q); }

// 1 / scale in fp32, as PyTorch computes it before quantizing.
inline float inverse_scale(float scale) { return 1.0f / scale; }

inline int32_t quantize(float x, float inv_scale, int32_t zp, int32_t qmin, int32_t qmax) {
  return clamp_q(round_half_even(x * inv_scale) + zp, qmin, qmax);
}

inline float dequantize(int32_t q, int32_t zp, float scale) { return static_cast<float>(q - zp) * scale; }

// The requantization multiplier of a GEMM/conv: (s_in · s_w) / s_out in fp32.
inline float requant_multiplier(float in_scale, float weight_scale, float out_scale) {
  return in_scale * weight_scale / out_scale;
}

inline int32_t requantize(int32_t acc, float multiplier, int32_t zp, int32_t qmin, int32_t qmax) {
  return clamp_q(round_half_even(static_cast<float>(acc) * multiplier) + zp, qmin, qmax);
}

inline float dequantize_acc(int32_t acc, float multiplier) { return static_cast<float>(acc) * multiplier; }

// A conv/linear bias in accumulator units (scale s_in · s_w, zero point 0):
//   round_half_even(b / (s_in · s_w)), the fp32 quotient clamped to ±2^30 (a
//   bias that large is a broken model, but stays defined). PyTorch quantizes the
//   bias the same way (quantize_per_channel(b, s_in·s_w, 0, qint32)).
inline int32_t quantize_bias(float b, float in_scale, float weight_scale) {
  float f = b / (in_scale * weight_scale);
  f = f > -1073741824.0f ? f : -1073741824.0f;  // NaN → lower limit, as clamp_for_rounding
  f = f < 1073741824.0f ? f : 1073741824.0f;
  return static_cast<int32_t>(std::nearbyint(f));
}

// ReLU6 folded into an output clamp: the quantized 6 is zp + round_half_even(6 / s_out).
inline int32_t relu6_qmax(float out_scale, int32_t zp) { return zp + round_half_even(6.0f / out_scale); }

// ---- dynamic quantization (quant/dynamic.h) ----------------------------------
// The per-batch grid of an activation from its observed range: PyTorch's
// ChooseQuantizationParams (aten/src/ATen/native/quantized/cpu/QuantUtils.h,
// what torch._choose_qparams_per_tensor and the dynamic linear ops call), step
// for step in double, the scale narrowed to fp32 at the end (the fp32 scale is
// what every kernel then uses). reduce_range halves [qmin, qmax] (u8: 0..127).
struct ChosenQParams {
  float scale;
  int32_t zero_point;
};
inline ChosenQParams choose_qparams(float min, float max, int32_t qmin, int32_t qmax, bool reduce_range) {
  if (reduce_range) {
    qmin /= 2;
    qmax /= 2;
  }
  min = min < 0.0f ? min : 0.0f;  // the range must hold 0 exactly
  max = max > 0.0f ? max : 0.0f;
  double scale = (static_cast<double>(max) - min) / (qmax - qmin);
  if (static_cast<float>(scale) == 0.0f || std::isinf(1.0f / static_cast<float>(scale))) scale = 0.1;
  constexpr float kSmallScale = 6.1e-5f;  // PyTorch's SMALL_SCALE_THRESHOLD
  if (scale < kSmallScale) {
    const float org_scale = static_cast<float>(scale);
    scale = kSmallScale;
    if (min == 0.0f) {
      max = kSmallScale * (qmax - qmin);
    } else if (max == 0.0f) {
      min = -kSmallScale * (qmax - qmin);
    } else {
      const float amplifier = kSmallScale / org_scale;
      min *= amplifier;
      max *= amplifier;
    }
  }
  const double zp_from_min = qmin - min / scale, zp_from_max = qmax - max / scale;
  const double err_min = std::abs(static_cast<double>(qmin)) - std::abs(min / scale);
  const double err_max = std::abs(static_cast<double>(qmax)) - std::abs(max / scale);
  const double zp = err_min < err_max ? zp_from_min : zp_from_max;
  int32_t nudged = zp < qmin ? qmin : zp > qmax ? qmax : static_cast<int32_t>(std::nearbyint(zp));
  return {static_cast<float>(scale), nudged};
}

// The float output of a dynamic linear layer: y = (float)acc · (s_in · s_w) + b,
// then ReLU if fused (y < 0 → 0, as torch.relu). The int8 GEMM's f32 epilogue computes the
// product (dequantize_acc with multiplier dynamic_multiplier); the bias add and
// the ReLU follow in this order.
inline float dynamic_multiplier(float in_scale, float weight_scale) { return in_scale * weight_scale; }
inline float dynamic_output(float product, float bias, bool relu) {
  const float y = product + bias;
  return relu && y < 0.0f ? 0.0f : y;
}

// Wrapping int32 arithmetic (what SIMD adds and multiplies do), without UB.
inline int32_t wrap_add(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}
inline int32_t wrap_mul(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) * static_cast<uint32_t>(b));
}
// The per-column constant of the fast paths: bias − a_zp · Σ_k w (mod 2^32).
inline int32_t column_offset(int32_t bias, int32_t a_zp, int32_t row_sum) {
  // All in uint32: negating the product as int32 is UB when it is INT32_MIN (UBSan found it).
  return static_cast<int32_t>(static_cast<uint32_t>(bias) - static_cast<uint32_t>(a_zp) * static_cast<uint32_t>(row_sum));
}

// Residual add: y = quantize(dequantize(a) + dequantize(b)), the same fp32
// steps a fake-quant simulation of "dequantize, add, quantize" takes.
inline int32_t add(int32_t a, int32_t a_zp, float a_scale, int32_t b, int32_t b_zp, float b_scale, float y_inv_scale,
                   int32_t y_zp, int32_t qmin, int32_t qmax) {
  const float f = dequantize(a, a_zp, a_scale) + dequantize(b, b_zp, b_scale);
  return quantize(f, y_inv_scale, y_zp, qmin, qmax);
}

// Average of `count` quantized values whose sum of (q − x_zp) is `centered_sum`:
//   y = clamp(round_half_even((float)centered_sum · (ratio / (float)count)) + y_zp)
// with ratio = x_scale / y_scale. (PyTorch's quantized avg_pool2d multiplies
// the integer sum by x_scale / y_scale / count as well.)
inline float avg_multiplier(float ratio, int64_t count) { return ratio / static_cast<float>(count); }
inline float scale_ratio(float x_scale, float y_scale) { return x_scale / y_scale; }
inline int32_t average(int32_t centered_sum, float multiplier, int32_t y_zp, int32_t qmin, int32_t qmax) {
  return requantize(centered_sum, multiplier, y_zp, qmin, qmax);
}

}  // namespace lowbit::kernels::qmath
