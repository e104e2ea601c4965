// The model registry (create_model by name) and the MLP.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

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

std::string hidden_text(const std::vector<int64_t>& h) {
  if (h.empty()) return "none";
  std::string s;
  for (size_t i = 0; i < h.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(h[i]);
  }
  return s;
}

std::vector<int64_t> parse_hidden(const std::string& text) {
  std::vector<int64_t> v;
  if (text == "none") return v;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    const long long x = std::strtoll(item.c_str(), &end, 10);
    LOWBIT_CHECK(!item.empty() && !*end && x >= 1 && x <= (1 << 20), "hidden layer sizes are 1 to 1048576 separated by ",
                 "commas (e.g. 1024,1024) or 'none', got '", text, "'");
    v.push_back(x);
    if (comma == std::string::npos) return v;
    start = comma + 1;
  }
}

std::map<std::string, std::string> ModelConfig::to_metadata() const {
  char w[32];
  std::snprintf(w, sizeof w, "%.6f", width_mult);
  return {{"in_channels", std::to_string(in_channels)}, {"num_classes", std::to_string(num_classes)}, {"width", w},
          {"small_input", small_input ? "1" : "0"}, {"act", relu6 ? "relu6" : "relu"}, {"hidden", hidden_text(hidden)}};
}

ModelConfig ModelConfig::from_metadata(const std::map<std::string, std::string>& md, ModelConfig c) {
  auto number = [&](const char* key, double lo, double hi) -> std::optional<double> {
    auto it = md.find(key);
    if (it == md.end()) return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    auto text = [](double x) {
      char b[32];
      std::snprintf(b, sizeof b, x == std::floor(x) ? "%.0f" : "%g", x);
      return std::string(b);
    };
    LOWBIT_CHECK(!it->second.empty() && !*end && v >= lo && v <= hi, "model metadata '", key, "' is '", it->second,
                 "', not a number from ", text(lo), " to ", text(hi));
    return v;
  };
  if (auto v = number("in_channels", 1, 1 << 16)) c.in_channels = (int64_t)*v;
  if (auto v = number("num_classes", 1, 1 << 24)) c.num_classes = (int64_t)*v;
  if (auto v = number("width", 1e-3, 1e3)) c.width_mult = (float)*v;
  if (md.count("small_input")) c.small_input = md.at("small_input") == "1";
  if (md.count("act")) {
    LOWBIT_CHECK(md.at("act") == "relu6" || md.at("act") == "relu", "model metadata 'act' is '", md.at("act"),
                 "', not relu6 or relu");
    c.relu6 = md.at("act") == "relu6";
  }
  if (md.count("hidden")) c.hidden = parse_hidden(md.at("hidden"));
  return c;
}

ModelConfig ModelConfig::from_metadata(const std::map<std::string, std::string>& md) {
  return from_metadata(md, ModelConfig{});
}

std::string describe_model(const std::string& name, const ModelConfig& c) {
  std::string s = name + " (" + std::to_string(c.in_channels) + (c.in_channels == 1 ? " channel, " : " channels, ") +
                  std::to_string(c.num_classes) + " classes";
  if (name == "mlp") s += ", hidden " + hidden_text(c.hidden);
  if (name == "mobilenet_v2") {
    char w[32];
    std::snprintf(w, sizeof w, "%g", c.width_mult);
    s += std::string(", width ") + w + ", " + (c.relu6 ? "relu6" : "relu");
  }
  if (c.small_input) s += ", small input";
  return s + ")";
}

}  // namespace lowbit::nn
