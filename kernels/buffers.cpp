// The size-keyed buffer cache behind kernels/buffers.h.
#include "kernels/buffers.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace lowbit::kernels {
namespace {

// A cache of freed large buffers, reused for the next allocation of the same
// rounded size. A training step allocates the same shapes every iteration;
// without the cache each large buffer went back to the OS and came back as
// fresh pages, and the page faults plus the kernel zeroing them took ~14% of
// a ResNet-20 training step on 2 threads. Small buffers
// (< 64 KiB) are left to malloc, which already reuses them.
// Bound: large buffers in use plus cached stay under max(256 MiB, twice the
// high-water mark of those in use at once). Sizes are matched exactly, so a
// step needs more cached bytes than its peak: a MobileNetV2 training step
// peaks at 762 MB in use but settles at 970 MB held. (With the cache alone
// bounded by the peak, it churned ~80 MB of fresh pages per step, ~47k page
// faults.) It is never destroyed (storages may outlive static destructors).
class BufferCache {
 public:
  static BufferCache& get() {
    static BufferCache* c = new BufferCache;
    return *c;
  }
  void* take(size_t bytes) {
    if (bytes < kMinCached) return std::aligned_alloc(64, bytes);
    {
      std::lock_guard<std::mutex> lock(m_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        note_live(bytes);
        return p;
      }
    }
    void* p = std::aligned_alloc(64, bytes);
    if (p) {
      std::lock_guard<std::mutex> lock(m_);
      note_live(bytes);
    }
    return p;
  }
  void give(void* p, size_t bytes) noexcept {
    if (bytes >= kMinCached) {
      std::lock_guard<std::mutex> lock(m_);
      live_ -= bytes;
      if (live_ + cached_ + bytes <= std::max(kMinLimit, 2 * peak_live_)) {
        try {
          free_[bytes].push_back(p);
          cached_ += bytes;
          return;
        } catch (const std::bad_alloc&) {
          // no room to remember it: give it back to the system below
        }
      }
    }
    std::free(p);
  }

 private:
  void note_live(size_t bytes) {
    live_ += bytes;
    peak_live_ = std::max(peak_live_, live_);
  }
  static constexpr size_t kMinCached = 64 << 10, kMinLimit = size_t(256) << 20;
  std::mutex m_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0, live_ = 0, peak_live_ = 0;
};

}  // namespace

void* buffer_take(size_t bytes) { return BufferCache::get().take(bytes); }
void buffer_give(void* p, size_t bytes) {
  if (p) BufferCache::get().give(p, bytes);
}

ScratchBuffer::ScratchBuffer(size_t bytes) : bytes_(buffer_round(bytes)) {
  p_ = buffer_take(bytes_);
  if (!p_) throw std::runtime_error("out of memory allocating a " + std::to_string(bytes_) + "-byte kernel scratch buffer");
}
ScratchBuffer::~ScratchBuffer() { buffer_give(p_, bytes_); }

}  // namespace lowbit::kernels
