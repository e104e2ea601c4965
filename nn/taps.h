// Feature taps: intermediate outputs by module path, as PyTorch users take
// them with forward hooks or torchvision's create_feature_extractor
// ("layer2", "features.7"). Distillation's hint and attention losses read
// them (distill/).
//
//   nn::TapScope taps(*model, {"layer2", "layer3"});   // checks the names
//   Tensor logits = model->forward(x);
//   const Tensor& f = taps.get("layer2");              // N×C×H×W, in the graph
//
// Where a tap reads: the tensor the module at that path returned, i.e. after
// its own activation. A block ("layer2.1", "features.7") returns its output
// after the residual add and its ReLU. The members of a fusable chain
// (conv → BN → ReLU inside a block, Module::fusable_chains) cannot be tapped:
// fusion (quant::fuse, prepare_qat) merges them into one module, so "the conv's
// output" would mean the pre-BN tensor in the float model and the post-ReLU one
// in the quantized model. Everything else taps the same tensor in the float,
// fused and fake-quantized forms of a model (a quantized student's tap reads
// the fake-quantized output, what the next layer sees).
//
// Taps work through Module::call / Module::tapped (the models call children
// that way); one scope per thread at a time (nesting restores the previous).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"

namespace lowbit::nn {

// Every module path of `model` a tap may read, in module order.
std::vector<std::string> tap_names(Module& model);

class TapScope {
 public:
  // Error "no module 'x' to tap (valid: …)" for a name tap_names does not list.
  // allow_chain_members: any module path (analysis of an already fused model).
  TapScope(Module& model, const std::vector<std::string>& names, bool allow_chain_members = false);
  ~TapScope();
  TapScope(const TapScope&) = delete;
  TapScope& operator=(const TapScope&) = delete;

  // The last output of the module at `name` (Error if it has not run).
  const Tensor& get(const std::string& name) const;
  void clear() { out_.clear(); }

  // Called by Module::tapped.
  static TapScope* current();
  void offer(const Module* m, const Tensor& y);

 private:
  std::map<const Module*, std::string> by_module_;
  std::map<std::string, Tensor> out_;
  TapScope* prev_;
};

}  // namespace lowbit::nn
