// Operation counters for benchmarks: floating-point operations (2 per
// multiply-add) done by the matmul-class ops — conv2d, matmul, linear —
// forward and backward. Cheap (one relaxed atomic add per op call); read
// the difference around the work you measure.
#pragma once
#include <atomic>
#include <cstdint>

namespace lowbit {

struct OpCounters {
  std::atomic<int64_t> flops{0};
};
OpCounters& op_counters();
inline void count_flops(int64_t n) { op_counters().flops.fetch_add(n, std::memory_order_relaxed); }

}  // namespace lowbit
