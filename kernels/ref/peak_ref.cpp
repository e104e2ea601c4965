// Reference peak probes: plain C++ multiply-add chains, the figure a machine
// without a SIMD path gets. What instructions they become is the compiler's
// choice (with -O3 it may pack the independent lanes into SSE/NEON vectors);
// the operation count returned does not depend on it.
//
// Both probes run kLanes independent chains per iteration so the loop is
// bound by throughput, not by the latency of one chain.
#include "kernels/ref/ref.h"

namespace lowbit::kernels::ref {
namespace {
constexpr int kLanes = 16;
}  // namespace

int64_t peak_f32_fma(float* sink, int64_t iters) {
  // acc = acc·m + a converges to a/(1-m) = 1: no overflow, no denormals.
  float acc[kLanes];
  for (int j = 0; j < kLanes; ++j) acc[j] = 0.5f + 0.01f * static_cast<float>(j);
  const float m = 0.9999f, a = 0.0001f;
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < kLanes; ++j) acc[j] = acc[j] * m + a;
  float s = 0.0f;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  *sink = s;
  return iters * kLanes * 2;
}

int64_t peak_s8_dot(int32_t* sink, int64_t iters) {
  uint8_t a[kLanes];
  int8_t b[kLanes];
  for (int j = 0; j < kLanes; ++j) {
    a[j] = static_cast<uint8_t>(200 + j);
    b[j] = static_cast<int8_t>(-100 + 7 * j);
  }
  // Unsigned accumulation: wraps instead of overflowing (signed overflow is UB).
  uint32_t acc[kLanes] = {};
  for (int64_t i = 0; i < iters; ++i) {
#if defined(__GNUC__)
    // The products are loop-invariant: without this barrier the compiler
    // computes them once and turns the loop into additions (or a closed form).
    // The "memory" clobber makes it reload a[] and b[] every iteration.
    __asm__ volatile("" : : "r"(a), "r"(b) : "memory");
#endif
    for (int j = 0; j < kLanes; ++j)
      acc[j] += static_cast<uint32_t>(static_cast<int32_t>(a[j]) * static_cast<int32_t>(b[j]));
  }
  uint32_t s = 0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  *sink = static_cast<int32_t>(s);
  return iters * kLanes * 2;
}

}  // namespace lowbit::kernels::ref
