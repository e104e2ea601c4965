// Kernel thread count. One process-wide setting that every OpenMP region in
// kernels/ reads, so `--threads N` controls all of them (and oneDNN, which
// uses the same OpenMP runtime in Debian's build).
#include <omp.h>

#include <atomic>
#include <cstdlib>

#include "kernels/kernels.h"

namespace lowbit::kernels {
namespace {

int default_threads() {
  if (const char* env = std::getenv("LOWBIT_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v <= 4096) return static_cast<int>(v);
    // A malformed value falls back to the default rather than failing every kernel call.
  }
  int p = omp_get_num_procs();
  return p > 0 ? p : 1;
}

std::atomic<int>& thread_setting() {
  static std::atomic<int> n{[] {
    int d = default_threads();
    omp_set_num_threads(d);
    return d;
  }()};
  return n;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) n = 1;
  thread_setting().store(n);
  // Also the runtime default, so oneDNN's parallel regions follow the setting.
  omp_set_num_threads(n);
}

int num_threads() { return thread_setting().load(); }

}  // namespace lowbit::kernels
