#include "bench/train_bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "distill/distiller.h"
#include "core/profile.h"
#include "kernels/kernels.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "quant/quantize.h"

namespace lowbit::bench {

namespace {
nn::ModelConfig model_config(const TrainBenchOptions& o) {
  nn::ModelConfig cfg;
  cfg.in_channels = o.channels;
  cfg.num_classes = o.classes;
  cfg.width_mult = o.width;
  cfg.small_input = o.small_input;
  cfg.input_h = cfg.input_w = o.size;
  return cfg;
}
// QAT: prepare_qat with the options' preset and quantizer; float: as it is.
nn::ModulePtr maybe_qat(nn::ModulePtr model, const TrainBenchOptions& o) {
  if (o.qconfig.empty()) return model;
  const auto [first, last] = quant::first_and_last_layer(*model);
  quant::QConfig qc = quant::preset(o.qconfig, first, last);
  if (!o.quantizer.empty()) quant::set_quantizer(qc, quant::parse_quantizer(o.quantizer));
  return quant::prepare_qat(model, qc);
}
}  // namespace

void run_train_bench(std::FILE* out, const TrainBenchOptions& o) {
  manual_seed(0);
  nn::ModulePtr model = maybe_qat(nn::create_model(o.model, model_config(o)), o);
  model->train();
  nn::SGD opt(nn::no_decay_groups(model->named_parameters(), 5e-4), {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4});
  Tensor x = randn({o.batch, o.channels, o.size, o.size});
  std::vector<int32_t> labels(o.batch);
  for (int64_t i = 0; i < o.batch; ++i) labels[i] = (int32_t)(i % o.classes);
  Tensor y = Tensor::from_vector_s32(labels, {o.batch});

  auto step = [&] {
    Tensor loss = cross_entropy(model->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < o.warmup; ++i) step();
  std::vector<double> secs;
  const int64_t f0 = op_counters().flops.load();
  for (int i = 0; i < o.steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    step();
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double flops_per_step = (double)(op_counters().flops.load() - f0) / o.steps;
  std::vector<double> sorted = secs;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const double rss_mb = (double)ru.ru_maxrss / 1024.0;  // Linux: kilobytes
  const double ips = (double)o.batch / median, gflops = flops_per_step / median / 1e9;
  if (o.json) {
    std::fprintf(out,
                 "{\"bench\":\"train\",\"framework\":\"lowbit\",\"model\":\"%s\",\"width\":%g,\"batch\":%lld,"
                 "\"qconfig\":\"%s\",\"quantizer\":\"%s\","
                 "\"input\":[%lld,%lld,%lld],\"threads\":%d,\"step_ms\":%.3f,\"images_per_s\":%.1f,"
                 "\"gflop_per_step\":%.4f,\"gflops\":%.2f,\"peak_rss_mb\":%.1f}\n",
                 o.model.c_str(), o.width, (long long)o.batch, o.qconfig.c_str(), o.quantizer.c_str(),
                 (long long)o.channels, (long long)o.size,
                 (long long)o.size, kernels::num_threads(), median * 1e3, ips, flops_per_step / 1e9, gflops, rss_mb);
  } else {
    std::fprintf(out, "%s (width %g%s%s%s) batch %lld, %lldx%lldx%lld, %d threads: %.1f ms/step, %.0f img/s, %.1f GFLOP/s "
                      "(%.3f GFLOP/step), peak RSS %.0f MB\n",
                 o.model.c_str(), o.width, o.qconfig.empty() ? "" : ", QAT ", o.qconfig.c_str(),
                 o.quantizer.empty() ? "" : (" " + o.quantizer).c_str(), (long long)o.batch, (long long)o.channels, (long long)o.size,
                 (long long)o.size, kernels::num_threads(), median * 1e3, ips, gflops, flops_per_step / 1e9, rss_mb);
  }
}

void run_distill_bench(std::FILE* out, const DistillBenchOptions& d) {
  const TrainBenchOptions& o = d.student;
  manual_seed(0);
  const nn::ModelConfig cfg = model_config(o);
  nn::ModulePtr student = nn::create_model(o.model, cfg);
  nn::ModelConfig tcfg = cfg;
  tcfg.width_mult = 1.0f;
  tcfg.small_input = false;
  nn::ModulePtr teacher = nn::create_model(d.teacher, tcfg);
  distill::DistillConfig dc;
  if (!d.attention.empty()) dc.attention = distill::parse_tap_pairs(d.attention, "--attention");
  distill::Distiller dist(teacher, dc);
  Tensor x = randn({o.batch, o.channels, o.size, o.size});
  dist.prepare(*student, x.slice(0, 0, std::min<int64_t>(2, o.batch)).contiguous());
  student = maybe_qat(student, o);
  student->train();
  nn::SGD opt(nn::no_decay_groups(student->named_parameters(), 5e-4), {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4});
  std::vector<int32_t> labels(o.batch);
  for (int64_t i = 0; i < o.batch; ++i) labels[i] = (int32_t)(i % o.classes);
  Tensor y = Tensor::from_vector_s32(labels, {o.batch});
  auto update = [&](const Tensor& loss) {
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  auto plain = [&] { update(cross_entropy(student->forward(x), y)); };
  auto distilled = [&] { update(dist.step(*student, x, y).loss); };
  auto teacher_only = [&] {
    NoGradGuard ng;
    teacher->forward(x);
  };
  auto time = [](auto&& f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (int i = 0; i < o.warmup; ++i) plain(), distilled(), teacher_only();
  std::vector<double> tp, td, tt;
  for (int i = 0; i < o.steps; ++i) {
    tp.push_back(time(plain));
    td.push_back(time(distilled));
    tt.push_back(time(teacher_only));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double p = median(tp), dd = median(td), t = median(tt);
  if (o.json) {
    std::fprintf(out,
                 "{\"bench\":\"distill\",\"model\":\"%s\",\"width\":%g,\"small_input\":%s,\"teacher\":\"%s\","
                 "\"qconfig\":\"%s\",\"attention\":\"%s\",\"batch\":%lld,\"input\":[%lld,%lld,%lld],\"threads\":%d,"
                 "\"steps\":%d,\"plain_ms\":%.3f,\"distill_ms\":%.3f,\"teacher_forward_ms\":%.3f,\"overhead\":%.3f,"
                 "\"teacher_share\":%.3f}\n",
                 o.model.c_str(), o.width, o.small_input ? "true" : "false", d.teacher.c_str(), o.qconfig.c_str(),
                 d.attention.c_str(), (long long)o.batch, (long long)o.channels, (long long)o.size, (long long)o.size,
                 kernels::num_threads(), o.steps, p * 1e3, dd * 1e3, t * 1e3, dd / p, t / dd);
  } else {
    std::fprintf(out,
                 "%s (width %g%s%s%s) from a %s teacher%s%s, batch %lld, %d threads, median of %d:\n"
                 "  plain step %.1f ms, distillation step %.1f ms (%.2fx), teacher forward %.1f ms (%.0f%% of the "
                 "distillation step)\n",
                 o.model.c_str(), o.width, o.small_input ? ", small input" : "", o.qconfig.empty() ? "" : ", QAT ",
                 o.qconfig.c_str(), d.teacher.c_str(), d.attention.empty() ? "" : ", attention ", d.attention.c_str(),
                 (long long)o.batch, kernels::num_threads(), o.steps, p * 1e3, dd * 1e3, dd / p, t * 1e3,
                 100.0 * t / dd);
  }
}

}  // namespace lowbit::bench
