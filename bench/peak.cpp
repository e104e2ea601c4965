// Peak driver: times the kernel table's peak probes (the ISA loops live in
// kernels/, this file only counts and times them).
#include "bench/peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/json.h"
#include "kernels/kernels.h"

namespace lowbit::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Operations per second of `threads` threads each running `iters` iterations
// of the probe. Counts the operations the threads report, so a runtime that
// starts fewer threads than asked cannot inflate the figure.
template <class Sink>
double run_rate(int64_t (*probe)(Sink*, int64_t), int threads, int64_t iters) {
  std::vector<Sink> sinks(static_cast<size_t>(threads));
  int64_t ops = 0;
  const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : ops)
  { ops += probe(&sinks[static_cast<size_t>(omp_get_thread_num())], iters); }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return static_cast<double>(ops) / s;
}

// Iterations that take about `seconds` on one thread.
template <class Sink>
int64_t calibrate(int64_t (*probe)(Sink*, int64_t), double seconds) {
  int64_t iters = 1 << 12;
  for (;;) {
    const auto t0 = Clock::now();
    Sink sink{};
    probe(&sink, iters);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s >= 0.02) return std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(iters) * seconds / s));
    iters *= 4;
  }
}

}  // namespace

std::vector<PeakPoint> measure_peak(int max_threads, const std::function<void(const PeakPoint&)>& on_point,
                                    double min_seconds, int tries) {
  const kernels::PeakProbes& p = kernels::table().peak;
  // 10% margin so a calibration on a slightly faster moment still gives ≥ min_seconds.
  const int64_t f32_iters = calibrate(p.f32_fma, min_seconds * 1.1);
  const int64_t s8_iters = calibrate(p.s8_dot, min_seconds * 1.1);
  // Tries are interleaved across thread counts (1..N, 1..N, …) so that a
  // short disturbance from another process spoils one try of each count,
  // not all tries of one.
  std::vector<PeakPoint> out;
  for (int t = 1; t <= max_threads; ++t) out.push_back({t, 0.0, 0.0});
  for (int i = 0; i < tries; ++i)
    for (PeakPoint& pt : out) {
      pt.f32_gflops = std::max(pt.f32_gflops, run_rate(p.f32_fma, pt.threads, f32_iters) * 1e-9);
      pt.int8_gops = std::max(pt.int8_gops, run_rate(p.s8_dot, pt.threads, s8_iters) * 1e-9);
    }
  if (on_point)
    for (const PeakPoint& pt : out) on_point(pt);
  return out;
}

void print_peak(std::FILE* out, int max_threads, bool json) {
  const kernels::KernelTable& t = kernels::table();
  const char* isa = kernels::isa_name(t.isa);
  if (!json)
    std::fprintf(out, "machine peak, path %s (%s), best of 3 runs of >= 0.25 s\n%7s %12s %12s\n", isa,
                 t.peak.name, "threads", "f32 GFLOP/s", "int8 GOP/s");
  measure_peak(max_threads, [&](const PeakPoint& pt) {
    if (json)
      std::fprintf(out, "%s\n",
                   json_line(Json{{"bench", "peak"}, {"threads", pt.threads}, {"f32_gflops", pt.f32_gflops},
                                  {"int8_gops", pt.int8_gops}, {"isa", isa}})
                       .c_str());
    else
      std::fprintf(out, "%7d %12.1f %12.1f\n", pt.threads, pt.f32_gflops, pt.int8_gops);
    std::fflush(out);
  });
}

}  // namespace lowbit::bench
