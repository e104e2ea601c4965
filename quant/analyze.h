// Per-layer quantization error of a frozen quantized model (`lowbit analyze`):
// for every quantized conv / linear (and residual add), the signal-to-
// quantization-noise ratio
//   SQNR = 10·log10(Σ x² / Σ (x − x_q)²)  dB
// of its weights (the float weights — BN folded — against their fake-quantized
// values) and of its output on a batch (the model with every quantizer off,
// i.e. the float model with the same weights, against the quantized model,
// run as the integer simulation). Output errors accumulate through the
// network; weight errors are each layer's own. +inf: no error at all.
#pragma once
#include <string>
#include <vector>

#include "quant/qmodules.h"

namespace lowbit::quant {

struct LayerError {
  std::string path;        // "layer1.0.conv1"
  std::string kind;        // "conv", "linear", "add"
  int weight_bits = 0;     // 0: no weights (add)
  double weight_sqnr_db = 0;
  double output_sqnr_db = 0;
};

// The model must be frozen (quant::freeze); `batch` N×C×H×W, normalized as in
// training. The model's state is unchanged afterwards.
std::vector<LayerError> analyze(QuantModel& q, const Tensor& batch);

// 10·log10(Σ a² / Σ (a − b)²), +inf when a == b.
double sqnr_db(const Tensor& a, const Tensor& b);

}  // namespace lowbit::quant
