// `lowbit bench peak|conv`: front end of the benchmark library (bench/). The
// measuring code lives there, shared with the stand-alone bench executables.
//   lowbit bench peak [--threads N] [--json]
//       fp32 FMA and int8 dot-product throughput for 1..N threads
//   lowbit bench conv [--threads N] [--batch 32] [--reps 5] [--warmup 1]
//                     [--path table|im2col] [--case NAME] [--json]
//       lowbit::conv2d forward and forward+backward on the ResNet-18 shapes
//   lowbit bench train [--model resnet20] [--width W] [--batch 128] [--steps 10] [--json]
//       training step throughput, GFLOP/s and peak memory (bench/compare_train.py)
//   lowbit bench models [--model resnet18|mobilenet_v2] [--batch 1] [--reps 10] [--warmup 3] [--json]
//       whole-model inference, float vs int8 engine (bench/compare_int8.py adds PyTorch)
//   lowbit bench kernels [--threads N] [--reps 10] [--seconds 0.2] [--case TEXT] [--json]
//       int8 GEMM/conv kernels vs oneDNN's int8 primitives (ResNet-18, MobileNetV2 layers)
#include <cstdio>
#include <stdexcept>

#include "bench/conv_bench.h"
#include "bench/int8_bench.h"
#include "bench/model_bench.h"
#include "bench/peak.h"
#include "bench/train_bench.h"
#include "kernels/kernels.h"
#include "nn/models.h"
#include "tools/cli.h"

namespace lowbit::cli {

namespace {

// bench train / distill: the (student) model and the synthetic batch.
bench::TrainBenchOptions train_options(const Args& a) {
  bench::TrainBenchOptions o;
  o.model = a.get("--model");
  nn::check_model_name(o.model);
  o.width = (float)a.get_double("--width");
  o.small_input = a.has("--small-input");
  o.batch = a.get_int("--batch");
  o.size = a.get_int("--size");
  o.channels = a.get_int("--channels");
  o.classes = a.get_int("--classes");
  o.steps = (int)a.get_int("--steps");
  o.warmup = (int)a.get_int("--warmup");
  o.json = a.has("--json");
  o.qconfig = a.get("--qconfig");
  o.quantizer = a.get("--quantizer");
  if (o.batch < 1 || o.steps < 1 || o.warmup < 0) throw UsageError("--batch and --steps must be positive");
  return o;
}
}  // namespace

int cmd_bench(const Args& a) {
  const std::string what = a.positional.empty() ? "" : a.positional[0];
  if (a.positional.size() > 1) throw UsageError("one benchmark at a time (peak, conv, train, kernels or models)");
  if (what == "peak") {
    a.reject_unknown();
    bench::print_peak(stdout, kernels::num_threads(), a.has("--json"));
    return 0;
  }
  if (what == "conv") {
    a.reject_unknown();
    bench::ConvBenchOptions o;
    o.batch = a.get_int("--batch");
    o.reps = static_cast<int>(a.get_int("--reps"));
    o.warmup = static_cast<int>(a.get_int("--warmup"));
    o.path = a.get("--path");
    o.only = a.get("--case");
    o.json = a.has("--json");
    try {
      bench::run_conv_bench(stdout, o);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    return 0;
  }
  if (what == "train") {
    a.reject_unknown();
    bench::run_train_bench(stdout, train_options(a));
    return 0;
  }
  if (what == "distill") {
    a.reject_unknown();
    bench::DistillBenchOptions d;
    d.student = train_options(a);
    d.teacher = a.get("--teacher-model");
    d.attention = a.get("--attention");
    nn::check_model_name(d.teacher);
    bench::run_distill_bench(stdout, d);
    return 0;
  }
  if (what == "models") {
    a.reject_unknown();
    bench::ModelBenchOptions o;
    o.model = a.get("--model");
    nn::check_model_name(o.model);
    o.batch = a.get_int("--batch");
    o.size = a.get_int("--size");
    o.reps = (int)a.get_int("--reps");
    o.warmup = (int)a.get_int("--warmup");
    o.json = a.has("--json");
    o.int8_only = a.has("--int8-only");
    o.float_only = a.has("--float-only");
    o.profile = a.has("--profile");
    if (o.batch < 1 || o.reps < 1 || o.warmup < 0 || o.size < 32)
      throw UsageError("--batch and --reps must be positive, --warmup not negative, --size at least 32");
    if (o.int8_only && o.float_only) throw UsageError("--int8-only and --float-only contradict each other");
    bench::run_model_bench(stdout, o);
    return 0;
  }
  if (what == "kernels") {
    a.reject_unknown();
    bench::Int8BenchOptions o;
    o.max_threads = kernels::num_threads();
    o.min_reps = static_cast<int>(a.get_int("--reps"));
    o.min_seconds = a.get_double("--seconds");
    o.only = a.get("--case");
    o.json = a.has("--json");
    if (o.min_reps < 1 || o.min_seconds < 0) throw UsageError("--reps must be positive and --seconds not negative");
    bench::run_int8_bench(stdout, o);
    return 0;
  }
  throw UsageError(what.empty() ? "which benchmark? (peak, conv, train, distill, kernels or models)"
                                : "unknown benchmark '" + what + "' (peak, conv, train, distill, kernels or models)");
}

}  // namespace lowbit::cli
