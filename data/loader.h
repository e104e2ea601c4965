// DataLoader: batches of transformed samples, as torch.utils.data.DataLoader,
// with worker threads and a bounded prefetch queue.
//
//   DataLoader loader(open_dataset({"fashion-mnist"}), {.batch_size = 128, .shuffle = true,
//                     .num_workers = 2, .seed = 1},
//                     compose({random_crop(28, 2), random_horizontal_flip(), to_tensor(),
//                              normalize({0.2860f}, {0.3530f})}));
//   for (int e = 0; e < epochs; ++e)
//     for (const Batch& b : loader.epoch(e)) train_step(b.images, b.labels);
//
// Determinism ("pinned order"): an epoch's sample order is a permutation
// seeded by (seed, epoch), and sample i's transforms draw from a Generator
// seeded by sample_seed(seed, epoch, i) — never from shared state or thread
// order. Batch k always holds the same samples, transformed the same way,
// and batches come out in order 0, 1, 2, …: the result is bit-identical for
// 0, 1 or any number of workers.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/batch.h"
#include "core/tensor.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace lowbit::data {

using Batch = lowbit::Batch;  // core/batch.h

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = false;
  bool drop_last = false;  // drop a final batch smaller than batch_size
  int num_workers = 0;     // 0: batches are made in the caller's thread, on demand
  // Batches made ahead per worker (PyTorch's prefetch_factor); the queue of
  // finished-but-unconsumed batches never exceeds num_workers × this.
  int prefetch_factor = 2;
  uint64_t seed = 0;
};

// The per-sample generator seed: a mix of (seed, epoch, index).
uint64_t sample_seed(uint64_t seed, uint64_t epoch, int64_t index);

// A BatchSource (core/batch.h): what nn::Trainer and nn::evaluate read.
class DataLoader : public BatchSource {
 public:
  // transform: applied to every sample; must produce f32 C×H×W of one shape
  // for all samples of a batch. Null = to_tensor().
  DataLoader(DatasetPtr dataset, LoaderOptions options, TransformPtr transform = nullptr);

  int64_t num_batches() const override;
  int64_t batch_size() const override { return opt_.batch_size; }
  int64_t num_samples() const override;  // without the batch drop_last drops
  int64_t num_classes() const override;
  void for_each(uint64_t epoch, const std::function<bool(const Batch&)>& fn) const override;
  const LoaderOptions& options() const { return opt_; }
  const DatasetPtr& dataset() const { return ds_; }
  // The dataset indices of epoch `e` in batch order (before drop_last).
  std::vector<int64_t> epoch_order(uint64_t e) const;
  // Batch k of epoch e, made in the calling thread (what each worker runs).
  Batch make_batch(uint64_t e, int64_t k) const;

  class Epoch;
  // One pass over the data. Starts the workers; they stop when the Epoch is
  // destroyed (also if the consumer leaves early or an exception escapes).
  Epoch epoch(uint64_t e) const;

 private:
  DatasetPtr ds_;
  LoaderOptions opt_;
  TransformPtr transform_;
};

class DataLoader::Epoch {
 public:
  Epoch(const DataLoader& loader, uint64_t epoch);
  ~Epoch();
  Epoch(Epoch&&) noexcept;
  Epoch& operator=(Epoch&&) = delete;
  Epoch(const Epoch&) = delete;

  // The next batch into `out`; false when the epoch is done. An error raised
  // while making a batch (bad image, shape mismatch) is rethrown here, in
  // batch order.
  bool next(Batch& out);

  // Where the epoch stands (for progress displays, profiles and tests):
  // batches handed out, taken by a worker, made and not yet handed out, and
  // workers idle because the prefetch queue is full. With no workers, batches
  // are made in next(): claimed = consumed, made = waiting_workers = 0.
  struct Status {
    int64_t consumed, claimed, made, waiting_workers;
  };
  Status status() const;

  class iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(Epoch* e) : e_(e) { ++*this; }
    const Batch& operator*() const { return b_; }
    const Batch* operator->() const { return &b_; }
    iterator& operator++() {
      if (e_ && !e_->next(b_)) e_ = nullptr;
      return *this;
    }
    bool operator==(const iterator& o) const { return e_ == o.e_; }
    bool operator!=(const iterator& o) const { return e_ != o.e_; }

   private:
    Epoch* e_ = nullptr;
    Batch b_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace lowbit::data
