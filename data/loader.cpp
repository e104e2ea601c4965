// DataLoader: workers claim batch numbers in order and leave finished batches
// in a ring of slots; the consumer takes slot k only after slots 0..k-1, so
// the output order is fixed whatever the timing. A worker may run at most
// `capacity` batches ahead of the consumer (the bounded prefetch queue).
#include "data/loader.h"

#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/generator.h"

namespace lowbit::data {

namespace {

uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr uint64_t kShuffleTag = 0x73687566666c6521ull;  // "shuffle!": keeps the order stream apart from samples'

// Batch k of an epoch whose sample order is `order`.
Batch make_batch_from(const DatasetPtr& ds, const LoaderOptions& opt, const TransformPtr& tf,
                      const std::vector<int64_t>& order, uint64_t epoch, int64_t k) {
  const int64_t start = k * opt.batch_size;
  const int64_t count = std::min<int64_t>(opt.batch_size, (int64_t)order.size() - start);
  LOWBIT_CHECK(k >= 0 && count > 0, "DataLoader: batch ", k, " out of range");
  Batch b;
  b.indices.assign(order.begin() + start, order.begin() + start + count);
  b.labels = Tensor::empty({count}, DType::s32);
  int32_t* labels = b.labels.data<int32_t>();
  float* dst = nullptr;
  int64_t sample_numel = 0;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t idx = b.indices[(size_t)j];
    Sample s = ds->get(idx);
    Generator rng(sample_seed(opt.seed, epoch, idx));
    Tensor img;
    try {
      img = tf->apply(s.image, rng);
    } catch (const Error& e) {
      fail(ds->describe(idx), ": ", e.what());
    }
    if (img.dtype() != DType::f32 || img.dim() != 3)
      fail(ds->describe(idx), ": the transform gave a ", dtype_name(img.dtype()), " tensor of shape ",
           shape_str(img.shape()), "; the loader needs f32 CxHxW (end the pipeline with to_tensor())");
    if (j == 0) {
      b.images = Tensor::empty({count, img.size(0), img.size(1), img.size(2)});
      dst = b.images.data<float>();
      sample_numel = img.numel();
    } else if (img.size(0) != b.images.size(1) || img.size(1) != b.images.size(2) ||
               img.size(2) != b.images.size(3)) {
      fail(ds->describe(idx), ": image of shape ", shape_str(img.shape()), " in a batch of ",
           shape_str(b.images.shape()), " (samples differ in size: resize them, e.g. --resize N --center-crop N, or data::with_transform)");
    }
    img = img.contiguous();
    std::memcpy(dst + j * sample_numel, img.data<float>(), (size_t)sample_numel * sizeof(float));
    labels[j] = s.label;
  }
  return b;
}

}  // namespace

uint64_t sample_seed(uint64_t seed, uint64_t epoch, int64_t index) {
  return splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ (uint64_t)index);
}

// ---------------------------------------------------------------- DataLoader

DataLoader::DataLoader(DatasetPtr dataset, LoaderOptions options, TransformPtr transform)
    : ds_(std::move(dataset)), opt_(options), transform_(transform ? std::move(transform) : to_tensor()) {
  LOWBIT_CHECK(ds_ != nullptr, "DataLoader: null dataset");
  LOWBIT_CHECK(opt_.batch_size > 0, "DataLoader: batch_size must be positive, got ", opt_.batch_size);
  LOWBIT_CHECK(opt_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ", opt_.num_workers);
  LOWBIT_CHECK(opt_.prefetch_factor >= 1, "DataLoader: prefetch_factor must be >= 1, got ", opt_.prefetch_factor);
}

int64_t DataLoader::num_batches() const {
  const int64_t n = ds_->size();
  return opt_.drop_last ? n / opt_.batch_size : (n + opt_.batch_size - 1) / opt_.batch_size;
}

std::vector<int64_t> DataLoader::epoch_order(uint64_t e) const {
  if (opt_.shuffle) return seeded_permutation(ds_->size(), splitmix64(splitmix64(opt_.seed ^ kShuffleTag) ^ e));
  std::vector<int64_t> order((size_t)ds_->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = (int64_t)i;
  return order;
}

Batch DataLoader::make_batch(uint64_t e, int64_t k) const {
  LOWBIT_CHECK(k >= 0 && k < num_batches(), "DataLoader: batch ", k, " out of range [0, ", num_batches(), ")");
  return make_batch_from(ds_, opt_, transform_, epoch_order(e), e, k);
}

DataLoader::Epoch DataLoader::epoch(uint64_t e) const { return Epoch(*this, e); }

int64_t DataLoader::num_samples() const { return opt_.drop_last ? num_batches() * opt_.batch_size : ds_->size(); }
int64_t DataLoader::num_classes() const { return ds_->num_classes(); }

void DataLoader::for_each(uint64_t e, const std::function<bool(const Batch&)>& fn) const {
  for (const Batch& b : epoch(e))
    if (!fn(b)) break;
}

// ---------------------------------------------------------------- Epoch

struct DataLoader::Epoch::State {
  struct Slot {
    bool ready = false;
    Batch batch;
    std::exception_ptr error;
  };
  // Copies of the loader's handles, so an Epoch stays valid on its own.
  DatasetPtr ds;
  LoaderOptions opt;
  TransformPtr tf;
  uint64_t epoch = 0;
  std::vector<int64_t> order;
  int64_t num_batches = 0;

  std::mutex m;
  std::condition_variable work_cv, ready_cv;
  int64_t consumed = 0;  // batches handed to the caller
  int64_t claimed = 0;   // batches taken by a worker
  int64_t capacity = 1;  // claimed - consumed never exceeds this
  int64_t waiting = 0;   // workers blocked because the queue is full
  bool stop = false;
  std::vector<Slot> ring;  // slot of batch k: ring[k % capacity]
  std::vector<std::thread> workers;

  Batch make(int64_t k) const { return make_batch_from(ds, opt, tf, order, epoch, k); }

  void worker_loop() {
    for (;;) {
      int64_t k;
      {
        std::unique_lock<std::mutex> lock(m);
        const auto may_go = [&] { return stop || claimed >= num_batches || claimed < consumed + capacity; };
        if (!may_go()) {
          ++waiting;
          work_cv.wait(lock, may_go);
          --waiting;
        }
        if (stop || claimed >= num_batches) return;
        k = claimed++;
      }
      Slot s;
      try {
        s.batch = make(k);
      } catch (...) {
        s.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(m);
        s.ready = true;
        ring[(size_t)(k % capacity)] = std::move(s);
      }
      ready_cv.notify_all();
    }
  }
};

DataLoader::Epoch::Epoch(const DataLoader& loader, uint64_t epoch) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.ds = loader.ds_;
  s.opt = loader.opt_;
  s.tf = loader.transform_;
  s.epoch = epoch;
  s.order = loader.epoch_order(epoch);
  s.num_batches = loader.num_batches();
  const int w = (int)std::min<int64_t>(s.opt.num_workers, s.num_batches);
  if (w == 0) return;
  s.capacity = (int64_t)w * s.opt.prefetch_factor;
  s.ring.resize((size_t)s.capacity);
  s.workers.reserve((size_t)w);
  for (int i = 0; i < w; ++i) s.workers.emplace_back([st = s_.get()] { st->worker_loop(); });
}

DataLoader::Epoch::Epoch(Epoch&&) noexcept = default;

DataLoader::Epoch::~Epoch() {
  if (!s_) return;
  {
    std::lock_guard<std::mutex> lock(s_->m);
    s_->stop = true;
  }
  s_->work_cv.notify_all();
  for (std::thread& t : s_->workers) t.join();
}

DataLoader::Epoch::Status DataLoader::Epoch::status() const {
  std::lock_guard<std::mutex> lock(s_->m);
  int64_t made = 0;
  for (const State::Slot& r : s_->ring) made += r.ready;
  return {s_->consumed, s_->claimed, made, s_->waiting};
}

bool DataLoader::Epoch::next(Batch& out) {
  State& s = *s_;
  if (s.workers.empty()) {
    if (s.consumed >= s.num_batches) return false;
    out = s.make(s.consumed++);
    return true;
  }
  State::Slot slot;
  {
    std::unique_lock<std::mutex> lock(s.m);
    if (s.consumed >= s.num_batches) return false;
    State::Slot& r = s.ring[(size_t)(s.consumed % s.capacity)];
    s.ready_cv.wait(lock, [&] { return r.ready; });
    slot = std::move(r);
    r = State::Slot{};
    ++s.consumed;
  }
  s.work_cv.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  out = std::move(slot.batch);
  return true;
}

}  // namespace lowbit::data
