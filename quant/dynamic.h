// Dynamic quantization (PyTorch's torch.ao.quantization.quantize_dynamic):
// weights are int8 ahead of time, each call quantizes its input from that
// batch's own range, and the output is float. No calibration data.
//
//   quant::quantize_dynamic(*model);                         // every Linear
//   quant::quantize_dynamic(*model, {"fc"}, {.per_channel = true});
//
// One dynamic linear layer, y = x·Wᵀ + b with x: M×K float:
//   1. min/max over the whole input (all M rows: one grid per call, as PyTorch)
//   2. (s_x, zp_x) = qmath::choose_qparams(min, max, 0, 255, reduce_range)
//      (PyTorch's ChooseQuantizationParams; reduce_range: 0..127, PyTorch's
//      default for its dynamic Linear, which fbgemm's AVX2 kernels need)
//   3. q_x = qmath::quantize(x, 1/s_x, zp_x, 0, 255)           (quantize_f32_u8)
//   4. acc = Σ_k (q_x − zp_x)·q_w                               (the int8 GEMM, int32)
//   5. y = qmath::dynamic_output((float)acc · (s_x·s_w[n]), b[n], relu)
// Weights: s8 symmetric, [−128, 127], per tensor or per output channel, from
// the MinMax observer (PyTorch's default_weight_observer /
// default_per_channel_weight_observer).
//
// The module (DynamicLinear) and the int8 engine's dynamic_linear op run the
// same DynamicLinearKernel, so they agree bit for bit; every kernel path
// agrees with ref bit for bit (the GEMM and quant_math are exact). PyTorch's
// own dynamic Linear computes the same integer product; its fp32 epilogue
// rounds in another order (see tests/quant/test_dynamic.cpp for the measured
// agreement).
//
// Fused ReLU: a Linear followed by a ReLU in a fusable chain becomes one
// DynamicLinear with the ReLU applied to its float output (PyTorch's dynamic
// LinearReLU); the ReLU module becomes Identity.
//
// Dynamic modules are inference only: forward under NoGradGuard or not, they
// record no graph.
#pragma once
#include <set>
#include <string>

#include "kernels/kernels.h"
#include "nn/layers.h"
#include "quant/engine/dynamic_linear.h"
#include "quant/integer.h"

namespace lowbit::quant {

struct DynamicConfig {
  bool per_channel = false;   // weight scales per output channel (else one)
  bool reduce_range = false;  // activations on 0..127 (PyTorch's dynamic Linear default) instead of 0..255
  std::string str() const;    // "dynamic per-tensor" / "dynamic per-channel reduce-range"
  static DynamicConfig parse(const std::string& s);  // Error on anything else
  bool operator==(const DynamicConfig&) const = default;
};

using engine::DynamicLinearKernel;  // the packed layer and its arithmetic (steps 1–5 above)

// A dynamically quantized Linear [+ ReLU]. State dict: "weight" s8 out×in,
// "weight_scale" f32 (1 or out), "bias" f32 out (absent without bias).
class DynamicLinear : public nn::Module, public Recordable {
 public:
  // Quantizes `linear`'s weights now (MinMax, symmetric s8).
  DynamicLinear(const nn::Linear& linear, bool relu, const DynamicConfig& cfg);
  // x: N×in (or N×…, flattened from dim 1, as Linear after Flatten). Returns N×out float.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return relu_ ? "DynamicQuantizedLinearReLU" : "DynamicQuantizedLinear"; }
  std::string extra_repr() const override;
  int64_t in_features, out_features;
  bool relu() const { return relu_; }
  const Tensor& weight() const { return buffer("weight"); }              // s8 out×in
  const Tensor& weight_scale() const { return buffer("weight_scale"); }  // f32, 1 or out
  std::vector<float> bias_values() const;                                 // out floats (zeros without bias)
  const DynamicConfig& config() const { return cfg_; }
  // The kernel for the process's path, packed on first use and again whenever
  // the weights change (load_state_dict) or the path does.
  const DynamicLinearKernel& kernel(const kernels::KernelTable& table) const;
  std::string path;  // module path, for errors (set by quantize_dynamic)

 private:
  bool relu_;
  bool has_bias_ = false;  // the "bias" buffer exists (fixed at construction)
  DynamicConfig cfg_;
  mutable DynamicLinearKernel kernel_;
  mutable uint64_t packed_version_ = ~uint64_t(0);
  mutable const kernels::KernelTable* packed_table_ = nullptr;
  mutable std::vector<uint8_t> scratch_;
};

// Replaces the selected Linear layers of `model` (in place) by DynamicLinear.
// `targets`: module type names ("Linear") and/or module paths ("fc",
// "classifier.1"). Returns how many layers were replaced. Error if a path names
// no Linear layer or nothing matches ("has no Linear layer").
int quantize_dynamic(nn::Module& model, const std::set<std::string>& targets = {"Linear"},
                     const DynamicConfig& cfg = {});

// Every DynamicLinear by module path.
std::vector<std::pair<std::string, DynamicLinear*>> dynamic_layers(nn::Module& model);

// Bytes of the model as quantize_dynamic leaves it: dynamic layers at 1 byte
// per weight plus fp32 scales and biases, every other parameter in fp32.
int64_t dynamic_model_bytes(nn::Module& model);

}  // namespace lowbit::quant
