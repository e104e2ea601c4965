// Stand-alone front end of the float conv benchmark (bench/conv_bench.h);
// `lowbit bench conv` runs the same code with the same options.
//   bench_conv [--threads N] [--batch N] [--reps N] [--warmup N] [--path table|im2col] [--case NAME] [--json]
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "bench/conv_bench.h"
#include "kernels/kernels.h"

namespace {

int64_t to_int(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end) throw std::invalid_argument(flag + " expects an integer, got '" + v + "'");
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  lowbit::bench::ConvBenchOptions o;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--json") {
        o.json = true;
        continue;
      }
      if (i + 1 >= argc) throw std::invalid_argument("unknown option or missing value: " + a);
      const std::string v = argv[++i];
      if (a == "--threads") {
        const int64_t t = to_int(a, v);
        if (t < 1) throw std::invalid_argument("--threads must be at least 1");
        lowbit::kernels::set_num_threads(static_cast<int>(t));
      } else if (a == "--batch") {
        o.batch = to_int(a, v);
      } else if (a == "--reps") {
        o.reps = static_cast<int>(to_int(a, v));
      } else if (a == "--warmup") {
        o.warmup = static_cast<int>(to_int(a, v));
      } else if (a == "--path") {
        o.path = v;
      } else if (a == "--case") {
        o.only = v;
      } else {
        throw std::invalid_argument("unknown option " + a);
      }
    }
    lowbit::bench::run_conv_bench(stdout, o);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "bench_conv: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_conv: %s\n", e.what());
    return 1;
  }
  return 0;
}
