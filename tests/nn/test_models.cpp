// Module mechanics and the model zoo's structure: torchvision parameter
// counts and names, state_dict round trips, strict-load errors, repr.
#include <doctest/doctest.h>

#include "core/autograd.h"
#include "nn/models.h"
#include "tests/test_util.h"

using namespace lowbit;
using lowbit::testing::error_of;
using namespace lowbit::nn;

namespace {
bool has_key(const NamedTensors& sd, const std::string& k) {
  for (auto& [n, t] : sd)
    if (n == k) return true;
  return false;
}
}  // namespace

TEST_CASE("model zoo: torchvision parameter counts and names") {
  ModelConfig imagenet;  // 3 channels, 1000 classes
  // Counts printed by torchvision: sum(p.numel() for p in model.parameters())
  CHECK(create_model("resnet18", imagenet)->num_parameters() == 11689512);
  CHECK(create_model("resnet50", imagenet)->num_parameters() == 25557032);
  CHECK(create_model("mobilenet_v2", imagenet)->num_parameters() == 3504872);
  ModelConfig half = imagenet;
  half.width_mult = 0.5f;
  CHECK(create_model("mobilenet_v2", half)->num_parameters() == 1968680);

  auto r18 = create_model("resnet18", imagenet);
  NamedTensors sd = r18->state_dict();
  CHECK(sd.size() == 122);  // len(torchvision resnet18().state_dict())
  CHECK(sd.front().first == "conv1.weight");
  CHECK(has_key(sd, "layer1.0.conv1.weight"));
  CHECK(has_key(sd, "layer2.0.downsample.0.weight"));
  CHECK(has_key(sd, "layer2.0.downsample.1.running_var"));
  CHECK(has_key(sd, "layer4.1.bn2.num_batches_tracked"));
  CHECK(sd.back().first == "fc.bias");
  auto mb = create_model("mobilenet_v2", imagenet);
  NamedTensors msd = mb->state_dict();
  CHECK(msd.size() == 314);  // len(torchvision mobilenet_v2().state_dict())
  CHECK(has_key(msd, "features.0.0.weight"));
  CHECK(has_key(msd, "features.1.conv.0.0.weight"));  // expand_ratio 1: depthwise first
  CHECK(has_key(msd, "features.1.conv.1.weight"));
  CHECK(has_key(msd, "features.2.conv.0.0.weight"));
  CHECK(has_key(msd, "features.2.conv.3.running_mean"));
  CHECK(has_key(msd, "features.18.1.weight"));
  CHECK(has_key(msd, "classifier.1.weight"));

  ModelConfig fm{1, 10};
  auto r20 = create_model("resnet20", fm);
  CHECK(r20->named_parameters().front().second.shape() == Shape{16, 1, 3, 3});
  CHECK(r20->forward(randn({2, 1, 28, 28})).shape() == Shape{2, 10});
  fm.width_mult = 0.5f;
  fm.small_input = true;
  CHECK(create_model("mobilenet_v2", fm)->forward(randn({2, 1, 28, 28})).shape() == Shape{2, 10});
  std::string err = error_of([&] { create_model("resnet19", fm); });
  CHECK(err.find("resnet19") != std::string::npos);
  CHECK(err.find("mobilenet_v2") != std::string::npos);
}

TEST_CASE("state_dict round trip and strict load errors") {
  ModelConfig fm{1, 10};
  manual_seed(1);
  auto a = create_model("resnet20", fm);
  manual_seed(2);
  auto b = create_model("resnet20", fm);
  Tensor x = randn({2, 1, 12, 12});
  a->eval();
  b->eval();
  NoGradGuard ng;
  CHECK(a->forward(x).to_vector() != b->forward(x).to_vector());
  b->load_state_dict(a->state_dict());
  CHECK(a->forward(x).to_vector() == b->forward(x).to_vector());

  NamedTensors sd = a->state_dict();
  sd.erase(sd.begin());                                      // missing conv1.weight
  sd.emplace_back("extra.weight", Tensor::zeros({1}));       // unexpected
  for (auto& [n, t] : sd)
    if (n == "fc.weight") t = Tensor::zeros({3, 64});         // shape mismatch
  std::string err = error_of([&] { b->load_state_dict(sd); });
  CHECK(err.find("missing keys: conv1.weight") != std::string::npos);
  CHECK(err.find("unexpected keys: extra.weight") != std::string::npos);
  CHECK(err.find("fc.weight (checkpoint [3, 64], model [10, 64])") != std::string::npos);
  // num_batches_tracked may be absent
  NamedTensors no_nbt;
  for (auto& [n, t] : a->state_dict())
    if (n.find("num_batches_tracked") == std::string::npos) no_nbt.emplace_back(n, t);
  CHECK_NOTHROW(b->load_state_dict(no_nbt));
}

TEST_CASE("train/eval, zero_grad, repr") {
  auto m = std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
      std::make_shared<Conv2d>(1, 2, 3, 1, 1, 1, 1, false), std::make_shared<BatchNorm2d>(2),
      std::make_shared<ReLU>(), std::make_shared<Flatten>(), std::make_shared<Linear>(2 * 4 * 4, 3)});
  CHECK(m->repr() ==
        "Sequential(\n"
        "  (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
        "  (1): BatchNorm2d(2, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (2): ReLU()\n"
        "  (3): Flatten(start_dim=1, end_dim=-1)\n"
        "  (4): Linear(in_features=32, out_features=3, bias=True)\n"
        ")");
  Tensor x = randn({4, 1, 4, 4});
  sum(m->forward(x)).backward();
  for (auto& p : m->parameters()) CHECK(p.grad().defined());
  m->zero_grad();
  for (auto& p : m->parameters()) CHECK_FALSE(p.grad().defined());
  // BN running stats move only in training mode
  auto bn = std::static_pointer_cast<BatchNorm2d>((*m)[1]);
  std::vector<float> before = bn->state_dict()[2].second.to_vector();
  m->eval();
  CHECK_FALSE(bn->is_training());
  m->forward(x);
  CHECK(bn->state_dict()[2].second.to_vector() == before);
  m->train();
  m->forward(x);
  CHECK(bn->state_dict()[2].second.to_vector() != before);
  CHECK(bn->state_dict()[4].second.item() == 2);  // num_batches_tracked: two training forwards
}

TEST_CASE("Sequential fuses BatchNorm2d + ReLU/ReLU6 and matches running the children one by one") {
  for (bool six : {false, true}) {
    CAPTURE(six);
    ModulePtr act = six ? ModulePtr(std::make_shared<ReLU6>()) : ModulePtr(std::make_shared<ReLU>());
    auto conv = std::make_shared<Conv2d>(3, 5, 3, 1, 1, 1, 1, false);
    auto bn = std::make_shared<BatchNorm2d>(5);
    auto m = std::make_shared<Sequential>(std::initializer_list<ModulePtr>{conv, bn, act});
    Generator g(7);
    Tensor x = mul(randn({2, 3, 6, 6}, &g), 4.0f);  // wide enough that relu6 clamps at 6 too
    Tensor seed = randn({2, 5, 6, 6}, &g);
    Tensor y = m->forward(x);
    CHECK(std::string(y.grad_fn()->name()) == (six ? "BatchNormRelu6Backward" : "BatchNormReluBackward"));
    sum(mul(y, seed)).backward();
    std::vector<std::vector<float>> fused_grads;
    for (auto& p : m->parameters()) fused_grads.push_back(p.grad().to_vector());
    m->zero_grad();
    Tensor y2 = act->forward(bn->forward(conv->forward(x)));
    sum(mul(y2, seed)).backward();
    CHECK(y.to_vector() == y2.to_vector());
    size_t i = 0;
    for (auto& p : m->parameters()) CHECK(p.grad().to_vector() == fused_grads[i++]);
    // The two forwards in training mode each counted a batch.
    CHECK(bn->state_dict()[4].second.item() == 2);
  }
}

TEST_CASE("ModelConfig: to_metadata and from_metadata round trip; absent keys keep the base; bad values named") {
  nn::ModelConfig c;
  c.in_channels = 1;
  c.num_classes = 10;
  c.width_mult = 0.5f;
  c.small_input = true;
  c.relu6 = false;
  c.hidden = {64, 32};
  const auto md = c.to_metadata();
  CHECK(md.size() == 6);
  CHECK(md.at("width") == "0.500000");
  CHECK(md.at("hidden") == "64,32");
  const nn::ModelConfig r = nn::ModelConfig::from_metadata(md);
  CHECK(r.in_channels == 1);
  CHECK(r.num_classes == 10);
  CHECK(r.width_mult == 0.5f);
  CHECK(r.small_input);
  CHECK_FALSE(r.relu6);
  CHECK(r.hidden == std::vector<int64_t>{64, 32});
  CHECK(r.to_metadata() == md);
  // A file without a key says nothing about it: the base's value stays.
  nn::ModelConfig base;
  base.num_classes = 7;
  CHECK(nn::ModelConfig::from_metadata({{"in_channels", "1"}}, base).num_classes == 7);
  CHECK(nn::ModelConfig::from_metadata({{"hidden", "none"}}).hidden.empty());
  CHECK(lowbit::testing::error_of([] { nn::ModelConfig::from_metadata({{"num_classes", "ten"}}); }) ==
        "model metadata 'num_classes' is 'ten', not a number from 1 to 16777216");
  CHECK(lowbit::testing::error_of([] { nn::ModelConfig::from_metadata({{"act", "gelu"}}); }) ==
        "model metadata 'act' is 'gelu', not relu6 or relu");
  CHECK(lowbit::testing::error_of([] { nn::ModelConfig::from_metadata({{"hidden", "64,x"}}); }).find("got '64,x'") != std::string::npos);
  CHECK(nn::describe_model("mobilenet_v2", r) == "mobilenet_v2 (1 channel, 10 classes, width 0.5, relu, small input)");
  CHECK(nn::describe_model("mlp", r) == "mlp (1 channel, 10 classes, hidden 64,32, small input)");
}
