// Models with torchvision's structure and parameter names, so state dicts
// move between lowbit and PyTorch unchanged.
//
//   resnet18/34/50      torchvision.models.resnet* (BasicBlock / Bottleneck, ImageNet stem)
//   resnet20/32/44/56   CIFAR-style: 3×3 stem (16 ch, stride 1, no max-pool), stages 16/32/64,
//                       BasicBlocks, option-B shortcuts (1×1 conv + BN "downsample" as torchvision)
//   mobilenet_v2        torchvision.models.mobilenet_v2(width_mult, round_nearest)
//   mlp                 nn.Sequential(nn.Flatten(), nn.Linear(C·H·W, h1), nn.ReLU(), …, nn.Linear(hk, classes))
//                       (parameter names "1.weight", "3.weight", …, as that Sequential in PyTorch)
//
// Only the first conv's input channels and the classifier's size follow the
// config. small_input (opt-in) adapts the ImageNet models to 28×28 / 32×32:
// resnet18/34/50 get a 3×3 stride-1 stem without max-pool; mobilenet_v2's
// stem and its first stride-2 stage use stride 1.
#pragma once
#include <map>
#include <string>

#include "nn/layers.h"

namespace lowbit::nn {

struct ModelConfig {
  int64_t in_channels = 3;
  int64_t num_classes = 1000;
  float width_mult = 1.0f;      // mobilenet_v2
  int64_t round_nearest = 8;    // mobilenet_v2
  bool small_input = false;
  bool relu6 = true;            // mobilenet_v2 activation: ReLU6 (torchvision) or ReLU
  float dropout = 0.2f;         // mobilenet_v2 classifier dropout
  std::vector<int64_t> hidden{1024, 1024};  // mlp: hidden layer sizes (none: one linear layer)
  int64_t input_h = 28, input_w = 28;       // mlp: image size (its first layer takes C·H·W)

  // How a checkpoint describes the model besides its name ("model"): the
  // keys in_channels, num_classes, width, small_input, act and hidden. Every
  // writer of a checkpoint or int8 file uses this; every reader from_metadata.
  std::map<std::string, std::string> to_metadata() const;
  // `base` with the keys of md that are present; Error naming the key and
  // value that do not parse.
  static ModelConfig from_metadata(const std::map<std::string, std::string>& md, ModelConfig base);
  static ModelConfig from_metadata(const std::map<std::string, std::string>& md);  // base: the defaults
};

// "resnet20 (1 channel, 10 classes)", "mobilenet_v2 (1 channel, 10 classes,
// width 0.5, relu6, small input)", "mlp (1 channel, 10 classes, hidden 64,32)".
std::string describe_model(const std::string& name, const ModelConfig& c);
std::string hidden_text(const std::vector<int64_t>& hidden);  // "1024,1024"; "none" for no hidden layer
std::vector<int64_t> parse_hidden(const std::string& text);  // its inverse; Error naming the text

class BasicBlock : public Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, bool downsample);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }
  std::vector<std::vector<std::string>> fusable_chains() const override;
};

class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, bool downsample);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Bottleneck"; }
  std::vector<std::vector<std::string>> fusable_chains() const override;
};

class ResNet : public Module {
 public:
  // blocks per stage; widths per stage (64,128,256,512 or 16,32,64); bottleneck or basic.
  ResNet(const std::vector<int64_t>& layers, const std::vector<int64_t>& widths, bool bottleneck, bool cifar_stem,
         const ModelConfig& cfg);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ResNet"; }
  std::vector<std::vector<std::string>> fusable_chains() const override;

 private:
  bool has_maxpool_;
  int64_t stages_;
};

class InvertedResidual : public Module {
 public:
  InvertedResidual(int64_t inp, int64_t oup, int64_t stride, int64_t expand_ratio, bool relu6);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "InvertedResidual"; }
  bool use_res_connect;
};

class MobileNetV2 : public Module {
 public:
  explicit MobileNetV2(const ModelConfig& cfg);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MobileNetV2"; }
};

// The MLP above (a Sequential).
ModulePtr mlp(const ModelConfig& cfg);

// torchvision's _make_divisible.
int64_t make_divisible(double v, int64_t divisor);

// By name: resnet18|resnet34|resnet50|resnet20|resnet32|resnet44|resnet56|mobilenet_v2|mlp.
// Unknown names are an error that lists the known ones.
ModulePtr create_model(const std::string& name, const ModelConfig& cfg);
std::vector<std::string> model_names();
// Throws lowbit::Error "unknown model 'x' (known: …)" unless name is in model_names().
void check_model_name(const std::string& name);

}  // namespace lowbit::nn
