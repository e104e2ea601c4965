// Large-buffer allocator shared by every layer: tensors' storage (core/) and
// the kernels' own scratch buffers (e.g. oneDNN's blocked copies) come from
// one size-keyed cache, so a training loop that allocates the same shapes
// every step gets its memory back without page faults, and scratch buffers
// are held only while a kernel runs.
#pragma once
#include <cstddef>

namespace lowbit::kernels {

// The size buffer_take wants for n bytes: a multiple of 64, at least 64.
inline size_t buffer_round(size_t n) { return n == 0 ? 64 : (n + 63) / 64 * 64; }

// 64-byte aligned; bytes must be a multiple of 64 (see buffer_round).
// Returns null when out of memory. Contents are unspecified (a reused
// buffer keeps its old bytes).
void* buffer_take(size_t bytes);
// Gives back a buffer from buffer_take with the same byte count.
void buffer_give(void* p, size_t bytes);

// RAII holder for a scratch buffer of at least `bytes` (rounded up to 64);
// throws std::runtime_error when out of memory.
class ScratchBuffer {
 public:
  explicit ScratchBuffer(size_t bytes);
  ~ScratchBuffer();
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  void* get() const { return p_; }

 private:
  void* p_;
  size_t bytes_;
};

}  // namespace lowbit::kernels
