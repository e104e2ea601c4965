#include "quant/engine/dynamic_linear.h"

#include "core/error.h"
#include "kernels/quant_math.h"

namespace lowbit::quant::engine {

namespace qm = kernels::qmath;

DynamicLinearKernel::DynamicLinearKernel(const kernels::Int8Kernels& k, const int8_t* w, int64_t out, int64_t in,
                                         std::vector<float> weight_scale, std::vector<float> bias, bool relu,
                                         bool reduce_range)
    : k_(&k), weight_scale_(std::move(weight_scale)), bias_(std::move(bias)), relu_(relu), reduce_range_(reduce_range) {
  LOWBIT_CHECK(weight_scale_.size() == 1 || (int64_t)weight_scale_.size() == out, "dynamic linear: ",
               weight_scale_.size(), " weight scales for ", out, " outputs");
  LOWBIT_CHECK((int64_t)bias_.size() == out, "dynamic linear: ", bias_.size(), " bias values for ", out, " outputs");
  // u8 × s8 products summed over K: no int32 wrap for K ≤ 65792 (kernels/int8.h).
  LOWBIT_CHECK(in >= 1 && in <= 65792, "dynamic linear: ", in, " input features; the int8 GEMM's int32 sums are ",
               "exact up to 65792");
  k.qgemm_pack(w_, w, out, in);
}

void DynamicLinearKernel::run(const float* x, int64_t m, float* y, std::vector<uint8_t>& scratch,
                              const std::string& name) const {
  LOWBIT_CHECK(k_ != nullptr, name, ": dynamic linear layer used before it was packed");
  const int64_t in = w_.k, out = w_.n;
  if (m == 0) return;  // an empty batch: an empty output (as PyTorch)
  float mn = 0, mx = 0;
  LOWBIT_CHECK(k_->f32_minmax(&mn, &mx, x, m * in), name, ": the input holds NaN or Inf; a dynamic layer cannot ",
               "choose a grid for it");
  const qm::ChosenQParams g = qm::choose_qparams(mn, mx, 0, 255, reduce_range_);
  if ((int64_t)scratch.size() < m * in) scratch.resize((size_t)(m * in));
  k_->quantize_f32_u8(scratch.data(), x, &g.scale, &g.zero_point, 1, 1, m * in);
  // Up to 4096 outputs the multipliers sit on the stack (no allocation per call).
  float stack_mult[4096];
  std::vector<float> heap_mult;
  float* mult = stack_mult;
  if (weight_scale_.size() > 4096) {
    heap_mult.resize(weight_scale_.size());
    mult = heap_mult.data();
  }
  for (size_t i = 0; i < weight_scale_.size(); ++i) mult[i] = qm::dynamic_multiplier(g.scale, weight_scale_[i]);
  kernels::QuantEpilogue ep;
  ep.multiplier = mult;
  ep.per_channel = weight_scale_.size() > 1;
  ep.out = kernels::QOut::f32;
  k_->qu8_qs8_gemm(y, out, scratch.data(), in, g.zero_point, w_, ep, m);
  const float* b = bias_.data();
  const bool relu = relu_;
#pragma omp parallel for schedule(static) if (m * out >= (1 << 16))
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < out; ++j) y[r * out + j] = qm::dynamic_output(y[r * out + j], b[j], relu);
}

}  // namespace lowbit::quant::engine
