// ResNets with torchvision's module names (conv1, bn1, layer1.0.conv1, …,
// downsample.0/1, fc). The residual addition is an explicit Add child
// ("add_relu", as torchvision's quantizable ResNet names it): it has no
// parameters, so state dicts are unchanged.
#include <cmath>

#include "nn/init.h"
#include "nn/models.h"

namespace lowbit::nn {

namespace {
std::shared_ptr<Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<Conv2d>(in, out, 3, stride, 1, 1, 1, false);
}
std::shared_ptr<Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<Conv2d>(in, out, 1, stride, 0, 1, 1, false);
}
Tensor run(const ModulePtr& m, const Tensor& x) { return m->call(x); }
// relu(bn(x)) through the modules (one fused op while they are plain
// BatchNorm2d and ReLU).
Tensor bn_relu(const Module& block, const char* bn, const Tensor& x) {
  return forward_norm_act(*block.child(bn), block.child("relu").get(), x);
}
// The residual sum with its ReLU (the Add child "add_relu").
Tensor add_relu(const Module& block, const Tensor& a, const Tensor& b) {
  auto add = std::dynamic_pointer_cast<Add>(block.child("add_relu"));
  LOWBIT_CHECK(add != nullptr, block.type_name(), ": child add_relu is not an Add");
  return add->tapped(add->forward(a, b));
}
}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, bool downsample) {
  register_module("conv1", conv3x3(inplanes, planes, stride));
  register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  register_module("relu", std::make_shared<ReLU>());
  register_module("conv2", conv3x3(planes, planes, 1));
  register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (downsample)
    register_module("downsample", std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
                                      conv1x1(inplanes, planes, stride), std::make_shared<BatchNorm2d>(planes)}));
  register_module("add_relu", std::make_shared<Add>(Activation::relu));
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = bn_relu(*this, "bn1", run(child("conv1"), x));
  out = run(child("bn2"), run(child("conv2"), out));
  ModulePtr ds = child("downsample");
  Tensor identity = ds ? ds->call(x) : x;
  return add_relu(*this, out, identity);
}

std::vector<std::vector<std::string>> BasicBlock::fusable_chains() const {
  return {{"conv1", "bn1", "relu"}, {"conv2", "bn2"}};
}

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, bool downsample) {
  register_module("conv1", conv1x1(inplanes, planes, 1));
  register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  register_module("conv2", conv3x3(planes, planes, stride));
  register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  register_module("conv3", conv1x1(planes, planes * kExpansion, 1));
  register_module("bn3", std::make_shared<BatchNorm2d>(planes * kExpansion));
  register_module("relu", std::make_shared<ReLU>());
  if (downsample)
    register_module("downsample",
                    std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
                        conv1x1(inplanes, planes * kExpansion, stride), std::make_shared<BatchNorm2d>(planes * kExpansion)}));
  register_module("add_relu", std::make_shared<Add>(Activation::relu));
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = bn_relu(*this, "bn1", run(child("conv1"), x));
  out = bn_relu(*this, "bn2", run(child("conv2"), out));
  out = run(child("bn3"), run(child("conv3"), out));
  ModulePtr ds = child("downsample");
  Tensor identity = ds ? ds->call(x) : x;
  return add_relu(*this, out, identity);
}

// "relu" follows both bn1 and bn2 (one module, as torchvision's Bottleneck).
std::vector<std::vector<std::string>> Bottleneck::fusable_chains() const {
  return {{"conv1", "bn1", "relu"}, {"conv2", "bn2", "relu"}, {"conv3", "bn3"}};
}

ResNet::ResNet(const std::vector<int64_t>& layers, const std::vector<int64_t>& widths, bool bottleneck,
               bool cifar_stem, const ModelConfig& cfg)
    : has_maxpool_(!cifar_stem && !cfg.small_input), stages_((int64_t)layers.size()) {
  LOWBIT_CHECK(cfg.in_channels > 0 && cfg.num_classes > 0, "ResNet: in_channels ", cfg.in_channels,
               " and num_classes ", cfg.num_classes, " must be positive");
  const int64_t expansion = bottleneck ? Bottleneck::kExpansion : BasicBlock::kExpansion;
  int64_t inplanes = widths[0];
  if (cifar_stem || cfg.small_input) register_module("conv1", std::make_shared<Conv2d>(cfg.in_channels, inplanes, 3, 1, 1, 1, 1, false));
  else register_module("conv1", std::make_shared<Conv2d>(cfg.in_channels, inplanes, 7, 2, 3, 1, 1, false));
  register_module("bn1", std::make_shared<BatchNorm2d>(inplanes));
  register_module("relu", std::make_shared<ReLU>());
  if (has_maxpool_) register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  for (size_t s = 0; s < layers.size(); ++s) {
    const int64_t planes = widths[s], stride = s == 0 ? 1 : 2;
    auto stage = std::make_shared<Sequential>();
    for (int64_t b = 0; b < layers[s]; ++b) {
      const int64_t st = b == 0 ? stride : 1;
      const bool ds = b == 0 && (st != 1 || inplanes != planes * expansion);
      if (bottleneck) stage->push_back(std::make_shared<Bottleneck>(inplanes, planes, st, ds));
      else stage->push_back(std::make_shared<BasicBlock>(inplanes, planes, st, ds));
      inplanes = planes * expansion;
    }
    register_module("layer" + std::to_string(s + 1), stage);
  }
  register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  register_module("fc", std::make_shared<Linear>(inplanes, cfg.num_classes));
  // torchvision: kaiming_normal_(fan_out, relu) for convs, BN 1/0, fc keeps Linear's default.
  for_each_module([](const std::string&, Module& m) {
    if (auto* c = dynamic_cast<Conv2d*>(&m)) {
      Tensor w = c->weight();
      init::kaiming_normal_fan_out_(w);
    }
  });
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor h = bn_relu(*this, "bn1", run(child("conv1"), x));
  if (has_maxpool_) h = run(child("maxpool"), h);
  for (int64_t s = 1; s <= stages_; ++s) h = run(child("layer" + std::to_string(s)), h);
  h = flatten(run(child("avgpool"), h), 1);
  return run(child("fc"), h);
}

std::vector<std::vector<std::string>> ResNet::fusable_chains() const { return {{"conv1", "bn1", "relu"}}; }

}  // namespace lowbit::nn
