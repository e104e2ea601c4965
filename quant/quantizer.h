// Quantizer modules: the one place a tensor is fake-quantized. Each is an
// nn::Module so its state (scale, zero point, LSQ step) is in the state dict
// under PyTorch's names ("…weight_fake_quant.scale",
// "…activation_post_process.zero_point").
//
//   FakeQuantize   observer + quantize–dequantize with a straight-through
//                  gradient. Observing and fake-quantizing switch on and off
//                  separately (PyTorch's enable_observer / enable_fake_quant):
//                  PTQ calibration observes the float model (fake-quant off),
//                  QAT observes and fake-quantizes every step.
//   LsqQuantizer   learnable step (and, for LSQ+, offset), initialised from the
//                  first tensor it sees: LSQ 2·mean(|x|)/√Qp below 8 bits,
//                  the spec's observer at 8 bits (QSpec::lsq_init), LSQ+ min/max.
//                  The step's gradient is scaled by 1/√(numel·Qp) (numel of the
//                  whole tensor, per channel too, as PyTorch's _LearnableFakeQuantize).
//
// freeze() ends calibration/learning: observers off, qparams fixed; an LSQ+
// offset β is folded into the integer zero point round(−β/s) (the integer
// engine has no float offset), which moves the grid by less than s/2.
#pragma once
#include <memory>
#include <utility>
#include <vector>

#include "nn/module.h"
#include "quant/observer.h"
#include "quant/qconfig.h"

namespace lowbit::quant {

class Quantizer : public nn::Module {
 public:
  explicit Quantizer(const QSpec& spec, std::string path);
  const QSpec& spec() const { return spec_; }
  const std::string& path() const { return path_; }
  int qmin() const { return spec_.qmin(); }
  int qmax() const { return spec_.qmax(); }
  // The current scale(s) and zero point(s): what the integer engine will use.
  virtual QuantParams qparams() const = 0;
  virtual void enable_observer(bool on) { observer_enabled_ = on; }
  void enable_fake_quant(bool on) { fake_quant_enabled_ = on; }
  bool observer_enabled() const { return observer_enabled_; }
  bool fake_quant_enabled() const { return fake_quant_enabled_; }
  virtual void freeze() = 0;
  bool frozen() const { return frozen_; }
  // Steps the optimizer pushed to or below zero since the last call, each
  // clamped to fp32 epsilon (LSQ; a collapse is how a diverging step shows):
  // channel and the value before the clamp. Empty for observer-based quantizers.
  struct Collapse {
    int64_t channel;
    float step;
  };
  std::vector<Collapse> take_collapses() { return std::exchange(collapses_, {}); }

 protected:
  QSpec spec_;
  std::string path_;
  bool observer_enabled_ = true, fake_quant_enabled_ = true, frozen_ = false;
  std::vector<Collapse> collapses_;
};

using QuantizerPtr = std::shared_ptr<Quantizer>;

class FakeQuantize : public Quantizer {
 public:
  // channels: the size of the per-channel axis (1 for per-tensor).
  FakeQuantize(const QSpec& spec, std::string path, int64_t channels);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "FakeQuantize"; }
  std::string extra_repr() const override { return spec_.str(); }
  QuantParams qparams() const override;
  // Asks the observer for qparams and stores them (after calibration).
  void compute_qparams();
  void freeze() override;
  const Observer& observer() const { return *observer_; }
  // scale/zero_point were loaded from a checkpoint: valid without observing.
  void assume_loaded() { computed_ = true; }

 private:
  ObserverPtr observer_;
  bool computed_ = false;  // scale/zero_point hold an observer's answer (or a loaded state)
};

class LsqQuantizer : public Quantizer {
 public:
  LsqQuantizer(const QSpec& spec, std::string path, int64_t channels);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return spec_.quantizer == QuantizerKind::lsq_plus ? "LsqPlusQuantizer" : "LsqQuantizer"; }
  std::string extra_repr() const override { return spec_.str(); }
  QuantParams qparams() const override;
  void freeze() override;
  // Multiplies each channel's step by factor[c] (one factor per step).
  void rescale_steps(const std::vector<float>& factor);

 private:
  void initialize(const Tensor& x);
  bool plus() const { return spec_.quantizer == QuantizerKind::lsq_plus; }
  void clamp_step();  // steps below fp32 epsilon up to it; NaN/Inf: error
};

// A FakeQuantize or LsqQuantizer as the spec says. channels: per-channel size.
QuantizerPtr make_quantizer(const QSpec& spec, const std::string& path, int64_t channels);

}  // namespace lowbit::quant
