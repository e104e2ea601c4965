#include "nn/layers.h"

#include <cmath>
#include <sstream>
#include <typeinfo>

#include "nn/init.h"

namespace lowbit::nn {

namespace {
std::string str(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
}  // namespace

// ---- Conv2d: PyTorch's default init (kaiming_uniform a=√5 → U(±1/√fan_in)),
// models re-initialise as torchvision does.
Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, int64_t dilation, int64_t groups,
               bool bias)
    : in_channels(in), out_channels(out), kernel_size(k), options(Conv2dOptions::make(stride, padding, dilation, groups)) {
  LOWBIT_CHECK(in > 0 && out > 0 && k > 0 && groups > 0 && in % groups == 0 && out % groups == 0,
               "Conv2d(", in, ", ", out, ", kernel_size=", k, ", groups=", groups, "): invalid configuration");
  Tensor w = Tensor::empty({out, in / groups, k, k});
  const float bound = 1.0f / std::sqrt((float)(in / groups * k * k));
  init::uniform_(w, -bound, bound);
  register_parameter("weight", w);
  if (bias) {
    Tensor b = Tensor::empty({out});
    init::uniform_(b, -bound, bound);
    register_parameter("bias", b);
  }
}

Tensor Conv2d::bias() const {
  for (auto& [n, t] : named_parameters())
    if (n == "bias") return t;
  return Tensor();
}

Tensor Conv2d::forward(const Tensor& x) {
  LOWBIT_CHECK(x.dim() == 4 && x.shape()[1] == in_channels, "Conv2d(", in_channels, ", ", out_channels,
               "): input ", shape_str(x.shape()), " does not have ", in_channels, " channels");
  return conv2d(x, weight(), bias(), options);
}

std::string Conv2d::extra_repr() const {
  std::string s = str(in_channels) + ", " + str(out_channels) + ", kernel_size=(" + str(kernel_size) + ", " +
                  str(kernel_size) + "), stride=(" + str(options.stride_h) + ", " + str(options.stride_w) + ")";
  if (options.pad_h) s += ", padding=(" + str(options.pad_h) + ", " + str(options.pad_w) + ")";
  if (options.dil_h != 1) s += ", dilation=(" + str(options.dil_h) + ", " + str(options.dil_w) + ")";
  if (options.groups != 1) s += ", groups=" + str(options.groups);
  if (!bias().defined()) s += ", bias=False";
  return s;
}

// ---- BatchNorm2d
BatchNorm2d::BatchNorm2d(int64_t c, float eps, float momentum, bool affine, bool track)
    : num_features(c), eps(eps), momentum(momentum), affine(affine), track_running_stats(track) {
  LOWBIT_CHECK(c > 0, "BatchNorm2d(", c, "): num_features must be positive");
  if (affine) {
    register_parameter("weight", Tensor::ones({c}));
    register_parameter("bias", Tensor::zeros({c}));
  }
  if (track) {
    register_buffer("running_mean", Tensor::zeros({c}));
    register_buffer("running_var", Tensor::ones({c}));
    // PyTorch keeps an int64 counter; s32 here (safetensors I64 loads into it).
    register_buffer("num_batches_tracked", Tensor::zeros({}, DType::s32));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) { return forward(x, Activation::none); }

Tensor BatchNorm2d::forward(const Tensor& x, Activation act) {
  LOWBIT_CHECK(x.dim() == 4 && x.shape()[1] == num_features, "BatchNorm2d(", num_features, "): input ",
               shape_str(x.shape()), " does not have ", num_features, " channels");
  Tensor w = affine ? param("weight") : Tensor(), b = affine ? param("bias") : Tensor();
  const bool use_batch_stats = training_ || !track_running_stats;
  Tensor rm = track_running_stats ? buffer("running_mean") : Tensor();
  Tensor rv = track_running_stats ? buffer("running_var") : Tensor();
  if (training_ && track_running_stats) {
    Tensor nbt = buffer("num_batches_tracked");
    nbt.data<int32_t>()[0] += 1;
    nbt.bump_version();
  }
  return batch_norm(x, rm, rv, w, b, use_batch_stats, momentum, eps, act);
}

std::string BatchNorm2d::extra_repr() const {
  return str(num_features) + ", eps=" + str(eps) + ", momentum=" + str(momentum) +
         ", affine=" + (affine ? "True" : "False") + ", track_running_stats=" + (track_running_stats ? "True" : "False");
}

// ---- Linear: PyTorch's default init U(±1/√in).
Linear::Linear(int64_t in, int64_t out, bool bias) : in_features(in), out_features(out) {
  LOWBIT_CHECK(in > 0 && out > 0, "Linear(", in, ", ", out, "): sizes must be positive");
  const float bound = 1.0f / std::sqrt((float)in);
  Tensor w = Tensor::empty({out, in});
  init::uniform_(w, -bound, bound);
  register_parameter("weight", w);
  if (bias) {
    Tensor b = Tensor::empty({out});
    init::uniform_(b, -bound, bound);
    register_parameter("bias", b);
  }
}

Tensor Linear::forward(const Tensor& x) {
  Tensor b;
  for (auto& [n, t] : named_parameters())
    if (n == "bias") b = t;
  return linear(x, param("weight"), b);
}

std::string Linear::extra_repr() const {
  bool has_bias = false;
  for (auto& [n, t] : named_parameters()) has_bias = has_bias || n == "bias";
  return "in_features=" + str(in_features) + ", out_features=" + str(out_features) +
         ", bias=" + (has_bias ? "True" : "False");
}

std::string Dropout::extra_repr() const { return "p=" + str(p) + ", inplace=False"; }

MaxPool2d::MaxPool2d(int64_t k, int64_t stride, int64_t padding, bool ceil_mode)
    : options(Pool2dOptions::make(k, stride, padding)) {
  options.ceil_mode = ceil_mode;
}
std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + str(options.kernel_h) + ", stride=" + str(options.stride_h) + ", padding=" +
         str(options.pad_h) + ", dilation=1, ceil_mode=" + (options.ceil_mode ? "True" : "False");
}

AvgPool2d::AvgPool2d(int64_t k, int64_t stride, int64_t padding, bool ceil_mode, bool count_include_pad)
    : options(Pool2dOptions::make(k, stride, padding)) {
  options.ceil_mode = ceil_mode;
  options.count_include_pad = count_include_pad;
}
std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + str(options.kernel_h) + ", stride=" + str(options.stride_h) + ", padding=" + str(options.pad_h);
}

std::string AdaptiveAvgPool2d::extra_repr() const {
  return "output_size=(" + str(out_h) + ", " + str(out_w) + ")";
}

std::string Flatten::extra_repr() const { return "start_dim=" + str(start_dim) + ", end_dim=" + str(end_dim); }

Sequential::Sequential(std::initializer_list<ModulePtr> mods) {
  for (auto& m : mods) push_back(m);
}

void Sequential::push_back(ModulePtr m) { register_module(std::to_string(size()), std::move(m)); }

Activation activation_of(const Module& m) {
  if (typeid(m) == typeid(ReLU)) return Activation::relu;
  if (typeid(m) == typeid(ReLU6)) return Activation::relu6;
  return Activation::none;
}

Tensor apply_activation(const Tensor& x, Activation act) {
  switch (act) {
    case Activation::relu: return relu(x);
    case Activation::relu6: return relu6(x);
    case Activation::none: break;
  }
  return x;
}

Tensor forward_norm_act(Module& norm, Module* act, const Tensor& x) {
  const Activation a = act ? activation_of(*act) : Activation::none;
  // Exact type only: a subclass may have overridden forward.
  if (typeid(norm) == typeid(BatchNorm2d) && (a != Activation::none || !act))
    return static_cast<BatchNorm2d&>(norm).forward(x, a);
  Tensor h = norm.forward(x);
  return act ? act->forward(h) : h;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  const auto& kids = named_children();
  for (size_t i = 0; i < kids.size(); ++i) {
    Module* m = kids[i].second.get();
    if (typeid(*m) == typeid(BatchNorm2d) && i + 1 < kids.size() &&
        activation_of(*kids[i + 1].second) != Activation::none) {
      h = forward_norm_act(*m, kids[i + 1].second.get(), h);
      ++i;
      continue;
    }
    h = m->call(h);
  }
  return h;
}

std::vector<std::vector<std::string>> Sequential::fusable_chains() const {
  std::vector<std::vector<std::string>> chains;
  const auto& kids = named_children();
  auto is = [&](size_t i, const std::type_info& t) { return i < kids.size() && typeid(*kids[i].second) == t; };
  auto is_act = [&](size_t i) { return i < kids.size() && activation_of(*kids[i].second) != Activation::none; };
  for (size_t i = 0; i < kids.size(); ++i) {
    std::vector<std::string> chain{kids[i].first};
    size_t j = i + 1;
    if (is(i, typeid(Conv2d)) && is(j, typeid(BatchNorm2d))) chain.push_back(kids[j++].first);
    else if (!is(i, typeid(Conv2d)) && !is(i, typeid(Linear))) continue;
    if (is_act(j)) chain.push_back(kids[j++].first);
    if (chain.size() > 1) chains.push_back(chain);
    i = j - 1;
  }
  return chains;
}

Tensor Add::forward(const Tensor& x) {
  fail("Add takes two inputs (forward(a, b)), got one of shape ", shape_str(x.shape()));
}

Tensor Add::forward(const Tensor& a, const Tensor& b) { return apply_activation(add(a, b), act); }

ConvBNReLU::ConvBNReLU(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups, Activation act) {
  push_back(std::make_shared<Conv2d>(in, out, k, stride, (k - 1) / 2, 1, groups, false));
  push_back(std::make_shared<BatchNorm2d>(out));
  if (act == Activation::relu) push_back(std::make_shared<ReLU>());
  if (act == Activation::relu6) push_back(std::make_shared<ReLU6>());
}

}  // namespace lowbit::nn
