// The modules a model becomes when fused and prepared (PyTorch's
// torch.ao.nn.intrinsic and its qat versions, in one class per layer kind):
//
//   FusedConv2d   conv [+ BN] [+ ReLU/ReLU6]. Three forms:
//                 float fused (after quant::fuse with BN folded: conv weight·γ/σ, bias β − μ·γ/σ);
//                 QAT conv+BN (BN kept, as intrinsic.qat.ConvBn2d / Krishnamoorthi 2018 §3.2):
//                   s = γ/√(running_var + ε);  y = conv(x, fq(W·s)) / s (+ b);  y = act(BN(y))
//                   with BN on batch statistics while training (running stats update until
//                   freeze_bn_stats()), on running statistics otherwise — which equals the
//                   folded conv, so eval and the integer engine see the same layer;
//                 and either one with quantizers: "weight_fake_quant" and
//                 "activation_post_process" (the output, after the activation).
//   FusedLinear   linear [+ ReLU/ReLU6], the same quantizers.
//   QuantAdd      nn::Add (residual sum [+ ReLU]) with an output quantizer.
//   QuantPool     a pool: average pooling with an output quantizer (its result
//                 leaves the input grid), max pooling without (it keeps the grid).
//   QuantStub     the network input's quantizer ("quant.activation_post_process").
//   QuantModel    wraps a prepared model: quant stub, then the model; the
//                 state dict is the model's plus "quant.*".
#pragma once
#include "core/ops.h"
#include "nn/layers.h"
#include "quant/integer.h"
#include "quant/quantizer.h"

namespace lowbit::quant {

class FusedConv2d : public nn::Module, public Recordable {
 public:
  // From a float conv, optionally its BN (kept for QAT, or folded now), and an activation.
  FusedConv2d(const nn::Conv2d& conv, std::shared_ptr<nn::BatchNorm2d> bn, bool fold_bn, Activation act);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override;
  std::string extra_repr() const override;
  void attach(const LayerQConfig& qc, const std::string& path);
  void freeze_bn_stats(bool on = true) { freeze_bn_ = on; }
  bool bn_stats_frozen() const { return freeze_bn_; }
  bool has_bn() const { return child("bn") != nullptr; }
  // The conv's weight and bias with BN folded in (running statistics).
  std::pair<Tensor, Tensor> folded_weight_bias() const;
  Quantizer* weight_quantizer() const;
  Quantizer* output_quantizer() const;
  int64_t in_channels, out_channels, kernel_size;
  Conv2dOptions options;
  Activation act;

 private:
  bool freeze_bn_ = false;
};

class FusedLinear : public nn::Module, public Recordable {
 public:
  FusedLinear(const nn::Linear& linear, Activation act);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return act == Activation::none ? "Linear" : "LinearReLU"; }
  std::string extra_repr() const override;
  void attach(const LayerQConfig& qc, const std::string& path);
  Quantizer* weight_quantizer() const;
  Quantizer* output_quantizer() const;
  int64_t in_features, out_features;
  Activation act;
};

class QuantAdd : public nn::Add, public Recordable {
 public:
  QuantAdd(Activation act, const QSpec& spec, const std::string& path);
  Tensor forward(const Tensor& a, const Tensor& b) override;
  using nn::Add::forward;
  std::string type_name() const override { return act == Activation::none ? "QuantAdd" : "QuantAddReLU"; }

 private:
  std::string path_;
};

class QuantPool : public nn::Module, public Recordable {
 public:
  // spec null: no output quantizer (max pooling keeps its input's grid).
  QuantPool(nn::ModulePtr pool, const QSpec* spec, const std::string& path);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Quant" + pool_->type_name(); }
  std::string extra_repr() const override { return pool_->extra_repr(); }
  const nn::Module& pool() const { return *pool_; }

 private:
  nn::ModulePtr pool_;  // parameterless; not a child, so names stay put
  std::string path_;
};

class QuantStub : public nn::Module, public Recordable {
 public:
  QuantStub(const QSpec& spec, const std::string& path);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "QuantStub"; }

 private:
  std::string path_;
};

class QuantModel : public nn::Module {
 public:
  QuantModel(nn::ModulePtr model, const QSpec& input_spec);
  // Frozen and in eval mode, runs in integers (quant/integer.h): the first
  // such forward (and the first after a state change) is a recording pass
  // that computes every layer's integer form; later ones run those forms.
  Tensor forward(const Tensor& x) override;
  // A recording pass on `t` (convert's: the integer graph), frozen models only.
  Tensor record(Trace& t, const Tensor& x);
  std::string type_name() const override { return "Quantized" + model_->type_name(); }
  void train(bool on = true) override;
  const nn::ModulePtr& model() const { return model_; }
  // Set by quant::freeze: every quantizer's parameters are final.
  void set_frozen(bool on);  // also forgets the integer forms
  bool frozen() const { return frozen_; }

 private:
  uint64_t state_version() const;
  nn::ModulePtr model_;
  bool frozen_ = false;
  uint64_t recorded_version_ = ~uint64_t(0);  // the state the integer forms were computed from
};

}  // namespace lowbit::quant
