// Module: parameters, buffers and children by name, as torch.nn.Module.
// Names follow PyTorch's dotted paths ("layer1.0.conv1.weight") so a state
// dict moves between lowbit and PyTorch unchanged. Registration order is
// kept and is the state_dict order (module pre-order; each module's
// parameters, then its buffers — PyTorch's order).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace lowbit::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module : public std::enable_shared_from_this<Module> {
 public:
  virtual ~Module() = default;

  // Single-input forward; modules with other signatures (Add) add overloads.
  virtual Tensor forward(const Tensor& x) = 0;
  // forward as a parent runs it: the output is offered to the feature taps
  // (nn/taps.h) when a TapScope is active. Models call their children this way.
  Tensor call(const Tensor& x) { return tapped(forward(x)); }
  Tensor operator()(const Tensor& x) { return call(x); }
  // Offers an output this module produced to the active taps; returns it.
  // (For forwards with other signatures: add->tapped(add->forward(a, b)).)
  const Tensor& tapped(const Tensor& y);

  // PyTorch's class name ("Conv2d") and the text inside its repr parentheses.
  virtual std::string type_name() const = 0;
  virtual std::string extra_repr() const { return ""; }

  // ---- traversal (recursive, dotted names) ----
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  // (prefix "", this) first, then every descendant in pre-order.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules();
  std::shared_ptr<Module> child(const std::string& name) const;  // nullptr if absent
  // Swaps an existing child for `m` in place (same name and position), as
  // PyTorch's setattr on a submodule: fusion and quantization use it.
  void replace_child(const std::string& name, std::shared_ptr<Module> m);
  // Children that forward() runs back to back on one tensor, each chain a
  // conv → batch norm [→ ReLU/ReLU6] or linear [→ ReLU], by local child name
  // (torchvision's quantizable models list the same chains in fuse_model()).
  // Fusion (quant::fuse) merges a chain into its first module and replaces
  // the rest with Identity, so forward() must call each chain member through
  // its Module interface. Default: none; Sequential finds its own.
  virtual std::vector<std::vector<std::string>> fusable_chains() const { return {}; }
  // Calls f(dotted_name, module) for this module ("") and every descendant,
  // pre-order. Usable inside constructors (needs no shared_ptr to this).
  void for_each_module(const std::function<void(const std::string&, Module&)>& f, const std::string& prefix = "");

  // ---- state ----
  // Parameters and buffers (detached, sharing storage) in PyTorch's order.
  NamedTensors state_dict() const;
  // Copies values in (shapes must match; BatchNorm's num_batches_tracked is
  // accepted when present and not required). strict: every key must match;
  // otherwise unknown keys are ignored and missing keys keep their values.
  // Errors list every missing key, unexpected key and shape mismatch.
  void load_state_dict(const NamedTensors& sd, bool strict = true);

  // Virtual so a wrapper that runs another module (quant's input stub) can
  // forward the mode to it.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  int64_t num_parameters() const;

  // Multi-line tree like PyTorch's repr(model).
  std::string repr() const;

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t);  // sets requires_grad
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  // Parameter / buffer by local name (error names the module type if absent).
  const Tensor& param(const std::string& name) const;
  const Tensor& buffer(const std::string& name) const;

  bool training_ = true;

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;
  void repr_into(std::string& out, int indent) const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

using ModulePtr = std::shared_ptr<Module>;

// Every module of `root` (itself included) that is a T, by dotted path, in module order.
template <class T>
std::vector<std::pair<std::string, T*>> modules_of(Module& root) {
  std::vector<std::pair<std::string, T*>> out;
  root.for_each_module([&](const std::string& path, Module& m) {
    if (auto* t = dynamic_cast<T*>(&m)) out.emplace_back(path, t);
  });
  return out;
}

}  // namespace lowbit::nn
