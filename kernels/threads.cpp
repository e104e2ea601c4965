// Kernel thread count. One process-wide setting that every OpenMP region in
// kernels/ reads, so `--threads N` controls all of them (and oneDNN, which
// uses the same OpenMP runtime in Debian's build).
#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/kernels.h"

namespace lowbit::kernels {
namespace {

// A thread count from the environment: a whole number in [1, 4096]. A bad
// value is an error (as a bad LOWBIT_ISA is), not a silent fallback.
int env_threads(const char* name, std::string value) {
  if (std::string(name) == "OMP_NUM_THREADS") value = value.substr(0, value.find(','));  // "4,2": nested levels
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < 1 || v > 4096)
    throw std::runtime_error(std::string(name) + "='" + value + "' is not a thread count (a whole number from 1 to 4096)");
  return static_cast<int>(v);
}

// LOWBIT_THREADS, else OMP_NUM_THREADS (what OpenMP programs read), else all cores.
int default_threads() {
  for (const char* name : {"LOWBIT_THREADS", "OMP_NUM_THREADS"})
    if (const char* env = std::getenv(name)) return env_threads(name, env);
  return num_cores();
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

int num_cores() {
  const int p = omp_get_num_procs();
  return p > 0 ? p : 1;
}

}  // namespace lowbit::kernels
