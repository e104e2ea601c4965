// Layers with torch.nn's names, parameters, buffers and defaults.
#pragma once
#include <initializer_list>

#include "core/ops.h"
#include "nn/module.h"

namespace lowbit::nn {

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1, int64_t padding = 0,
         int64_t dilation = 1, int64_t groups = 1, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  const Tensor& weight() const { return param("weight"); }
  Tensor bias() const;  // undefined when bias=false
  int64_t in_channels, out_channels, kernel_size;
  Conv2dOptions options;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, float eps = 1e-5f, float momentum = 0.1f, bool affine = true,
                       bool track_running_stats = true);
  Tensor forward(const Tensor& x) override;
  // act(bn(x)) in one fused op (core's batch_norm); Sequential uses it for a
  // BatchNorm2d followed by ReLU or ReLU6.
  Tensor forward(const Tensor& x, Activation act);
  std::string type_name() const override { return "BatchNorm2d"; }
  std::string extra_repr() const override;
  int64_t num_features;
  float eps, momentum;
  bool affine, track_running_stats;
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  int64_t in_features, out_features;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

class ReLU6 : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu6(x); }
  std::string type_name() const override { return "ReLU6"; }
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

class Dropout : public Module {
 public:
  explicit Dropout(float p = 0.5f) : p(p) {}
  Tensor forward(const Tensor& x) override { return dropout(x, p, training_); }
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  float p;
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(int64_t kernel_size, int64_t stride = -1, int64_t padding = 0, bool ceil_mode = false);
  Tensor forward(const Tensor& x) override { return max_pool2d(x, options); }
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  Pool2dOptions options;
};

class AvgPool2d : public Module {
 public:
  AvgPool2d(int64_t kernel_size, int64_t stride = -1, int64_t padding = 0, bool ceil_mode = false,
            bool count_include_pad = true);
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, options); }
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  Pool2dOptions options;
};

class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : out_h(out_h), out_w(out_w) {}
  explicit AdaptiveAvgPool2d(int64_t out) : AdaptiveAvgPool2d(out, out) {}
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, out_h, out_w); }
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  int64_t out_h, out_w;
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override { return flatten(x, start_dim, end_dim); }
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;
  int64_t start_dim, end_dim;
};

// Children named "0", "1", … as torch.nn.Sequential.
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<ModulePtr> mods);
  void push_back(ModulePtr m);
  size_t size() const { return named_children().size(); }
  ModulePtr operator[](size_t i) const { return named_children().at(i).second; }
  // Runs the children in order; a BatchNorm2d directly followed by ReLU or
  // ReLU6 runs as one fused op (same results, one pass and one tensor fewer).
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  // Consecutive Conv2d → BatchNorm2d [→ ReLU/ReLU6], Conv2d → ReLU/ReLU6 and
  // Linear → ReLU/ReLU6 children (exact types).
  std::vector<std::vector<std::string>> fusable_chains() const override;
};

// The residual addition as a module of its own: the point where a quantized
// model must requantize two inputs with different scales to one output. An
// activation applied to the sum belongs to the Add (torchvision's
// quantizable ResNet calls it add_relu), so a quantizer sees the sum after it.
class Add : public Module {
 public:
  explicit Add(Activation act = Activation::none) : act(act) {}
  Tensor forward(const Tensor&) override;  // error: Add takes two inputs
  virtual Tensor forward(const Tensor& a, const Tensor& b);
  std::string type_name() const override { return "Add"; }
  Activation act;
};

// The activation an exact ReLU/ReLU6 module applies; none for anything else
// (a subclass may have overridden forward).
Activation activation_of(const Module& m);
Tensor apply_activation(const Tensor& x, Activation act);
// act(norm(x)): one fused batch_norm op when `norm` is exactly a BatchNorm2d
// and `act` exactly a ReLU/ReLU6; otherwise the modules in turn (act may be
// null). Models call their conv → bn → relu chains through it, so fusion can
// swap any member for another module.
Tensor forward_norm_act(Module& norm, Module* act, const Tensor& x);

// Conv2d + BatchNorm2d (+ activation), children "0", "1", "2" as torchvision's
// Conv2dNormActivation / the seed MobileNetV2's ConvBNReLU. No conv bias.
class ConvBNReLU : public Sequential {
 public:
  ConvBNReLU(int64_t in_planes, int64_t out_planes, int64_t kernel_size = 3, int64_t stride = 1, int64_t groups = 1,
             Activation act = Activation::relu6);
  std::string type_name() const override { return "ConvBNReLU"; }
};

}  // namespace lowbit::nn
