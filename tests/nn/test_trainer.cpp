// nn::Trainer: the one training loop. It learns, its checkpoints resume bit
// for bit, it stops when asked, it stops (or warns) on a diverging loss, and
// it refuses a resume with other settings.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <optional>
#include <set>

#include <unistd.h>

#include "core/autograd.h"
#include "core/generator.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/trainer.h"
#include "tests/nn/nn_test_util.h"
#include "tests/test_util.h"

using namespace lowbit;

namespace {

using testing::Blobs;

nn::ModulePtr small_net() {
  using namespace nn;
  return std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
      std::make_shared<Conv2d>(1, 4, 3, 1, 1), std::make_shared<BatchNorm2d>(4), std::make_shared<ReLU>(),
      std::make_shared<Flatten>(), std::make_shared<Dropout>(0.1f), std::make_shared<Linear>(64, 4)});
}

nn::TrainerConfig config(int64_t epochs) {
  nn::TrainerConfig c;
  c.epochs = epochs;
  c.optimizer = {.lr = 0.05};
  c.settings = {{"lr", "0.05"}};
  return c;
}

std::vector<float> flat_state(nn::Module& m) {
  std::vector<float> v;
  for (auto& [name, t] : m.state_dict())
    if (t.dtype() == DType::f32)
      for (float f : t.to_vector()) v.push_back(f);
  return v;
}

struct Counter : nn::TrainerCallback {
  int epochs_begun = 0, steps = 0, evals = 0, epochs_ended = 0;
  int stop_at_step = -1;
  void on_epoch_begin(nn::Module&, int64_t) override { ++epochs_begun; }
  void on_step(const nn::StepReport&) override { ++steps; }
  void before_eval(nn::Module& m) override {
    ++evals;
    CHECK(m.is_training());  // evaluate switches the mode itself
  }
  void on_epoch_end(const nn::EpochReport&) override { ++epochs_ended; }
};

}  // namespace

TEST_CASE("Trainer: learns four blobs, validates each epoch, writes the checkpoint and .best") {
  nn_test::TempDir dir;
  const BatchList train = Blobs(1, 20), val = Blobs(2, 4);
  manual_seed(0);
  nn::ModulePtr m = small_net();
  const double before = nn::evaluate(*m, val).top1;
  nn::TrainerConfig c = config(4);
  c.checkpoint = dir.file("m.safetensors");
  c.metrics = dir.file("m.jsonl");
  Counter n;
  const nn::TrainResult r = nn::Trainer(m, c, {&n}).fit(train, val);
  CHECK(n.epochs_begun == 4);
  CHECK(n.steps == 80);
  CHECK(n.evals == 4);
  CHECK(n.epochs_ended == 4);
  CHECK(before < 0.5);
  CHECK(r.last.top1 >= 0.9);  // the blobs are 4σ apart
  CHECK(r.best >= r.last.top1);
  CHECK(r.last.count == 64);
  CHECK(r.resumable == c.checkpoint);
  const SafetensorsFile f = load_safetensors(c.checkpoint);
  CHECK(f.metadata.at("epoch") == "4");
  CHECK(f.metadata.at("lr") == "0.05");
  CHECK(f.has("optim.state.5.weight.momentum_buffer"));
  CHECK(std::filesystem::exists(nn::best_path(c.checkpoint)));
  CHECK(nn::best_path("a/b.c/m.safetensors") == "a/b.c/m.best.safetensors");
  // Metrics: a step line at the first step and every 20 steps of an epoch, an epoch line per epoch.
  std::ifstream in(c.metrics);
  int steps = 0, epochs = 0;
  for (std::string line; std::getline(in, line);) (line.rfind("{\"step\"", 0) == 0 ? steps : epochs)++;
  CHECK(steps == 8);
  CHECK(epochs == 4);
}

TEST_CASE("Trainer: stopped after epoch 1 and resumed, ends bit-identical to an uninterrupted run") {
  nn_test::TempDir dir;
  const BatchList train = Blobs(1), val = Blobs(2, 2);
  manual_seed(0);
  nn::ModulePtr whole = small_net();
  nn::TrainerConfig c = config(3);
  c.checkpoint = dir.file("whole.safetensors");
  nn::Trainer(whole, c).fit(train, val);

  manual_seed(0);
  nn::ModulePtr first = small_net();
  c.checkpoint = dir.file("part.safetensors");
  c.stop_after = 1;
  const nn::TrainResult r1 = nn::Trainer(first, c).fit(train, val);
  CHECK_FALSE(r1.stopped);
  // A fresh process: another seed's weights, generator elsewhere; the checkpoint restores both.
  manual_seed(7);
  nn::ModulePtr resumed = small_net();
  c.stop_after = 0;
  c.resume = dir.file("part.safetensors");
  nn::Trainer(resumed, c).fit(train, val);
  CHECK(flat_state(*resumed) == flat_state(*whole));
  CHECK(load_safetensors(c.checkpoint).metadata.at("epoch") == "3");

  // A resume with other settings, or of a finished run, is refused naming the file.
  c.settings["lr"] = "0.1";
  CHECK(nn_test::error_of([&] { nn::Trainer(small_net(), c).fit(train, val); }).find("part.safetensors was trained with other settings: lr 0.05 (now 0.1)") != std::string::npos);
  c.settings["lr"] = "0.05";
  CHECK(nn_test::error_of([&] { nn::Trainer(small_net(), c).fit(train, val); }).find("already finished 3 of 3 epochs") != std::string::npos);
}

TEST_CASE("Trainer: a stop request ends the run at the next step, naming the checkpoint to resume") {
  nn_test::TempDir dir;
  const BatchList train = Blobs(1), val = Blobs(2, 2);
  manual_seed(0);
  nn::ModulePtr m = small_net();
  nn::TrainerConfig c = config(3);
  c.checkpoint = dir.file("m.safetensors");
  Counter n;
  c.stop_requested = [&] { return n.steps >= 11; };  // during epoch 2
  const nn::TrainResult r = nn::Trainer(m, c, {&n}).fit(train, val);
  CHECK(r.stopped);
  CHECK(r.stopped_mid_epoch);
  CHECK(r.stopped_at == 1);
  CHECK(n.steps == 11);
  CHECK(r.resumable == c.checkpoint);
  CHECK(load_safetensors(c.checkpoint).metadata.at("epoch") == "1");
}

TEST_CASE("Trainer: a loss that climbs stops the run (DivergenceError), or warns once with stop_on_divergence off") {
  const BatchList train = Blobs(1, 100), val = Blobs(2, 1);
  // The loss times 1.5^window: every window of 20 steps rises, the rule fires at the 4th.
  struct Climb : nn::TrainerCallback {
    int step = 0;
    std::vector<std::string> warned;
    std::optional<Tensor> loss(nn::Module& m, const Batch& b, Tensor& logits) override {
      logits = m.forward(b.images);
      return mul(cross_entropy(logits, b.labels), (float)std::pow(1.5, step++ / 20));
    }
    void on_warning(const std::string& t) override { warned.push_back(t); }
  };
  manual_seed(0);
  Climb climb;
  nn::TrainerConfig c = config(1);
  c.optimizer.lr = 1e-4;
  const std::string e = nn_test::error_of([&] { nn::Trainer(small_net(), c, {&climb}).fit(train, val); });
  CHECK(e.find("diverging at epoch 1 step 80: training loss rose for 3 windows of 20 steps") != std::string::npos);
  CHECK(climb.step == 80);

  Climb warn;
  c.stop_on_divergence = false;
  nn::Trainer(small_net(), c, {&warn}).fit(train, val);
  CHECK(warn.step == 100);
  REQUIRE(warn.warned.size() == 1);
  CHECK(warn.warned[0].find("warning: diverging at epoch 1 step 80") == 0);
}

TEST_CASE("Trainer: make_schedule and make_optimizer refuse unknown names; bad epochs refused") {
  nn::ScheduleConfig cyclic;
  cyclic.name = "cyclic";
  CHECK(nn_test::error_of([&] { nn::make_schedule(cyclic, 10, 1); }).find("schedule must be cosine, step, multistep or constant, got 'cyclic'") != std::string::npos);
  nn::OptimizerConfig lion;
  lion.name = "lion";
  CHECK(nn_test::error_of([&] { nn::make_optimizer({}, lion); }).find("optimizer must be sgd, adam or adamw, got 'lion'") != std::string::npos);
  nn::TrainerConfig c;
  c.epochs = 0;
  CHECK(nn_test::error_of([&] { nn::Trainer(small_net(), c); }).find("epochs must be at least 1") != std::string::npos);
  // The default multistep milestones: half and three quarters of the steps after the warm-up.
  nn::ScheduleConfig ms;
  ms.name = "multistep";
  ms.warmup_epochs = 1;
  const nn::LrSchedulePtr s = nn::make_schedule(ms, 10, 5);
  CHECK(s->lr(10 + 19, 1.0) == doctest::Approx(1.0));
  CHECK(s->lr(10 + 20, 1.0) == doctest::Approx(0.1));
  CHECK(s->lr(10 + 30, 1.0) == doctest::Approx(0.01));
}

namespace {
// The loss plus sqrt(b²) for the last layer's bias, set to 0: finite (0), but
// its gradient b/|b| is 0/0 = NaN; or a NaN loss on the batches in nan_steps.
struct NonFinite : nn::TrainerCallback {
  nn::Module* net = nullptr;
  bool bad_gradient = false;
  std::set<int> nan_steps;
  int step = 0;
  std::vector<std::string> warnings;
  std::optional<Tensor> loss(nn::Module& m, const Batch& b, Tensor& logits) override {
    logits = m.forward(b.images);
    Tensor l = cross_entropy(logits, b.labels);
    if (bad_gradient) {
      Tensor bias = net->child("5")->named_parameters().at(1).second;
      l = l + sum(sqrt(bias * bias));
    }
    if (nan_steps.count(step++)) l = l * std::nanf("");
    return l;
  }
  void on_warning(const std::string& w) override { warnings.push_back(w); }
};
}  // namespace

TEST_CASE("Trainer: a non-finite gradient stops the run naming the parameter; skip_nonfinite drops the batch, counted") {
  const BatchList train = Blobs(1), val = Blobs(2, 2);
  {
    manual_seed(0);
    nn::ModulePtr net = small_net();
    {
      NoGradGuard ng;
      Tensor bias = net->child("5")->named_parameters().at(1).second;
      std::fill_n(bias.data<float>(), bias.numel(), 0.0f);
    }
    NonFinite nf;
    nf.net = net.get(), nf.bad_gradient = true;
    nn::Trainer t(net, config(1), {&nf});
    CHECK(nn_test::error_of([&] { t.fit(train, val); }) ==
          "the gradient of '5.bias' (nan at index 0) at epoch 1 step 1 (lower the learning rate, or --on-nonfinite "
          "skip to drop such batches)");
  }
  manual_seed(0);
  nn::ModulePtr net = small_net();
  const std::vector<float> before = flat_state(*net);
  NonFinite nf;
  nf.nan_steps = {1, 3};  // the loss is NaN on the 2nd and 4th batches
  nn::TrainerConfig c = config(1);
  CHECK(nn_test::error_of([&] { nn::Trainer(net, c, {&nf}).fit(train, val); }).find("the loss is nan at epoch 1 step 2") == 0);
  c.skip_nonfinite = true;
  manual_seed(0);
  net = small_net();
  nf.step = 0, nf.warnings.clear();
  const nn::TrainResult r = nn::Trainer(net, c, {&nf}).fit(train, val);
  CHECK(r.skipped_batches == 2);
  REQUIRE(nf.warnings.size() == 2);
  CHECK(nf.warnings[0] == "warning: skipped the batch: the loss is nan at epoch 1 step 2");
  bool finite = true;
  for (float v : flat_state(*net)) finite &= std::isfinite(v);
  CHECK(finite);
  CHECK(flat_state(*net) != before);  // the other batches trained
}

TEST_CASE("Trainer: resident memory stays flat over epochs (no tensor or graph kept per step)") {
  // resnet20 at batch 8: one step's activations and autograd graph are some
  // MB, so keeping anything per step grows the process by that much an epoch.
  struct Rss : nn::TrainerCallback {
    std::vector<double> mb;
    void on_epoch_end(const nn::EpochReport&) override {
      std::ifstream f("/proc/self/statm");
      long pages_total = 0, pages_resident = 0;
      f >> pages_total >> pages_resident;
      mb.push_back((double)pages_resident * (double)::sysconf(_SC_PAGESIZE) / (1 << 20));
    }
  } rss;
  nn::ModelConfig mc;
  mc.in_channels = 1, mc.num_classes = 4;
  manual_seed(3);
  nn::ModulePtr net = nn::create_model("resnet20", mc);
  std::vector<Batch> batches;
  Generator g(4);
  for (int i = 0; i < 6; ++i) {
    std::vector<int32_t> y(8);
    for (int k = 0; k < 8; ++k) y[(size_t)k] = (i + k) % 4;
    Batch b;
    b.images = randn({8, 1, 28, 28}, &g), b.labels = Tensor::from_vector_s32(y, {8});
    batches.push_back(b);
  }
  const BatchList train(batches, 4), val(std::vector<Batch>(batches.begin(), batches.begin() + 1), 4);
  nn::Trainer(net, config(5), {&rss}).fit(train, val);
  REQUIRE(rss.mb.size() == 5);
  INFO("resident MB after each epoch: ", rss.mb[0], " ", rss.mb[1], " ", rss.mb[2], " ", rss.mb[3], " ", rss.mb[4]);
  CHECK(rss.mb[4] - rss.mb[1] <= 3.0);  // epoch 2 to 5: allocator noise, not 6 steps' activations per epoch
}
