// `lowbit train`: float training with per-epoch validation, best-checkpoint
// saving and exact resume — the flags into nn::Trainer (nn/trainer.h), which
// is the loop; `lowbit qat` and `distill` add their callbacks (TrainVariant).
//
// Files: --out F is written after every epoch (model + optimizer + epoch +
// generator position: `--resume F` continues bit for bit); the best
// validation accuracy so far is also written to F with ".best" before the
// extension. The learning-rate schedule is evaluated per iteration
// (t = global step), so a resumed run sees the same rates. `--stop-after E`
// stops after epoch E of the planned --epochs; `--resume F` then continues
// and ends bit-identical to an uninterrupted run.
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

#include "core/generator.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "nn/checkpoint.h"
#include "nn/trainer.h"
#include "core/strings.h"
#include "tools/common.h"
#include "core/json.h"
#include "tools/progress.h"

namespace lowbit::cli {

namespace {

std::string fmt(double v, int prec = 4) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// The optimizer, schedule, epochs and policies from the flags (usage errors as before any work).
nn::TrainerConfig trainer_config(const Args& a) {
  nn::TrainerConfig c;
  c.epochs = a.get_int("--epochs");
  // --stop-after E: run the schedule planned for --epochs but stop after
  // epoch E (a long run split into resumable pieces).
  c.stop_after = a.get_int("--stop-after", c.epochs);
  c.optimizer = {.name = a.get("--optimizer"), .lr = a.get_double("--lr"),
                 .momentum = a.get_double("--momentum"), .weight_decay = a.get_double("--wd"),
                 .nesterov = a.has("--nesterov")};
  c.label_smoothing = (float)a.get_double("--label-smoothing");
  c.clip_grad = a.get_double("--clip-grad");
  c.schedule.name = a.get("--schedule");
  c.schedule.warmup_epochs = a.get_int("--warmup-epochs");
  c.schedule.gamma = a.get_double("--lr-gamma");
  // Flags that would do nothing are refused, not ignored.
  if (c.optimizer.name != "sgd")
    for (const char* f : {"--nesterov", "--momentum"})
      if (a.has(f)) throw UsageError(std::string(f) + " is an SGD option; --optimizer " + c.optimizer.name + " has no momentum setting");
  if (c.schedule.warmup_epochs < 0 || c.schedule.warmup_epochs > c.epochs)
    throw UsageError("--warmup-epochs " + std::to_string(c.schedule.warmup_epochs) + " must be between 0 and --epochs (" +
                     std::to_string(c.epochs) + ")");
  // --on-divergence stop|warn: what a run does when its training loss
  // diverges (nn/divergence.h's rule): stop with exit 2, naming the cause and
  // the LSQ steps that collapsed (the last finished epoch's checkpoint
  // stays), or warn once and go on. An LSQ step collapsing to the clamp is
  // always a warning, once per quantizer: a dead channel's step may learn to
  // zero in a healthy low-bit run; a collapse followed by a rising loss stops.
  const std::string on_divergence = a.get("--on-divergence");
  if (on_divergence != "stop" && on_divergence != "warn")
    throw UsageError("--on-divergence must be stop or warn, got '" + on_divergence + "'");
  c.stop_on_divergence = on_divergence == "stop";
  // --on-nonfinite stop|skip: a NaN or Inf loss or gradient ends the run
  // naming the step and the first parameter whose gradient it reached, or
  // drops that batch (counted in the epoch line and the metrics).
  const std::string on_nonfinite = a.get("--on-nonfinite");
  if (on_nonfinite != "stop" && on_nonfinite != "skip")
    throw UsageError("--on-nonfinite must be stop or skip, got '" + on_nonfinite + "'");
  c.skip_nonfinite = on_nonfinite == "skip";
  if (c.epochs < 1) throw UsageError("--epochs must be at least 1");
  if (c.stop_after < 1 || c.stop_after > c.epochs) throw UsageError("--stop-after must be between 1 and --epochs");
  if (a.get_int("--batch") < 1) throw UsageError("--batch must be at least 1");
  if (a.get_int("--workers") < 0) throw UsageError("--workers must be 0 or more");
  if (!(c.optimizer.lr > 0)) throw UsageError("--lr must be positive");
  if (c.label_smoothing < 0 || c.label_smoothing >= 1) throw UsageError("--label-smoothing must be in [0, 1)");
  if (a.has("--resume") && a.has("--init"))
    throw UsageError("--resume continues a run, --init starts one from weights: give one of them");
  // --lr-step E and --lr-milestones a,b count epochs after the warm-up, as in
  // torchvision's reference scripts; without them: a third of the run, and
  // its half and three quarters.
  if (a.has("--lr-step")) c.schedule.step_epochs = a.get_int("--lr-step");
  if (a.has("--lr-milestones"))
    for (float m : parse_floats("--lr-milestones", a.get("--lr-milestones", ""))) {
      if (m != std::floor(m) || m < 1 || (!c.schedule.milestones.empty() && (int64_t)m <= c.schedule.milestones.back()))
        throw UsageError("--lr-milestones expects increasing whole epochs, got '" + a.get("--lr-milestones", "") + "'");
      c.schedule.milestones.push_back((int64_t)m);
    }
  if (a.has("--lr-step") && c.schedule.step_epochs < 1) throw UsageError("--lr-step must be at least 1 epoch");
  if (!(c.schedule.gamma > 0)) throw UsageError("--lr-gamma must be positive");
  const std::string& sched = c.schedule.name;
  for (const auto& [flag, want] : {std::pair{"--lr-step", "step"}, std::pair{"--lr-milestones", "multistep"}})
    if (a.has(flag) && sched != want)
      throw UsageError(std::string(flag) + " needs --schedule " + want + " (the schedule is " + sched + ")");
  if (a.has("--lr-gamma") && sched != "step" && sched != "multistep")
    throw UsageError("--lr-gamma needs --schedule step or multistep (the schedule is " + sched + ")");
  if (sched != "cosine" && sched != "step" && sched != "multistep" && sched != "constant")
    throw UsageError("--schedule must be cosine, step, multistep or constant, got '" + sched + "'");
  const std::string& opt = c.optimizer.name;
  if (opt != "sgd" && opt != "adam" && opt != "adamw")
    throw UsageError("--optimizer must be sgd, adam or adamw, got '" + opt + "'");
  return c;
}

// The settings a resumed run must repeat to continue bit for bit; saved in
// every checkpoint (metadata key = the flag without "--").
nn::Metadata train_settings(const Args& a, const DataFlags& df, const nn::TrainerConfig& c) {
  return {{"dataset", df.dataset}, {"limit", std::to_string(df.limit)}, {"val-split", num(a.get_double("--val-split"))},
          {"val-limit", std::to_string(a.get_int("--val-limit", 0))}, {"seed", std::to_string(a.get_int("--seed"))},
          {"epochs", std::to_string(c.epochs)}, {"batch", std::to_string(a.get_int("--batch"))},
          {"lr", num(c.optimizer.lr)}, {"momentum", num(c.optimizer.momentum)}, {"wd", num(c.optimizer.weight_decay)},
          {"optimizer", c.optimizer.name}, {"nesterov", c.optimizer.nesterov ? "1" : "0"}, {"schedule", c.schedule.name},
          {"warmup-epochs", std::to_string(c.schedule.warmup_epochs)}, {"lr-step", a.get("--lr-step", "default")},
          {"lr-gamma", num(c.schedule.gamma)}, {"lr-milestones", a.get("--lr-milestones", "default")},
          {"label-smoothing", num(c.label_smoothing)}, {"clip-grad", num(c.clip_grad)},
          {"no-augment", a.has("--no-augment") ? "1" : "0"}};
}

// The training and validation loaders. Validation (per-epoch accuracy, the
// .best checkpoint): the test split by default, as torchvision's reference
// scripts do; --val-split F holds out a seeded fraction F of the training
// images instead and leaves the test split untouched (evaluate it once at
// the end with lowbit eval).
std::pair<data::DataLoader, data::DataLoader> train_loaders(const Args& a, const DataFlags& df) {
  const uint64_t seed = (uint64_t)a.get_int("--seed");
  const int workers = (int)a.get_int("--workers");
  const int64_t batch = a.get_int("--batch");
  const double val_split = a.get_double("--val-split");
  if (val_split < 0 || val_split >= 1) throw UsageError("--val-split must be in [0, 1)");
  const int64_t val_limit = a.get_int("--val-limit", 0);
  if (a.has("--val-limit") && val_limit < 1) throw UsageError("--val-limit must be at least 1 (leave it out for all images)");
  data::DatasetPtr train_ds = open_split(df, true, seed), val_ds;
  if (val_split > 0) {
    std::tie(train_ds, val_ds) = data::split_train_val(train_ds, val_split, seed);
    if (a.has("--val-limit") && val_limit < val_ds->size()) val_ds = data::limit(val_ds, val_limit, seed);
  } else {
    DataFlags vf = df;
    if (a.has("--val-limit")) vf.limit = val_limit;
    val_ds = open_split(vf, false, seed);
    // The two folders must name the same classes, in the same order (labels
    // are indices into them): said now, not after an epoch of training.
    if (val_ds->class_names() != train_ds->class_names()) {
      auto list = [](const std::vector<std::string>& v) {
        std::string t;
        for (size_t i = 0; i < v.size() && i < 12; ++i) t += (i ? ", " : "") + printable(v[i], 40);
        return t + (v.size() > 12 ? ", … (" + std::to_string(v.size()) + ")" : "");
      };
      std::vector<std::string> extra, missing;
      for (const auto& c : val_ds->class_names())
        if (std::find(train_ds->class_names().begin(), train_ds->class_names().end(), c) == train_ds->class_names().end())
          extra.push_back(c);
      for (const auto& c : train_ds->class_names())
        if (std::find(val_ds->class_names().begin(), val_ds->class_names().end(), c) == val_ds->class_names().end())
          missing.push_back(c);
      throw UsageError("the validation classes differ from the training classes" +
                       (extra.empty() ? std::string() : "; only in validation: " + list(extra)) +
                       (missing.empty() ? std::string() : "; only in training: " + list(missing)) +
                       " (each class needs a folder in both, with the same name)");
    }
  }
  data::DataLoader train(train_ds, {.batch_size = batch, .shuffle = true, .drop_last = true, .num_workers = workers, .seed = seed},
                         train_transform(df, *train_ds, !a.has("--no-augment")));
  data::DataLoader val(val_ds, {.batch_size = 256, .num_workers = workers, .seed = seed}, eval_transform(df));
  LOWBIT_CHECK(train.num_batches() > 0, "", train_ds->size(), " training images are fewer than one batch of ", batch);
  return {std::move(train), std::move(val)};
}

// What the command line shows while the Trainer runs: progress bars, one
// line per epoch, warnings (stderr); nothing with --json.
class Reporter : public nn::TrainerCallback {
 public:
  Reporter(const Args& a, std::string header) : a_(a), header_(std::move(header)), quiet_(a.has("--quiet") || a.has("--json")) {}
  void on_train_begin(nn::Module&, const BatchSource&) override {
    if (!a_.has("--json")) std::fputs(header_.c_str(), stderr);
  }
  void on_epoch_begin(nn::Module&, int64_t e) override {
    bar_ = std::make_unique<Progress>("epoch " + std::to_string(e + 1) + "/" + std::to_string(a_.get_int("--epochs")),
                                      batches_ * batch_, "img", quiet_);
  }
  void on_step(const nn::StepReport& r) override {
    bar_->update(r.step * batch_, "loss " + fmt(r.mean_loss) + " acc " + fmt(r.top1) + " lr " + fmt(r.lr, 5));
  }
  void before_eval(nn::Module&) override {
    img_s_ = (double)(batches_ * batch_) / bar_->elapsed();
    bar_ = std::make_unique<Progress>("  val", val_samples_, "img", quiet_);
  }
  void on_eval_progress(int64_t done, int64_t, double top1) override {
    bar_->update(done, "acc " + std::to_string(top1).substr(0, 6));
  }
  void on_epoch_end(const nn::EpochReport& r) override {
    if (!a_.has("--json"))  // --quiet drops the progress bars, not the one line per epoch
      std::fprintf(stderr, "epoch %lld/%lld  train loss %.4f acc %.4f  val loss %.4f acc %.4f (top-5 %.4f)%s  %.0f img/s%s\n",
                   (long long)r.epoch, (long long)r.epochs, r.train_loss, r.train_top1, r.val.loss, r.val.top1,
                   r.val.top5, r.improved ? "  best" : "", img_s_,
                   r.skipped_batches ? ("  (" + std::to_string(r.skipped_batches) + " non-finite batches skipped)").c_str() : "");
  }
  void on_warning(const std::string& text) override { std::fprintf(stderr, "\n%s: %s\n", a_.command.c_str(), text.c_str()); }
  int64_t batches_ = 0, batch_ = 0, val_samples_ = 0;

 private:
  Args a_;
  std::string header_;
  bool quiet_;
  std::unique_ptr<Progress> bar_;
  double img_s_ = 0;
};

// Refuses --resume F whose settings differ from the flags', in the flags' words.
void check_resume_settings(const std::string& from, const nn::Metadata& settings) {
  std::string was, now;
  for (const auto& [k, file_v, v] : nn::settings_diff(load_safetensors(from).metadata, settings)) {
    was += " --" + k + " " + file_v;
    now += " --" + k + " " + v;
  }
  if (!was.empty())
    throw UsageError("--resume " + from + " was trained with" + was + "; this run has" + now +
                     " (a resumed run repeats its settings; --init F starts a new run from F's weights)");
}

// Ctrl-C / SIGTERM: the Trainer stops at the next step. The resumable state
// is the last finished epoch's checkpoint (written after every epoch); the
// interrupted epoch is redone on --resume, so the result equals an
// uninterrupted run.
int stopped(const Args& a, const nn::TrainResult& r, int64_t epochs) {
  std::fprintf(stderr, "\n%s: interrupted %s epoch %lld of %lld. ", a.command.c_str(),
               r.stopped_mid_epoch ? "during" : "before", (long long)r.stopped_at + 1, (long long)epochs);
  if (r.resumable.empty())
    std::fprintf(stderr, "No epoch had finished, so there is nothing to resume: run the command again.\n");
  else
    std::fprintf(stderr, "%s holds the state after epoch %lld; continue with: lowbit %s --resume %s --out %s "
                         "(and the same flags)\n",
                 r.resumable.c_str(), (long long)r.stopped_at, a.command.c_str(), r.resumable.c_str(),
                 a.get("--out", "").c_str());
  return 130;
}

}  // namespace

int cmd_train(const Args& a) { return run_training(a, nullptr); }

int run_training(const Args& a_in, TrainVariant* variant) {
  a_in.reject_unknown();
  if (!variant && a_in.has("--model")) check_model_flags(a_in, a_in.get("--model", ""));
  const Args a = with_resume_settings(a_in);
  if (!a.has("--model")) throw UsageError("--model is required (" + std::to_string(nn::model_names().size()) +
                                          " known: resnet20, resnet18, mobilenet_v2, …)");
  if (!a.has("--out")) throw UsageError("--out FILE.safetensors is required");
  const std::string model_name = a.get("--model", "");
  nn::check_model_name(model_name);
  nn::TrainerConfig tc = trainer_config(a);
  // Fail now, not after the first epoch has trained.
  tc.checkpoint = a.get("--out", "");
  check_distinct_files(a, true);
  check_output_path("--out", tc.checkpoint);
  check_output_path("--out", nn::best_path(tc.checkpoint));
  if (a.has("--metrics")) check_output_path("--metrics", tc.metrics = a.get("--metrics", ""));
  const DataFlags df = data_flags(a);
  auto [train_loader, val_loader] = train_loaders(a, df);
  const data::Dataset& train_ds = *train_loader.dataset();
  tc.settings = train_settings(a, df, tc);

  manual_seed((uint64_t)a.get_int("--seed"));
  const nn::ModelConfig cfg = model_config(a, train_ds);
  nn::ModulePtr model = create_model_that_fits(model_name, cfg, 3);
  if (variant) model = variant->build(model, cfg, a.has("--resume"));
  tc.model_metadata = cfg.to_metadata();
  tc.model_metadata["model"] = model_name;
  if (a.has("--init") && !(variant && variant->loads_init)) {
    check_checkpoint_model(a.get("--init", ""), model_name, cfg);
    nn::load_checkpoint(a.get("--init", ""), *model, nullptr);
  }
  if (a.has("--resume")) {
    tc.resume = a.get("--resume", "");
    check_checkpoint_model(tc.resume, model_name, cfg);
    check_resume_settings(tc.resume, tc.settings);
  }
  install_stop_handler();
  tc.stop_requested = stop_requested;

  char header[512];
  std::snprintf(header, sizeof header, "train %s (%lld parameters) on %s: %lld train / %lld val images, %lld epochs, batch %lld, %d threads\n",
                model_name.c_str(), (long long)model->num_parameters(), df.dataset.c_str(), (long long)train_ds.size(),
                (long long)val_loader.dataset()->size(), (long long)tc.epochs, (long long)train_loader.batch_size(),
                kernels::num_threads());
  Reporter reporter(a, header);
  reporter.batches_ = train_loader.num_batches(), reporter.batch_ = train_loader.batch_size();
  reporter.val_samples_ = val_loader.num_samples();
  std::vector<nn::TrainerCallback*> callbacks{&reporter};
  if (variant) {
    variant->train_data = &train_ds;
    variant->quiet = a.has("--quiet") || a.has("--json");
    for (nn::TrainerCallback* c : variant->callbacks()) callbacks.push_back(c);
    callbacks.push_back(variant);
  }
  nn::TrainResult r;
  try {
    nn::Trainer trainer(model, tc, callbacks);
    r = trainer.fit(train_loader, val_loader);
  } catch (const nn::DivergenceError& e) {
    throw Error(std::string(e.what()) + " (--on-divergence warn to continue)");
  }
  if (r.stopped) return stopped(a, r, tc.epochs);
  if (a.has("--json")) {
    Json j = {{"model", model_name},          {"epochs", tc.epochs},
              {"accuracy", r.last.top1}, {"top5", r.last.top5},
              {"loss", r.last.loss},  {"best_accuracy", r.best},
              {"train_loss", r.train_loss}, {"train_seconds", r.train_seconds},
              {"out", tc.checkpoint}};
    if (variant) variant->json_fields(*model, j);
    std::printf("%s\n", json_line(j).c_str());
  }
  return 0;
}

}  // namespace lowbit::cli
