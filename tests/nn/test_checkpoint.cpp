// Checkpoints: model + optimizer + metadata round trips, exact resume
// (2 steps, save, load into a fresh model and optimizer, 1 more step ==
// 3 steps straight, bit for bit), and errors that name the file and the key.
#include <doctest/doctest.h>

#include <fstream>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn_test_util.h"

using namespace lowbit;
using namespace lowbit::nn;
using namespace nn_test;

namespace {

ModulePtr resnet20(uint64_t seed, int64_t classes = 10) {
  manual_seed(seed);
  ModelConfig cfg;
  cfg.in_channels = 1;
  cfg.num_classes = classes;
  return create_model("resnet20", cfg);
}

void train_steps(Module& model, Optimizer& opt, const Tensor& x, const Tensor& y, int steps) {
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    cross_entropy(model.forward(x), y, 0.1f).backward();
    opt.step();
  }
}

std::vector<std::vector<float>> snapshot(const Module& m) {
  std::vector<std::vector<float>> out;
  for (auto& [n, t] : m.state_dict()) out.push_back(t.to_vector());
  return out;
}

void truncate_copy(const std::string& from, const std::string& to, size_t bytes) {
  std::ifstream in(from, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(to, std::ios::binary).write(data.data(), (std::streamsize)std::min(bytes, data.size()));
}

}  // namespace

TEST_CASE("checkpoint: 2 steps + save + load into fresh model and optimizer + 1 step == 3 steps, bit for bit") {
  TempDir dir;
  manual_seed(99);
  const Tensor x = randn({4, 1, 12, 12});
  const Tensor y = Tensor::from_vector_s32({3, 1, 4, 1}, {4});
  for (int kind = 0; kind < 2; ++kind) {
    CAPTURE(kind);
    auto make_opt = [&](const Module& m) -> std::unique_ptr<Optimizer> {
      if (kind == 0)
        return std::make_unique<SGD>(no_decay_groups(m.named_parameters(), 5e-4),
                                     SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
      return std::make_unique<Adam>(m.named_parameters(), AdamOptions{.lr = 1e-3, .weight_decay = 1e-4});
    };
    auto straight = resnet20(1);
    auto opt_straight = make_opt(*straight);
    auto first = resnet20(2);
    first->load_state_dict(straight->state_dict());
    auto opt_first = make_opt(*first);
    train_steps(*straight, *opt_straight, x, y, 3);
    train_steps(*first, *opt_first, x, y, 2);
    const std::string path = dir.file("ckpt.safetensors");
    save_checkpoint(path, *first, opt_first.get(), {{"epoch", "2"}, {"model", "resnet20"}, {"best_accuracy", "0.5"}});

    auto resumed = resnet20(3);
    auto opt_resumed = make_opt(*resumed);
    Metadata meta = load_checkpoint(path, *resumed, opt_resumed.get());
    CHECK(meta.at("epoch") == "2");
    CHECK(meta.at("model") == "resnet20");
    CHECK(meta.at("format") == kCheckpointFormat);
    for (auto& [k, v] : meta) CHECK_MESSAGE(k.rfind("optim.", 0) != 0, k);
    CHECK(opt_resumed->steps() == 2);
    CHECK(snapshot(*resumed) == snapshot(*first));
    train_steps(*resumed, *opt_resumed, x, y, 1);
    CHECK(snapshot(*resumed) == snapshot(*straight));
  }
}

TEST_CASE("checkpoint: the file is the torchvision state dict plus an 'optim.' namespace") {
  TempDir dir;
  auto model = resnet20(1);
  SGD opt(model->named_parameters(), SGDOptions{.lr = 0.1, .momentum = 0.9});
  manual_seed(5);
  train_steps(*model, opt, randn({2, 1, 8, 8}), Tensor::from_vector_s32({0, 1}, {2}), 1);
  const std::string path = dir.file("c.safetensors");
  save_checkpoint(path, *model, &opt, {{"epoch", "1"}});
  SafetensorsFile f = load_safetensors(path);
  NamedTensors model_part;
  size_t optim_tensors = 0;
  for (auto& [n, t] : f.tensors) {
    if (n.rfind("optim.", 0) == 0) ++optim_tensors;
    else model_part.emplace_back(n, t);
  }
  const NamedTensors sd = model->state_dict();
  REQUIRE(model_part.size() == sd.size());
  for (size_t i = 0; i < sd.size(); ++i) CHECK(model_part[i].first == sd[i].first);
  CHECK(optim_tensors == model->parameters().size());  // one momentum buffer each
  CHECK(f.has("optim.state.layer1.0.conv1.weight.momentum_buffer"));
  CHECK(f.metadata.at("optim.type") == "SGD");
  CHECK(f.metadata.at("epoch") == "1");

  // Model only: loads with or without an optimizer state in the file.
  auto other = resnet20(2);
  CHECK_NOTHROW(load_checkpoint(path, *other));
  CHECK(snapshot(*other) == snapshot(*model));
  save_checkpoint(dir.file("weights.safetensors"), *model);
  CHECK_FALSE(load_safetensors(dir.file("weights.safetensors")).metadata.count("optim.type"));
  SGD fresh(other->named_parameters(), SGDOptions{.lr = 0.1});
  std::string err = error_of([&] { load_checkpoint(dir.file("weights.safetensors"), *other, &fresh); });
  CHECK(contains(err, dir.file("weights.safetensors")));
  CHECK(contains(err, "holds no optimizer state"));
  CHECK(contains(error_of([&] { save_checkpoint(path, *model, nullptr, {{"optim.x", "1"}}); }), "reserved"));
}

TEST_CASE("checkpoint errors name the file: truncated, wrong shape, unknown keys, other optimizer") {
  TempDir dir;
  auto model = resnet20(1);
  SGD opt(model->named_parameters(), SGDOptions{.lr = 0.1, .momentum = 0.9});
  manual_seed(5);
  train_steps(*model, opt, randn({2, 1, 8, 8}), Tensor::from_vector_s32({0, 1}, {2}), 1);
  const std::string good = dir.file("good.safetensors");
  save_checkpoint(good, *model, &opt);

  // Truncated: in the data, inside the header, inside the length prefix.
  const size_t size = std::filesystem::file_size(good);
  for (size_t keep : {size - 100, (size_t)50, (size_t)3}) {
    CAPTURE(keep);
    const std::string bad = dir.file("cut_" + std::to_string(keep) + ".safetensors");
    truncate_copy(good, bad, keep);
    auto fresh = resnet20(2);
    const auto before = snapshot(*fresh);
    std::string err = error_of([&] { load_checkpoint(bad, *fresh); });
    CHECK_MESSAGE(contains(err, bad), err);
    CHECK(snapshot(*fresh) == before);
  }
  CHECK(contains(error_of([&] { load_checkpoint(dir.file("absent.safetensors"), *model); }), "absent.safetensors"));

  // Wrong shape: a 10-class checkpoint into a 5-class model; nothing changes.
  auto five = resnet20(2, 5);
  SGD opt5(five->named_parameters(), SGDOptions{.lr = 0.1, .momentum = 0.9});
  const auto before = snapshot(*five);
  const auto opt_before = opt5.state_dict();
  std::string err = error_of([&] { load_checkpoint(good, *five); });
  CHECK(contains(err, good));
  CHECK(contains(err, "fc.weight (checkpoint [10, 64], model [5, 64])"));
  CHECK(contains(err, "fc.bias (checkpoint [10], model [5])"));
  err = error_of([&] { load_checkpoint(good, *five, &opt5); });
  CHECK(contains(err, good));
  CHECK(contains(err, "optim.state.fc.weight.momentum_buffer' has shape [10, 64], expected [5, 64]"));
  CHECK(snapshot(*five) == before);
  CHECK(opt5.state_dict().tensors.size() == opt_before.tensors.size());

  // Unknown and missing keys: a resnet32 checkpoint into a resnet20 (strict), then non-strict.
  manual_seed(3);
  auto r32 = create_model("resnet32", ModelConfig{1, 10});
  const std::string deeper = dir.file("resnet32.safetensors");
  save_checkpoint(deeper, *r32);
  err = error_of([&] { load_checkpoint(deeper, *model); });
  CHECK(contains(err, deeper));
  CHECK(contains(err, "unexpected keys: layer1.3.conv1.weight"));
  auto small = resnet20(4);
  CHECK_NOTHROW(load_checkpoint(deeper, *small, nullptr, /*strict=*/false));
  CHECK(small->state_dict()[0].second.to_vector() == r32->state_dict()[0].second.to_vector());

  // Another optimizer type.
  Adam adam(model->named_parameters(), AdamOptions{});
  err = error_of([&] { load_checkpoint(good, *model, &adam); });
  CHECK(contains(err, good));
  CHECK(contains(err, "optimizer state is for SGD, this optimizer is Adam"));
}
