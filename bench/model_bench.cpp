#include "bench/model_bench.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include "core/autograd.h"
#include "core/generator.h"
#include "core/json.h"
#include "core/ops.h"
#include "kernels/kernels.h"
#include "nn/models.h"
#include "quant/convert.h"
#include "quant/engine/runner.h"
#include "quant/quantize.h"

namespace lowbit::bench {

namespace {

template <class F>
double median_ms(F&& f, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Multiply-adds × 2 of the convs and linear layers for one image.
double ops_per_image(const quant::engine::Model& m) {
  double ops = 0;
  for (const auto& op : m.ops) {
    if (op.kind != quant::engine::OpKind::conv && op.kind != quant::engine::OpKind::linear) continue;
    const Shape& out = m.values[(size_t)op.output].shape;
    const Shape& w = op.layer.weight_shape;
    ops += 2.0 * (double)shape_numel(out) * (double)(shape_numel(w) / w[0]);
  }
  return ops;
}

}  // namespace

void run_model_bench(std::FILE* out, const ModelBenchOptions& o) {
  nn::ModelConfig cfg;
  cfg.in_channels = o.channels;
  cfg.num_classes = o.classes;
  manual_seed(0);
  nn::ModulePtr model = nn::create_model(o.model, cfg);
  model->eval();
  Generator gen(1);
  const Tensor x = randn({o.batch, o.channels, o.size, o.size}, &gen);
  NoGradGuard ng;
  const char* isa = kernels::isa_name(kernels::table().isa);
  const int threads = kernels::num_threads();

  double float_ms = -1;
  if (!o.int8_only) float_ms = median_ms([&] { model->forward(x); }, o.warmup, o.reps);

  // PTQ w8a8 (MinMax activations: the calibration's quality does not change the time).
  quant::QConfig qc = quant::preset("w8a8");
  quant::set_activation_observer(qc, quant::ObserverKind::minmax);
  auto q = quant::prepare(model, qc);
  std::vector<Batch> calib;
  for (int i = 0; i < 2; ++i) calib.push_back({randn({2, o.channels, o.size, o.size}, &gen), Tensor::zeros({2}, DType::s32), {}});
  quant::calibrate(*q, BatchList(calib, 1));
  quant::freeze(*q);
  quant::engine::Runner runner(quant::convert(*q, Tensor::zeros({1, o.channels, o.size, o.size})));
  const double gops = ops_per_image(runner.model()) * (double)o.batch / 1e9;
  double int8_ms = -1;
  if (!o.float_only) int8_ms = median_ms([&] { runner.run(x); }, o.warmup, o.reps);
  if (o.profile) {
    runner.set_profiling(true);
    for (int i = 0; i < o.reps; ++i) runner.run(x);
    const auto& sec = runner.op_seconds();
    const auto& ops = runner.model().ops;
    std::map<std::string, double> by_kind;
    double total = 0;
    for (size_t i = 0; i < ops.size(); ++i) by_kind[quant::engine::op_kind_name(ops[i].kind)] += sec[i], total += sec[i];
    std::fprintf(out, "int8 %s batch %lld, %d runs: %.3f ms per run\n", o.model.c_str(), (long long)o.batch, o.reps,
                 total / o.reps * 1e3);
    for (auto& [k, s] : by_kind) std::fprintf(out, "  %-16s %8.3f ms  %5.1f%%\n", k.c_str(), s / o.reps * 1e3, 100 * s / total);
    std::vector<size_t> idx(ops.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return sec[a] > sec[b]; });
    for (size_t j = 0; j < std::min<size_t>(40, idx.size()); ++j) {
      const auto& op = ops[idx[j]];
      const Shape& in = op.inputs.empty() ? runner.model().input_shape : runner.model().values[(size_t)op.inputs[0]].shape;
      std::fprintf(out, "  %-28s %-16s in %-16s %8.3f ms\n", op.name.c_str(), quant::engine::op_kind_name(op.kind),
                   shape_str(in).c_str(), sec[idx[j]] / o.reps * 1e3);
    }
  }

  auto line = [&](const char* impl, double ms) {
    if (ms < 0) return;
    if (o.json)
      std::fprintf(out, "%s\n",
                   json_line(Json{{"bench", "models"}, {"model", o.model}, {"batch", o.batch}, {"threads", threads},
                                  {"impl", impl}, {"ms", ms}, {"isa", isa}, {"gops", gops}, {"reps", o.reps},
                                  {"warmup", o.warmup}, {"size", o.size}})
                       .c_str());
    else
      std::fprintf(out, "%-14s %-12s batch %-3lld %2d threads  %9.3f ms  %7.1f GOP/s  (%s)\n", o.model.c_str(), impl,
                   (long long)o.batch, threads, ms, gops / (ms / 1e3), isa);
  };
  line("lowbit-float", float_ms);
  line("lowbit-int8", int8_ms);
  if (!o.json && float_ms > 0 && int8_ms > 0)
    std::fprintf(out, "  int8 is %.2fx the float model's speed; %.2f GOP per forward\n", float_ms / int8_ms, gops);
}

}  // namespace lowbit::bench
