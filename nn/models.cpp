// The model registry (create_model by name) and the MLP.
#include <algorithm>

#include "nn/models.h"

namespace lowbit::nn {

ModulePtr mlp(const ModelConfig& cfg) {
  LOWBIT_CHECK(cfg.input_h >= 1 && cfg.input_w >= 1, "mlp: input size ", cfg.input_h, "x", cfg.input_w);
  for (int64_t h : cfg.hidden) LOWBIT_CHECK(h >= 1, "mlp: hidden sizes must be positive, got ", h);
  auto seq = std::make_shared<Sequential>();
  seq->push_back(std::make_shared<Flatten>());
  int64_t in = cfg.in_channels * cfg.input_h * cfg.input_w;
  for (int64_t h : cfg.hidden) {
    seq->push_back(std::make_shared<Linear>(in, h));
    seq->push_back(std::make_shared<ReLU>());
    in = h;
  }
  seq->push_back(std::make_shared<Linear>(in, cfg.num_classes));
  return seq;
}

ModulePtr create_model(const std::string& name, const ModelConfig& cfg) {
  const std::vector<int64_t> imagenet{64, 128, 256, 512}, cifar{16, 32, 64};
  if (name == "resnet18") return std::make_shared<ResNet>(std::vector<int64_t>{2, 2, 2, 2}, imagenet, false, false, cfg);
  if (name == "resnet34") return std::make_shared<ResNet>(std::vector<int64_t>{3, 4, 6, 3}, imagenet, false, false, cfg);
  if (name == "resnet50") return std::make_shared<ResNet>(std::vector<int64_t>{3, 4, 6, 3}, imagenet, true, false, cfg);
  for (int depth : {20, 32, 44, 56}) {
    if (name == "resnet" + std::to_string(depth)) {
      const int64_t n = (depth - 2) / 6;
      return std::make_shared<ResNet>(std::vector<int64_t>{n, n, n}, cifar, false, true, cfg);
    }
  }
  if (name == "mobilenet_v2") return std::make_shared<MobileNetV2>(cfg);
  if (name == "mlp") return mlp(cfg);
  check_model_name(name);
  fail("internal: model '", name, "' is listed but not built");
}

void check_model_name(const std::string& name) {
  const auto names = model_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return;
  std::string known;
  for (auto& n : names) known += (known.empty() ? "" : ", ") + n;
  fail("unknown model '", name, "' (known: ", known, ")");
}

std::vector<std::string> model_names() {
  return {"resnet18", "resnet34", "resnet50", "resnet20", "resnet32", "resnet44", "resnet56", "mobilenet_v2", "mlp"};
}

}  // namespace lowbit::nn
