// MobileNetV2 with torchvision's names: features.0.{0,1,2}, features.N.conv.*,
// features.18, classifier.1. The skip connection is an explicit Add child
// ("skip_add", as torchvision's quantizable MobileNetV2).
#include <algorithm>
#include <cmath>

#include "nn/init.h"
#include "nn/models.h"

namespace lowbit::nn {

int64_t make_divisible(double v, int64_t divisor) {
  int64_t nv = std::max<int64_t>(divisor, (int64_t)(v + divisor / 2.0) / divisor * divisor);
  if ((double)nv < 0.9 * v) nv += divisor;
  return nv;
}

InvertedResidual::InvertedResidual(int64_t inp, int64_t oup, int64_t stride, int64_t expand_ratio, bool relu6)
    : use_res_connect(stride == 1 && inp == oup) {
  LOWBIT_CHECK(stride == 1 || stride == 2, "InvertedResidual: stride must be 1 or 2, got ", stride);
  const int64_t hidden = (int64_t)std::lround((double)inp * (double)expand_ratio);
  const auto act = relu6 ? Activation::relu6 : Activation::relu;
  auto conv = std::make_shared<Sequential>();
  if (expand_ratio != 1) conv->push_back(std::make_shared<ConvBNReLU>(inp, hidden, 1, 1, 1, act));
  conv->push_back(std::make_shared<ConvBNReLU>(hidden, hidden, 3, stride, hidden, act));
  conv->push_back(std::make_shared<Conv2d>(hidden, oup, 1, 1, 0, 1, 1, false));
  conv->push_back(std::make_shared<BatchNorm2d>(oup));
  register_module("conv", conv);
  if (use_res_connect) register_module("skip_add", std::make_shared<Add>());
}

Tensor InvertedResidual::forward(const Tensor& x) {
  Tensor y = child("conv")->call(x);
  if (!use_res_connect) return y;
  auto add = std::dynamic_pointer_cast<Add>(child("skip_add"));
  LOWBIT_CHECK(add != nullptr, "InvertedResidual: child skip_add is not an Add");
  return add->tapped(add->forward(x, y));
}

MobileNetV2::MobileNetV2(const ModelConfig& cfg) {
  LOWBIT_CHECK(cfg.width_mult > 0, "mobilenet_v2: width multiplier must be positive, got ", cfg.width_mult);
  LOWBIT_CHECK(cfg.in_channels > 0 && cfg.num_classes > 0, "mobilenet_v2: in_channels ", cfg.in_channels,
               " and num_classes ", cfg.num_classes, " must be positive");
  const auto act = cfg.relu6 ? Activation::relu6 : Activation::relu;
  // t (expansion), c (channels), n (repeats), s (stride of the first)
  const int64_t setting[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                 {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int64_t input_channel = make_divisible(32 * cfg.width_mult, cfg.round_nearest);
  const int64_t last_channel = make_divisible(1280 * std::max(1.0f, cfg.width_mult), cfg.round_nearest);
  auto features = std::make_shared<Sequential>();
  features->push_back(std::make_shared<ConvBNReLU>(cfg.in_channels, input_channel, 3, cfg.small_input ? 1 : 2, 1, act));
  bool first_stride2 = true;
  for (const auto& row : setting) {
    const int64_t out = make_divisible(row[1] * cfg.width_mult, cfg.round_nearest);
    for (int64_t i = 0; i < row[2]; ++i) {
      int64_t stride = i == 0 ? row[3] : 1;
      if (stride == 2 && first_stride2) {
        first_stride2 = false;
        if (cfg.small_input) stride = 1;
      }
      features->push_back(std::make_shared<InvertedResidual>(input_channel, out, stride, row[0], cfg.relu6));
      input_channel = out;
    }
  }
  features->push_back(std::make_shared<ConvBNReLU>(input_channel, last_channel, 1, 1, 1, act));
  register_module("features", features);
  // torchvision pools functionally; a parameterless child (no state-dict
  // change) gives the pooled tensor a module a quantizer can attach to.
  register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  register_module("classifier", std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
                                    std::make_shared<Dropout>(cfg.dropout),
                                    std::make_shared<Linear>(last_channel, cfg.num_classes)}));
  // torchvision init: conv kaiming_normal_(fan_out), BN 1/0, Linear N(0, 0.01) with zero bias.
  for_each_module([](const std::string&, Module& m) {
    if (auto* c = dynamic_cast<Conv2d*>(&m)) {
      Tensor w = c->weight();
      init::kaiming_normal_fan_out_(w);
    } else if (auto* l = dynamic_cast<Linear*>(&m)) {
      for (auto& [pn, p] : l->named_parameters()) {
        if (pn == "weight") init::normal_(p, 0.0f, 0.01f);
        else init::constant_(p, 0.0f);
      }
    }
  });
}

Tensor MobileNetV2::forward(const Tensor& x) {
  Tensor h = child("features")->call(x);
  h = flatten(child("avgpool")->call(h), 1);
  return child("classifier")->call(h);
}

}  // namespace lowbit::nn
