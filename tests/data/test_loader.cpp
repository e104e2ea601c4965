// DataLoader and subsets: identical batches for 0, 1 and 4 workers, seeded
// shuffling per epoch, drop_last, the bounded prefetch queue, errors raised
// in a worker surfacing in batch order, deterministic --limit and
// train/validation split, default normalisation constants.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "data/loader.h"
#include "tests/data/helpers.h"

using namespace lowbit;
using namespace lowbit::data;
using namespace lowbit_test;

namespace {

// n images of C×H×W whose pixels encode the index; label = index % classes.
class SyntheticDataset final : public Dataset {
 public:
  SyntheticDataset(int64_t n, int64_t c, int64_t h, int64_t w, int classes = 10)
      : n_(n), c_(c), h_(h), w_(w) {
    for (int k = 0; k < classes; ++k) names_.push_back("class" + std::to_string(k));
  }
  int64_t size() const override { return n_; }
  Sample get(int64_t i) const override {
    gets.fetch_add(1);
    if (i == fail_at) lowbit::fail("synthetic image ", i, ": cannot decode image (planted failure)");
    Tensor t = Tensor::empty({c_, odd_size_at == i ? h_ + 1 : h_, w_}, DType::u8);
    for (int64_t k = 0; k < t.numel(); ++k) t.data<uint8_t>()[k] = (uint8_t)(i * 13 + k * 7);
    return {t, (int)(i % (int64_t)names_.size())};
  }
  const std::vector<std::string>& class_names() const override { return names_; }
  mutable std::atomic<int64_t> gets{0};
  int64_t fail_at = -1, odd_size_at = -1;

 private:
  int64_t n_, c_, h_, w_;
  std::vector<std::string> names_;
};

std::vector<Batch> run_epoch(const DataLoader& loader, uint64_t e) {
  std::vector<Batch> out;
  for (const Batch& b : loader.epoch(e)) out.push_back(b);
  return out;
}

bool same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k].indices != b[k].indices) return false;
    if (a[k].images.shape() != b[k].images.shape()) return false;
    if (std::memcmp(a[k].images.data<float>(), b[k].images.data<float>(), (size_t)a[k].images.numel() * 4) != 0)
      return false;
    if (a[k].labels.to_vector() != b[k].labels.to_vector()) return false;
  }
  return true;
}

TransformPtr augment() {
  return compose({random_crop(8, 2), random_horizontal_flip(), random_resized_crop(6, 6, {0.3, 1.0}), to_tensor(),
                  normalize({0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.3f})});
}

}  // namespace

TEST_CASE("loader: the same batches for 0, 1 and 4 workers") {
  auto ds = std::make_shared<SyntheticDataset>(203, 3, 8, 8);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.shuffle = true;
  opt.seed = 42;
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 4}) {
    opt.num_workers = workers;
    DataLoader loader(ds, opt, augment());
    REQUIRE(loader.num_batches() == 13);  // 12 full + one of 11
    for (uint64_t e : {0, 1}) runs.push_back(run_epoch(loader, e));
  }
  REQUIRE(runs[0].size() == 13);
  CHECK(runs[0].back().images.shape() == Shape{11, 3, 6, 6});
  CHECK(runs[0][0].labels.dtype() == DType::s32);
  CHECK(same(runs[0], runs[2]));  // epoch 0: 0 vs 1 worker
  CHECK(same(runs[0], runs[4]));  // epoch 0: 0 vs 4 workers
  CHECK(same(runs[1], runs[3]));  // epoch 1
  CHECK(same(runs[1], runs[5]));
  CHECK(!same(runs[0], runs[1]));  // epochs differ (order and augmentation)
  // Each epoch visits every sample once.
  std::set<int64_t> seen;
  for (const Batch& b : runs[1])
    for (int64_t i : b.indices) seen.insert(i);
  CHECK(seen.size() == 203);
  // A batch can be rebuilt alone (what a worker does), bit for bit.
  DataLoader loader(ds, opt, augment());
  CHECK(same({loader.make_batch(1, 5)}, {runs[1][5]}));
  // Labels follow the samples.
  for (size_t j = 0; j < runs[0][3].indices.size(); ++j)
    CHECK(runs[0][3].labels.data<int32_t>()[j] == (int32_t)(runs[0][3].indices[j] % 10));
}

TEST_CASE("loader: shuffle is a seeded permutation, per epoch") {
  auto ds = std::make_shared<SyntheticDataset>(50, 1, 2, 2);
  LoaderOptions opt;
  opt.shuffle = true;
  opt.seed = 1;
  DataLoader a(ds, opt), b(ds, opt);
  CHECK(a.epoch_order(0) == b.epoch_order(0));
  CHECK(a.epoch_order(0) != a.epoch_order(1));
  opt.seed = 2;
  CHECK(DataLoader(ds, opt).epoch_order(0) != a.epoch_order(0));
  std::vector<int64_t> sorted = a.epoch_order(3);
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 50; ++i) CHECK(sorted[(size_t)i] == i);
  opt.shuffle = false;
  std::vector<int64_t> plain = DataLoader(ds, opt).epoch_order(7);
  for (int64_t i = 0; i < 50; ++i) CHECK(plain[(size_t)i] == i);
  // Without a transform, images are ToTensor'ed: u8 / 255.
  Batch first = DataLoader(ds, opt).make_batch(0, 0);
  CHECK(first.images.data<float>()[1] == 7.0f / 255.0f);
}

TEST_CASE("loader: drop_last and batch counts") {
  auto ds = std::make_shared<SyntheticDataset>(10, 1, 2, 2);
  LoaderOptions opt;
  opt.batch_size = 4;
  for (int workers : {0, 3}) {
    opt.num_workers = workers;
    opt.drop_last = false;
    std::vector<Batch> keep = run_epoch(DataLoader(ds, opt), 0);
    REQUIRE(keep.size() == 3);
    CHECK(keep[2].images.size(0) == 2);
    opt.drop_last = true;
    std::vector<Batch> drop = run_epoch(DataLoader(ds, opt), 0);
    REQUIRE(drop.size() == 2);
    CHECK(drop[1].images.size(0) == 4);
  }
  opt.batch_size = 20;
  CHECK(DataLoader(ds, opt).num_batches() == 0);  // drop_last with fewer samples than a batch
  check_error([&] { opt.batch_size = 0; (void)DataLoader(ds, opt); }, {"batch_size"});
}

TEST_CASE("loader: workers stay within the bounded prefetch queue") {
  // No timed sleeps: the test waits until both workers report that they are
  // blocked on the full queue; from then on no sample can be read until a
  // batch is taken, so the counts are exact.
  auto ds = std::make_shared<SyntheticDataset>(1000, 1, 4, 4);
  LoaderOptions opt;
  opt.batch_size = 10;
  opt.num_workers = 2;
  opt.prefetch_factor = 3;
  DataLoader loader(ds, opt);
  auto settle = [](const DataLoader::Epoch& ep, int64_t claimed) {  // both workers idle after `claimed` batches
    for (int spin = 0; spin < 20000; ++spin) {
      const DataLoader::Epoch::Status st = ep.status();
      if (st.waiting_workers == 2 && st.claimed == claimed) return true;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    return false;
  };
  {
    DataLoader::Epoch ep = loader.epoch(0);
    // Nothing consumed: the workers fill exactly 2 × 3 batches, then wait.
    REQUIRE(settle(ep, 6));
    CHECK(ds->gets.load() == 2 * 3 * 10);
    CHECK(ep.status().made == 6);
    Batch b;
    REQUIRE(ep.next(b));
    REQUIRE(settle(ep, 7));  // one batch taken, one more made
    CHECK(ds->gets.load() == 2 * 3 * 10 + 10);
    CHECK(ep.status().consumed == 1);
  }  // leaving early stops and joins the workers
  CHECK(ds->gets.load() == 2 * 3 * 10 + 10);
}

TEST_CASE("loader: errors from workers surface in batch order, naming the sample") {
  auto ds = std::make_shared<SyntheticDataset>(40, 1, 4, 4);
  ds->fail_at = 25;  // batch 2 of 4 (batch size 10)
  LoaderOptions opt;
  opt.batch_size = 10;
  for (int workers : {0, 4}) {
    opt.num_workers = workers;
    DataLoader loader(ds, opt);
    DataLoader::Epoch ep = loader.epoch(0);
    Batch b;
    CHECK(ep.next(b));
    CHECK(ep.next(b));
    check_error([&] { ep.next(b); }, {"synthetic image 25", "planted failure"});
  }
  auto odd = std::make_shared<SyntheticDataset>(8, 1, 4, 4);
  odd->odd_size_at = 3;
  check_error([&] { run_epoch(DataLoader(odd, opt), 0); }, {"sample 3", "[1, 5, 4]", "--resize N --center-crop N"});
  // A transform that leaves u8 images is refused with the remedy.
  opt.num_workers = 0;
  check_error([&] { run_epoch(DataLoader(ds, opt, random_horizontal_flip()), 0); }, {"sample 0", "to_tensor()"});
  // A transform error names the sample too.
  check_error([&] { run_epoch(DataLoader(ds, opt, compose({random_crop(9), to_tensor()})), 0); },
              {"sample 0", "RandomCrop"});
}

TEST_CASE("subsets: --limit and the train/validation split are deterministic") {
  auto ds = std::make_shared<SyntheticDataset>(100, 1, 2, 2);
  DatasetPtr l1 = limit(ds, 30, 5), l2 = limit(ds, 30, 5), l3 = limit(ds, 30, 6);
  REQUIRE(l1->size() == 30);
  std::vector<std::string> d1, d2, d3;
  for (int64_t i = 0; i < 30; ++i) {
    d1.push_back(l1->describe(i));
    d2.push_back(l2->describe(i));
    d3.push_back(l3->describe(i));
  }
  CHECK(d1 == d2);
  CHECK(d1 != d3);
  // Kept in ascending order of the original index, labels carried through.
  int64_t prev = -1;
  for (int64_t i = 0; i < 30; ++i) {
    const int64_t orig = std::stoll(d1[(size_t)i].substr(7));  // "sample N"
    CHECK(orig > prev);
    prev = orig;
    CHECK(l1->label(i) == (int)(orig % 10));
  }
  CHECK(limit(ds, 1000) == DatasetPtr(ds));
  check_error([&] { limit(ds, 0); }, {"limit", "positive"});

  auto [train, val] = split_train_val(ds, 0.2, 9);
  REQUIRE(train->size() == 80);
  REQUIRE(val->size() == 20);
  std::set<std::string> all;
  for (int64_t i = 0; i < 80; ++i) all.insert(train->describe(i));
  for (int64_t i = 0; i < 20; ++i) all.insert(val->describe(i));
  CHECK(all.size() == 100);  // disjoint and complete
  auto [train2, val2] = split_train_val(ds, 0.2, 9);
  for (int64_t i = 0; i < 20; ++i) CHECK(val2->describe(i) == val->describe(i));
  check_error([&] { split_train_val(ds, 1.5); }, {"split_train_val", "(0, 1)"});
  check_error([&] { subset(ds, {0, 100}); }, {"subset", "index 100"});
}

TEST_CASE("defaults: normalisation constants and data location") {
  Normalization f = default_normalization("fashion-mnist");
  CHECK(f.mean == std::vector<float>{0.2860f});
  CHECK(f.std == std::vector<float>{0.3530f});
  CHECK(default_normalization("mnist").mean == std::vector<float>{0.1307f});
  CHECK(default_normalization("mnist").std == std::vector<float>{0.3081f});
  CHECK(default_normalization("cifar10").std == std::vector<float>{0.2470f, 0.2435f, 0.2616f});
  CHECK(default_normalization("imagefolder").mean == std::vector<float>{0.485f, 0.456f, 0.406f});
  check_error([] { default_normalization("svhn"); }, {"svhn", "fashion-mnist"});
  CHECK(default_data_dir("fashion-mnist") == "/usr/share/datasets/fashion-mnist");
  check_error([] { open_dataset({"cifar10"}); }, {"cifar10", "--data"});
}
