// A labelled batch and a source of them: the words between data/ (which makes
// batches: data::DataLoader) and nn/ (which trains and evaluates on them:
// nn::Trainer, nn::evaluate), so that neither includes the other.
//
//   lowbit::BatchList data({{images, labels}}, 10);   // batches in memory
//   struct MySource : lowbit::BatchSource { ... };     // or any data of your own
//   nn::evaluate(model, data);
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace lowbit {

struct Batch {
  Tensor images;                 // N×C×H×W f32
  Tensor labels;                 // N s32
  std::vector<int64_t> indices;  // data set index of each sample (may be empty)
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t num_batches() const = 0;
  virtual int64_t batch_size() const = 0;
  virtual int64_t num_samples() const = 0;  // images in one epoch
  virtual int64_t num_classes() const = 0;
  // Calls fn on each batch of epoch e in order, until fn returns false.
  virtual void for_each(uint64_t epoch, const std::function<bool(const Batch&)>& fn) const = 0;
};

// Batches held in memory, the same every epoch (labels' batch size from the first).
class BatchList : public BatchSource {
 public:
  BatchList(std::vector<Batch> batches, int64_t num_classes) : b_(std::move(batches)), classes_(num_classes) {}
  int64_t num_batches() const override { return (int64_t)b_.size(); }
  int64_t batch_size() const override { return b_.empty() ? 0 : b_[0].labels.numel(); }
  int64_t num_samples() const override {
    int64_t n = 0;
    for (const Batch& b : b_) n += b.labels.numel();
    return n;
  }
  int64_t num_classes() const override { return classes_; }
  const Batch& batch(int64_t i) const { return b_.at((size_t)i); }
  void for_each(uint64_t, const std::function<bool(const Batch&)>& fn) const override {
    for (const Batch& b : b_)
      if (!fn(b)) return;
  }

 private:
  std::vector<Batch> b_;
  int64_t classes_;
};

}  // namespace lowbit
