// `lowbit bench peak|conv`: front end of the benchmark library (bench/). The
// measuring code lives there, shared with the stand-alone bench executables.
//   lowbit bench peak [--threads N] [--json]
//       fp32 FMA and int8 dot-product throughput for 1..N threads
//   lowbit bench conv [--threads N] [--batch 32] [--reps 5] [--warmup 1]
//                     [--path table|im2col] [--case NAME] [--json]
//       lowbit::conv2d forward and forward+backward on the ResNet-18 shapes
#include <cstdio>
#include <stdexcept>

#include "bench/conv_bench.h"
#include "bench/peak.h"
#include "kernels/kernels.h"
#include "tools/cli.h"

namespace lowbit::cli {

int cmd_bench(const Args& a) {
  const std::string what = a.positional.empty() ? "" : a.positional[0];
  if (a.positional.size() > 1) throw UsageError("one benchmark at a time (peak or conv)");
  if (what == "peak") {
    a.reject_unknown({});
    bench::print_peak(stdout, kernels::num_threads(), a.has("--json"));
    return 0;
  }
  if (what == "conv") {
    a.reject_unknown({"--batch", "--reps", "--warmup", "--path", "--case"});
    bench::ConvBenchOptions o;
    o.batch = a.get_int("--batch", o.batch);
    o.reps = static_cast<int>(a.get_int("--reps", o.reps));
    o.warmup = static_cast<int>(a.get_int("--warmup", o.warmup));
    o.path = a.get("--path", o.path);
    o.only = a.get("--case", o.only);
    o.json = a.has("--json");
    try {
      bench::run_conv_bench(stdout, o);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    return 0;
  }
  throw UsageError(what.empty() ? "which benchmark? (peak or conv)"
                                : "unknown benchmark '" + what + "' (peak or conv)");
}

}  // namespace lowbit::cli
