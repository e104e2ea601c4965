#include "bench/train_bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/autograd.h"
#include "core/json.h"
#include "core/ops.h"
#include "distill/distiller.h"
#include "core/profile.h"
#include "kernels/kernels.h"
#include "nn/models.h"
#include "nn/trainer.h"
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

// The seconds of each step after the first `warmup` (from one on_step to the
// next), and the FLOPs counted over them.
class StepTimer : public nn::TrainerCallback {
 public:
  explicit StepTimer(int warmup) : warmup_(warmup) {}
  void on_epoch_begin(nn::Module&, int64_t) override { last_ = std::chrono::steady_clock::now(); }
  void on_step(const nn::StepReport& r) override {
    const auto now = std::chrono::steady_clock::now();
    if (r.step > warmup_) secs.push_back(std::chrono::duration<double>(now - last_).count());
    if (r.step == warmup_) flops0_ = op_counters().flops.load();
    last_ = now;
    flops = op_counters().flops.load() - flops0_;
  }
  double median() const {
    std::vector<double> v = secs;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
  std::vector<double> secs;
  int64_t flops = 0;

 private:
  int warmup_;
  int64_t flops0_ = 0;
  std::chrono::steady_clock::time_point last_;
};

// warmup + steps SGD steps (lr 0.01, momentum 0.9, weight decay 5e-4) of
// nn::Trainer on one batch, timed per step.
StepTimer time_training(const nn::ModulePtr& model, const Batch& b, const TrainBenchOptions& o,
                        std::vector<nn::TrainerCallback*> callbacks = {}) {
  StepTimer timer(o.warmup);
  callbacks.push_back(&timer);
  nn::TrainerConfig c;
  c.optimizer = {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4};
  c.schedule.name = "constant";
  // One batch, warmup + steps times (validation: once).
  nn::Trainer(model, c, callbacks).fit(BatchList(std::vector<Batch>(o.warmup + o.steps, b), o.classes), BatchList({b}, o.classes));
  return timer;
}

Batch bench_batch(const TrainBenchOptions& o) {
  Tensor x = randn({o.batch, o.channels, o.size, o.size});
  std::vector<int32_t> labels(o.batch);
  for (int64_t i = 0; i < o.batch; ++i) labels[i] = (int32_t)(i % o.classes);
  return {x, Tensor::from_vector_s32(labels, {o.batch}), {}};
}
}  // namespace

void run_train_bench(std::FILE* out, const TrainBenchOptions& o) {
  manual_seed(0);
  nn::ModulePtr model = maybe_qat(nn::create_model(o.model, model_config(o)), o);
  const StepTimer t = time_training(model, bench_batch(o), o);
  const double flops_per_step = (double)t.flops / o.steps;
  const double median = t.median();
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const double rss_mb = (double)ru.ru_maxrss / 1024.0;  // Linux: kilobytes
  const double ips = (double)o.batch / median, gflops = flops_per_step / median / 1e9;
  if (o.json) {
    std::fprintf(out, "%s\n",
                 json_line(Json{{"bench", "train"}, {"framework", "lowbit"}, {"model", o.model}, {"width", o.width},
                                {"batch", o.batch}, {"qconfig", o.qconfig}, {"quantizer", o.quantizer},
                                {"input", {o.channels, o.size, o.size}}, {"threads", kernels::num_threads()},
                                {"step_ms", median * 1e3}, {"images_per_s", ips},
                                {"gflop_per_step", flops_per_step / 1e9}, {"gflops", gflops}, {"peak_rss_mb", rss_mb}})
                     .c_str());
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
  const Batch b = bench_batch(o);
  const Tensor& x = b.images;
  dist.prepare(*student, x.slice(0, 0, std::min<int64_t>(2, o.batch)).contiguous());
  student = maybe_qat(student, o);
  distill::DistillLoss kd(dist);
  const double p = time_training(student, b, o).median(), dd = time_training(student, b, o, {&kd}).median();
  std::vector<double> tt;
  for (int i = 0; i < o.warmup + o.steps; ++i) {
    NoGradGuard ng;
    auto t0 = std::chrono::steady_clock::now();
    teacher->forward(x);
    if (i >= o.warmup) tt.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(tt.begin(), tt.end());
  const double t = tt[tt.size() / 2];
  if (o.json) {
    std::fprintf(out, "%s\n",
                 json_line(Json{{"bench", "distill"}, {"model", o.model}, {"width", o.width},
                                {"small_input", o.small_input}, {"teacher", d.teacher}, {"qconfig", o.qconfig},
                                {"attention", d.attention}, {"batch", o.batch},
                                {"input", {o.channels, o.size, o.size}}, {"threads", kernels::num_threads()},
                                {"steps", o.steps}, {"plain_ms", p * 1e3}, {"distill_ms", dd * 1e3},
                                {"teacher_forward_ms", t * 1e3}, {"overhead", dd / p}, {"teacher_share", t / dd}})
                     .c_str());
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
