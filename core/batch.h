// A labelled batch and a source of them: the words between data/ (which makes
// batches: data::DataLoader) and nn/ (which trains and evaluates on them:
// nn::Trainer, nn::evaluate), so that neither includes the other.
//
//   struct MySource : lowbit::BatchSource { ... };   // any data of your own
//   nn::evaluate(model, my_source);
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

}  // namespace lowbit
