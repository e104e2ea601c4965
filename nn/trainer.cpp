#include "nn/trainer.h"

#include "nn/checkpoint.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/autograd.h"
#include "core/generator.h"
#include "core/json.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "nn/clip.h"
#include "nn/metrics.h"

namespace lowbit::nn {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string fixed(double v, int prec) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

// "'layer3.2.conv1.weight' (nan at index 17)": the first parameter, in model
// order, whose gradient is not finite; "" when all are.
std::string first_nonfinite_grad(const NamedTensors& params) {
  for (const auto& [name, t] : params) {
    const int64_t i = first_nonfinite(t.grad());
    if (i < 0) continue;
    const float v = t.grad().contiguous().data<float>()[i];
    return "'" + name + "' (" + (std::isnan(v) ? "nan" : fixed(v, 1)) + " at index " + std::to_string(i) + ")";
  }
  return "";
}

// A metrics file: closed when the run ends, however it ends.
struct File {
  std::FILE* f = nullptr;
  ~File() {
    if (f) std::fclose(f);
  }
};

}  // namespace

EvalResult evaluate(const std::function<Tensor(const Tensor&)>& forward, const BatchSource& data,
                    const EvalProgress& progress) {
  NoGradGuard ng;
  ClassificationMeter meter(data.num_classes());
  const auto start = Clock::now();
  int64_t done = 0;
  data.for_each(0, [&](const Batch& b) {
    Tensor logits = forward(b.images);
    LOWBIT_CHECK(logits.dim() == 2 && logits.shape()[1] == meter.num_classes(), "evaluate: model gives logits ",
                 shape_str(logits.shape()), " but the data set has ", meter.num_classes(), " classes");
    const double loss = cross_entropy(logits, b.labels).item();
    meter.update(logits, b.labels, loss);
    done += b.labels.numel();
    if (progress) progress(done, data.num_samples(), meter.top1());
    return true;
  });
  EvalResult r;
  r.top1 = meter.top1();
  r.top5 = meter.top5();
  r.loss = meter.mean_loss();
  r.count = meter.count();
  r.seconds = since(start);
  return r;
}

EvalResult evaluate(Module& model, const BatchSource& data, const EvalProgress& progress) {
  const bool was_training = model.is_training();
  model.eval();
  EvalResult r = evaluate([&](const Tensor& x) { return model.forward(x); }, data, progress);
  model.train(was_training);
  return r;
}

std::unique_ptr<Optimizer> make_optimizer(const NamedTensors& params, const OptimizerConfig& c) {
  auto groups = no_decay_groups(params, c.weight_decay);
  if (c.name == "sgd")
    return std::make_unique<SGD>(groups, SGDOptions{.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay,
                                                    .nesterov = c.nesterov});
  if (c.name == "adam") return std::make_unique<Adam>(groups, AdamOptions{.lr = c.lr, .weight_decay = c.weight_decay});
  if (c.name == "adamw") return std::make_unique<AdamW>(groups, AdamOptions{.lr = c.lr, .weight_decay = c.weight_decay});
  throw Error("optimizer must be sgd, adam or adamw, got '" + c.name + "'");
}

LrSchedulePtr make_schedule(const ScheduleConfig& c, int64_t steps_per_epoch, int64_t epochs) {
  const int64_t total = epochs * steps_per_epoch, warmup = c.warmup_epochs * steps_per_epoch;
  LOWBIT_CHECK(c.step_epochs >= 0 && c.gamma > 0, "schedule: step every ", c.step_epochs, " epochs, gamma ", c.gamma);
  LrSchedulePtr s;
  if (c.name == "cosine") {
    s = std::make_shared<CosineAnnealingLR>(std::max<int64_t>(total - warmup, 1));
  } else if (c.name == "step") {
    const int64_t step = c.step_epochs > 0 ? c.step_epochs * steps_per_epoch : std::max<int64_t>((total - warmup) / 3, 1);
    s = std::make_shared<StepLR>(step, c.gamma);
  } else if (c.name == "multistep") {
    std::vector<int64_t> m{(total - warmup) / 2, (total - warmup) * 3 / 4};
    if (!c.milestones.empty()) {
      m.clear();
      for (int64_t e : c.milestones) {
        LOWBIT_CHECK(e >= 1 && (m.empty() || e * steps_per_epoch > m.back()), "schedule: milestones must be increasing epochs ≥ 1");
        m.push_back(e * steps_per_epoch);
      }
    }
    s = std::make_shared<MultiStepLR>(m, c.gamma);
  } else if (c.name == "constant") {
    s = std::make_shared<ConstantLR>();
  } else {
    throw Error("schedule must be cosine, step, multistep or constant, got '" + c.name + "'");
  }
  return warmup > 0 ? warmup_then(warmup, 0.1, s) : s;
}

std::string best_path(const std::string& out) {
  const auto dot = out.rfind('.');
  const auto slash = out.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return out + ".best";
  return out.substr(0, dot) + ".best" + out.substr(dot);
}

std::vector<std::array<std::string, 3>> settings_diff(const Metadata& file, const Metadata& settings) {
  std::vector<std::array<std::string, 3>> d;
  for (const auto& [k, v] : settings)
    if (file.count(k) && file.at(k) != v) d.push_back({k, file.at(k), v});
  return d;
}

Trainer::Trainer(ModulePtr model, TrainerConfig config, std::vector<TrainerCallback*> callbacks)
    : model_(std::move(model)), cfg_(std::move(config)), cbs_(std::move(callbacks)) {
  LOWBIT_CHECK(cfg_.epochs >= 1, "Trainer: epochs must be at least 1, got ", cfg_.epochs);
  if (cfg_.stop_after == 0) cfg_.stop_after = cfg_.epochs;
  LOWBIT_CHECK(cfg_.stop_after >= 1 && cfg_.stop_after <= cfg_.epochs, "Trainer: stop_after must be between 1 and ",
               cfg_.epochs);
  for (TrainerCallback* c : cbs_)
    if (Module* a = c->aux()) {
      LOWBIT_CHECK(!aux_, "Trainer: two callbacks bring aux modules");
      aux_ = a;
    }
  NamedTensors trained = model_->named_parameters();
  if (aux_)
    for (auto& [n, t] : aux_->named_parameters()) trained.emplace_back("aux." + n, t);
  opt_ = make_optimizer(trained, cfg_.optimizer);
}

Tensor Trainer::step_loss(const Batch& b, Tensor& logits) {
  for (TrainerCallback* c : cbs_)
    if (std::optional<Tensor> l = c->loss(*model_, b, logits)) return *l;
  logits = model_->forward(b.images);
  return cross_entropy(logits, b.labels, cfg_.label_smoothing);
}

Metadata Trainer::checkpoint_metadata(const Metadata& base, bool finished) {
  Metadata m = base;
  for (TrainerCallback* c : cbs_)
    for (auto& [k, v] : c->metadata(finished)) m[k] = v;
  return m;
}

TrainResult Trainer::fit(const BatchSource& train, const BatchSource& val) {
  const int64_t steps_per_epoch = train.num_batches();
  LOWBIT_CHECK(steps_per_epoch > 0, "Trainer: the training data has no batch");
  const LrSchedulePtr sched = make_schedule(cfg_.schedule, steps_per_epoch, cfg_.epochs);
  TrainResult r;
  int64_t start_epoch = 0;
  if (!cfg_.resume.empty()) {
    const std::string& from = cfg_.resume;
    const Metadata file_md = load_safetensors(from).metadata;
    for (TrainerCallback* c : cbs_) c->check_resume(file_md, from);
    const Metadata md = load_checkpoint(from, *model_, opt_.get(), true, aux_);
    auto need = [&](const char* k) {
      LOWBIT_CHECK(md.count(k), "", from, " has no '", k, "' entry; not a lowbit train checkpoint");
      return md.at(k);
    };
    std::string diff;
    for (const auto& [k, was, now] : settings_diff(md, cfg_.settings)) diff += " " + k + " " + was + " (now " + now + ")";
    LOWBIT_CHECK(diff.empty(), "", from, " was trained with other settings:", diff, "; a resumed run repeats them");
    start_epoch = std::stoll(need("epoch"));
    r.best = std::stod(need("best_accuracy"));
    // The generator where the file left it (files before "rng_seed": the caller's seed).
    if (md.count("rng_seed")) default_generator().manual_seed(std::stoull(md.at("rng_seed")));
    default_generator().set_counter(std::stoull(need("rng_counter")));
    LOWBIT_CHECK(start_epoch < cfg_.epochs, "", from, " already finished ", start_epoch, " of ", cfg_.epochs, " epochs");
    r.resumable = from;
  }
  File metrics;
  if (!cfg_.metrics.empty()) {
    // A new run starts the file; a resumed one continues it.
    metrics.f = std::fopen(cfg_.metrics.c_str(), cfg_.resume.empty() ? "w" : "a");
    LOWBIT_CHECK(metrics.f, "metrics ", cfg_.metrics, ": cannot open for writing");
  }
  for (TrainerCallback* c : cbs_) c->on_train_begin(*model_, val);

  DivergenceMonitor divergence(cfg_.divergence);
  std::vector<std::string> warned;  // warning sources reported, in order
  auto at = [](int64_t e, int64_t step) { return "epoch " + std::to_string(e + 1) + " step " + std::to_string(step + 1); };
  auto check_divergence = [&](int64_t e, int64_t step, double loss) {
    for (TrainerCallback* c : cbs_)
      for (const auto& [source, text] : c->warnings(*model_)) {
        if (std::find(warned.begin(), warned.end(), source) != warned.end()) continue;
        warned.push_back(source);
        for (TrainerCallback* o : cbs_) o->on_warning("warning at " + at(e, step) + ": " + text);
      }
    const auto why = divergence.add_loss(loss);
    if (!why) return;
    std::string msg = "diverging at " + at(e, step) + ": " + *why;
    if (!warned.empty()) {
      msg += "; LSQ steps collapsed to the clamp in " + warned[0];
      if (warned.size() > 1) msg += " and " + std::to_string(warned.size() - 1) + " more quantizers";
    }
    if (cfg_.stop_on_divergence) throw DivergenceError(msg);
    for (TrainerCallback* o : cbs_) o->on_warning("warning: " + msg);
  };
  auto stop = [&] { return cfg_.stop_requested && cfg_.stop_requested(); };
  NamedTensors named_params = model_->named_parameters();  // for naming a non-finite gradient
  if (aux_)
    for (auto& [n, t] : aux_->named_parameters()) named_params.emplace_back("aux." + n, t);
  const int64_t num_classes = train.num_classes();
  for (int64_t e = start_epoch; e < cfg_.stop_after; ++e) {
    if (stop()) {
      r.stopped = true, r.stopped_at = e;
      return r;
    }
    for (TrainerCallback* c : cbs_) c->on_epoch_begin(*model_, e);
    model_->train();
    ClassificationMeter meter(num_classes);
    int64_t step = 0, skipped = 0;
    const auto start = Clock::now();
    train.for_each((uint64_t)e, [&](const Batch& b) {
      if (stop()) return false;
      apply_schedule(*opt_, *sched, e * steps_per_epoch + step);
      Tensor logits;
      Tensor loss = step_loss(b, logits);
      const float lv = loss.item();
      // A non-finite loss or gradient: stop naming it, or drop the batch.
      auto nonfinite = [&](const std::string& what) {
        const std::string msg = what + " at epoch " + std::to_string(e + 1) + " step " + std::to_string(step + 1);
        if (!cfg_.skip_nonfinite) fail(msg, " (lower the learning rate, or --on-nonfinite skip to drop such batches)");
        opt_->zero_grad();
        ++skipped, ++r.skipped_batches;
        for (TrainerCallback* o : cbs_) o->on_warning("warning: skipped the batch: " + msg);
        ++step;
        return true;
      };
      if (!std::isfinite(lv)) return nonfinite(std::string("the loss is ") + (std::isnan(lv) ? "nan" : fixed(lv, 1)));
      check_divergence(e, step, lv);
      opt_->zero_grad();
      loss.backward();
      if (const std::string bad = first_nonfinite_grad(named_params); !bad.empty())
        return nonfinite("the gradient of " + bad);
      if (cfg_.clip_grad > 0) clip_grad_norm_(opt_->parameters(), cfg_.clip_grad);
      opt_->step();
      {
        NoGradGuard ng;
        meter.update(logits.detach(), b.labels, lv);
      }
      ++step;
      if (metrics.f && (step == 1 || step % 20 == 0)) {  // the first step: every curve starts at its run's start
        const Json line{{"step", e * steps_per_epoch + step},
                        {"epoch_progress", (double)e + (double)step / steps_per_epoch},
                        {"train_loss", meter.mean_loss()},
                        {"train_accuracy", meter.top1()},
                        {"lr", (double)opt_->lr()}};
        std::fprintf(metrics.f, "%s\n", json_line(line).c_str());
        std::fflush(metrics.f);
      }
      for (TrainerCallback* c : cbs_) c->on_step({e, step, steps_per_epoch, meter.mean_loss(), meter.top1(), opt_->lr()});
      return true;
    });
    if (stop()) {
      r.stopped = r.stopped_mid_epoch = true, r.stopped_at = e;
      return r;
    }
    EpochReport er;
    er.train_seconds = since(start);
    r.train_seconds += er.train_seconds;
    r.train_loss = meter.mean_loss();
    // A callback's finished model (QAT: frozen) replaces the resumable state
    // after the last planned epoch, and is what that epoch validates; the
    // .best copy is always the finished form.
    bool finished = false;
    if (e + 1 == cfg_.epochs)
      for (TrainerCallback* c : cbs_) finished = c->finish(*model_, train) || finished;
    for (TrainerCallback* c : cbs_) c->before_eval(*model_);
    r.last = evaluate(*model_, val, [&](int64_t done, int64_t total, double top1) {
      for (TrainerCallback* c : cbs_) c->on_eval_progress(done, total, top1);
    });
    for (TrainerCallback* c : cbs_) c->after_eval(*model_);
    Metadata md = cfg_.settings;
    md.insert(cfg_.model_metadata.begin(), cfg_.model_metadata.end());
    md.insert({{"epoch", std::to_string(e + 1)},
               {"val_accuracy", fixed(r.last.top1, 6)},
               {"rng_seed", std::to_string(default_generator().seed())},
               {"rng_counter", std::to_string(default_generator().counter())}});
    if (metrics.f) {
      const Json line{{"epoch", e + 1},
                      {"train_loss", r.train_loss},
                      {"train_accuracy", meter.top1()},
                      {"val_loss", r.last.loss},
                      {"val_accuracy", r.last.top1},
                      {"skipped_batches", skipped}};
      std::fprintf(metrics.f, "%s\n", json_line(line).c_str());
      std::fflush(metrics.f);
    }
    er.improved = r.last.top1 > r.best;
    if (er.improved) r.best = r.last.top1;
    md["best_accuracy"] = fixed(r.best, 6);
    // Never write a model lowbit would refuse to load (updates that overflowed
    // to Inf, whose later batches were skipped as non-finite).
    try {
      check_loaded_values(*model_, "after epoch " + std::to_string(e + 1));
    } catch (const Error& err) {
      fail(err.what(), "; nothing saved for this epoch (lower the learning rate)");
    }
    if (!cfg_.checkpoint.empty()) {
      save_checkpoint(cfg_.checkpoint, *model_, finished ? nullptr : opt_.get(), checkpoint_metadata(md, finished), aux_);
      if (er.improved) save_checkpoint(best_path(cfg_.checkpoint), *model_, nullptr, checkpoint_metadata(md, true), aux_);
      r.resumable = cfg_.checkpoint;
    }
    er.epoch = e + 1, er.epochs = cfg_.epochs;
    er.train_loss = r.train_loss, er.train_top1 = meter.top1();
    er.skipped_batches = skipped;
    er.val = r.last, er.best = r.best;
    for (TrainerCallback* c : cbs_) c->on_epoch_end(er);
  }
  return r;
}

}  // namespace lowbit::nn
