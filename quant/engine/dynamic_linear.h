// The dynamic linear layer's arithmetic (quant/dynamic.h, steps 1–5): the
// batch's own input grid, the int8 GEMM, the float bias, an optional ReLU. One
// kernel for the DynamicLinear module (quant/) and the engine's dynamic_linear
// op, so they agree bit for bit.
#pragma once
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace lowbit::quant::engine {

// The packed layer and its arithmetic, on one kernel path.
class DynamicLinearKernel {
 public:
  DynamicLinearKernel() = default;
  // w: out×in s8; weight_scale: 1 or out; bias: out floats (zeros when the layer has none).
  DynamicLinearKernel(const kernels::Int8Kernels& k, const int8_t* w, int64_t out, int64_t in,
                      std::vector<float> weight_scale, std::vector<float> bias, bool relu, bool reduce_range);
  // y[m×out] from x[m×in]. Error naming `name` if x holds NaN or ±Inf.
  // scratch grows to m·in bytes (kept by the caller between calls).
  void run(const float* x, int64_t m, float* y, std::vector<uint8_t>& scratch, const std::string& name) const;
  int64_t out_features() const { return w_.n; }
  int64_t in_features() const { return w_.k; }
  bool empty() const { return k_ == nullptr; }

 private:
  const kernels::Int8Kernels* k_ = nullptr;
  kernels::PackedQGemmWeights w_;
  std::vector<float> weight_scale_, bias_;
  bool relu_ = false, reduce_range_ = false;
};

}  // namespace lowbit::quant::engine
