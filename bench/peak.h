// Measured machine peak: fp32 FMA and int8 dot-product throughput for 1..N
// threads, through the kernel table's peak probes (kernels/<isa>/peak_*.cpp).
// Used by `lowbit bench peak` and by the comparison scripts as the
// denominator of "fraction of peak".
#pragma once
#include <cstdio>
#include <functional>
#include <vector>

namespace lowbit::bench {

struct PeakPoint {
  int threads;
  double f32_gflops;  // fp32 multiply-adds × 2 per second, all threads, in 1e9
  double int8_gops;   // u8×s8 multiply-adds × 2 per second, all threads, in 1e9
};

// Each point: the best of `tries` parallel runs of at least `min_seconds`
// each, every thread running the same probe loop in one OpenMP region.
// on_point (optional) is called for each point, in thread order, at the end.
std::vector<PeakPoint> measure_peak(int max_threads, const std::function<void(const PeakPoint&)>& on_point = {},
                                    double min_seconds = 0.25, int tries = 3);

// `lowbit bench peak`: measures 1..max_threads and prints a table, or with
// json one object per line:
//   {"bench":"peak","threads":1,"f32_gflops":…,"int8_gops":…,"isa":"avx512vnni"}
void print_peak(std::FILE* out, int max_threads, bool json);

}  // namespace lowbit::bench
