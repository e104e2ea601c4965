#include "quant/analyze.h"

#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/error.h"
#include "nn/taps.h"
#include "quant/quantize.h"

namespace lowbit::quant {

double sqnr_db(const Tensor& a_in, const Tensor& b_in) {
  const std::vector<float> a = a_in.to_vector(), b = b_in.to_vector();
  LOWBIT_CHECK(a.size() == b.size(), "sqnr_db: ", a.size(), " and ", b.size(), " values");
  double signal = 0, noise = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    signal += (double)a[i] * a[i];
    const double d = (double)a[i] - b[i];
    noise += d * d;
  }
  if (noise == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

std::vector<LayerError> analyze(QuantModel& q, const Tensor& batch) {
  LOWBIT_CHECK(q.frozen(), "analyze: the model is not frozen (a finished quantized model is needed)");
  std::vector<LayerError> out;
  std::vector<std::string> paths;
  nn::Module& inner = *q.model();
  NoGradGuard ng;
  inner.for_each_module([&](const std::string& path, nn::Module& m) {
    LayerError e;
    e.path = path;
    if (auto* c = dynamic_cast<FusedConv2d*>(&m)) {
      e.kind = "conv";
      if (Quantizer* wq = c->weight_quantizer()) {
        const Tensor w = c->folded_weight_bias().first;
        e.weight_bits = wq->spec().bits;
        e.weight_sqnr_db = sqnr_db(w, wq->forward(w));
      }
    } else if (auto* l = dynamic_cast<FusedLinear*>(&m)) {
      e.kind = "linear";
      if (Quantizer* wq = l->weight_quantizer()) {
        Tensor w;
        for (const auto& [n, t] : l->named_parameters())
          if (n == "weight") w = t.detach();
        e.weight_bits = wq->spec().bits;
        e.weight_sqnr_db = sqnr_db(w, wq->forward(w));
      }
    } else if (dynamic_cast<QuantAdd*>(&m)) {
      e.kind = "add";
    } else {
      return;
    }
    paths.push_back(path);
    out.push_back(e);
  });
  LOWBIT_CHECK(!out.empty(), "analyze: the model has no quantized layer");
  LOWBIT_CHECK(batch.dim() == 4 && batch.shape()[0] >= 1, "analyze: the batch must be N×C×H×W, got ",
               shape_str(batch.shape()));
  // Restores mode, frozen flag and every quantizer's switch, also on an error.
  struct Restore {
    QuantModel& q;
    bool training;
    std::vector<std::pair<Quantizer*, bool>> fake_quant;
    ~Restore() {
      q.set_frozen(true);
      for (auto& [qz, on] : fake_quant) qz->enable_fake_quant(on);
      q.train(training);
    }
  } restore{q, q.is_training(), {}};
  for (auto& [p, qz] : quantizers(q)) restore.fake_quant.emplace_back(qz, qz->fake_quant_enabled());
  q.eval();
  // Σ x² and Σ (x − x_q)² per layer, over chunks of 32 images (two forward
  // passes each: the quantized model as the integer simulation, then every
  // quantizer off — the float model with the same weights).
  std::vector<double> signal(out.size(), 0.0), noise(out.size(), 0.0);
  const int64_t n = batch.shape()[0];
  for (int64_t c0 = 0; c0 < n; c0 += 32) {
    const Tensor x = batch.slice(0, c0, std::min(n, c0 + 32)).contiguous();
    std::vector<Tensor> quantized;
    {
      nn::TapScope taps(inner, paths, /*allow_chain_members=*/true);
      q.forward(x);
      for (const auto& p : paths) quantized.push_back(taps.get(p));
    }
    for (auto& [qz, on] : restore.fake_quant) qz->enable_fake_quant(false);
    q.set_frozen(false);
    {
      nn::TapScope taps(inner, paths, true);
      q.forward(x);
      for (size_t i = 0; i < paths.size(); ++i) {
        const std::vector<float> a = taps.get(paths[i]).to_vector(), b = quantized[i].to_vector();
        for (size_t k = 0; k < a.size() && k < b.size(); ++k) {
          signal[i] += (double)a[k] * a[k];
          noise[i] += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
        }
      }
    }
    q.set_frozen(true);
    for (auto& [qz, on] : restore.fake_quant) qz->enable_fake_quant(on);
  }
  for (size_t i = 0; i < out.size(); ++i)
    out[i].output_sqnr_db = noise[i] == 0 ? std::numeric_limits<double>::infinity()
                                          : 10.0 * std::log10(signal[i] / noise[i]);
  return out;
}

}  // namespace lowbit::quant
