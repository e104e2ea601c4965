// The training loop: one for every program (lowbit train, qat and distill, the
// benchmarks, the examples, your own executable).
//
//   nn::TrainerConfig c;
//   c.optimizer = {.name = "sgd", .lr = 0.1};
//   c.epochs = 30;
//   c.checkpoint = "model.safetensors";          // after every epoch; .best beside it
//   nn::Trainer t(model, c, {&my_callback});
//   nn::TrainResult r = t.fit(train_loader, val_loader);   // any BatchSource (core/batch.h)
//
// What a run does, in order: builds the optimizer over the model's parameters
// (and the callbacks' aux modules', as "aux.<name>"; no weight decay on
// biases and norms) and the schedule (per step); with `resume`, loads the
// model, optimizer, aux state and the generator position from that checkpoint
// and continues after its last finished epoch, so that a run interrupted and
// resumed ends bit-identical to one that was not. Then per epoch: the
// callbacks' on_epoch_begin, every batch (schedule, loss, backward, clip,
// step; the divergence rule of nn/divergence.h; the callbacks' warnings),
// validation with the callbacks' before_eval/after_eval around it, and the
// checkpoint (written atomically), CHECKPOINT.best when the validation
// accuracy improved. After the last planned epoch a callback may replace the
// model with its finished form (QAT: frozen), which the last checkpoint holds.
//
// Callbacks compose: the QAT schedule (quant/qat_schedule.h) and the
// distillation loss (distill/distiller.h) are callbacks, as is the command
// line's progress display.
#pragma once
#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/batch.h"
#include "nn/checkpoint.h"
#include "nn/divergence.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "nn/schedule.h"

namespace lowbit::nn {

struct EvalResult {
  double top1 = 0, top5 = 0, loss = 0;  // loss: mean cross-entropy
  int64_t count = 0;                    // images
  double seconds = 0;
};
// progress(images done, images in all, accuracy so far), after every batch.
using EvalProgress = std::function<void(int64_t done, int64_t total, double top1)>;
// No grad, every batch of `data`; error if the logits do not have the data's class count.
EvalResult evaluate(const std::function<Tensor(const Tensor&)>& forward, const BatchSource& data,
                    const EvalProgress& progress = {});
// The same in eval mode; restores the module's mode.
EvalResult evaluate(Module& model, const BatchSource& data, const EvalProgress& progress = {});

struct OptimizerConfig {
  std::string name = "sgd";  // sgd, adam, adamw
  double lr = 0.1, momentum = 0.9, weight_decay = 5e-4;
  bool nesterov = false;
};
// Over no_decay_groups(params, weight_decay). Error for an unknown name.
std::unique_ptr<Optimizer> make_optimizer(const NamedTensors& params, const OptimizerConfig& c);

struct ScheduleConfig {
  std::string name = "cosine";     // cosine, step, multistep, constant
  int64_t warmup_epochs = 0;       // linear warm-up from 0.1·lr, then the schedule
  int64_t step_epochs = 0;         // step: every E epochs after the warm-up; 0: a third of the run
  double gamma = 0.1;              // step and multistep
  std::vector<int64_t> milestones; // multistep: epochs after the warm-up; empty: half and three quarters of the run
};
// A per-step schedule for `epochs` epochs of `steps_per_epoch` steps. Error for an unknown name.
LrSchedulePtr make_schedule(const ScheduleConfig& c, int64_t steps_per_epoch, int64_t epochs);

struct StepReport {
  int64_t epoch = 0;            // 0-based
  int64_t step = 0;             // steps done in this epoch (1 after the first)
  int64_t steps_per_epoch = 0;
  double mean_loss = 0, top1 = 0;  // running over the epoch so far
  double lr = 0;
};
struct EpochReport {
  int64_t epoch = 0;  // 1-based: epochs finished
  int64_t epochs = 0;
  double train_loss = 0, train_top1 = 0;
  EvalResult val;
  double best = 0;
  bool improved = false;
  double train_seconds = 0;  // this epoch's
  int64_t skipped_batches = 0;  // non-finite loss or gradient (skip_nonfinite)
};

class TrainerCallback {
 public:
  virtual ~TrainerCallback() = default;
  // After a resume's state is loaded, before the first epoch.
  virtual void on_train_begin(Module& model, const BatchSource& val) { (void)model, (void)val; }
  virtual void on_epoch_begin(Module& model, int64_t epoch) { (void)model, (void)epoch; }  // 0-based
  // The batch's loss, and its logits (for the accuracy meter); nullopt: not
  // this callback's (the first that answers wins; none: cross-entropy).
  virtual std::optional<Tensor> loss(Module& model, const Batch& b, Tensor& logits) {
    (void)model, (void)b, (void)logits;
    return std::nullopt;
  }
  // Asked after every step's forward: {source, text} pairs to warn about; the
  // trainer reports each source once (on_warning) and names them if the run diverges.
  virtual std::vector<std::pair<std::string, std::string>> warnings(Module& model) {
    (void)model;
    return {};
  }
  virtual void on_step(const StepReport& r) { (void)r; }
  virtual void before_eval(Module& model) { (void)model; }
  virtual void on_eval_progress(int64_t done, int64_t total, double top1) { (void)done, (void)total, (void)top1; }
  virtual void after_eval(Module& model) { (void)model; }
  virtual void on_epoch_end(const EpochReport& r) { (void)r; }
  virtual void on_warning(const std::string& text) { (void)text; }
  // Added to every checkpoint; `finished`: the model is in its finished form.
  virtual Metadata metadata(bool finished) {
    (void)finished;
    return {};
  }
  // A resume file's metadata, before anything loads: error if it is not this callback's kind of run.
  virtual void check_resume(const Metadata& md, const std::string& path) { (void)md, (void)path; }
  // After the last planned epoch's training, before its validation (which
  // then measures the finished form): make the finished form (QAT: BN
  // re-estimation on `train`, then freeze); true if it did.
  virtual bool finish(Module& model, const BatchSource& train) {
    (void)model, (void)train;
    return false;
  }
  // A training-only module trained with the model (distillation's hint adapters).
  virtual Module* aux() { return nullptr; }
};

struct TrainerConfig {
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  int64_t epochs = 1;
  int64_t stop_after = 0;        // stop after this epoch, the schedule planned for `epochs`; 0: epochs
  double clip_grad = 0;          // max gradient norm (2-norm over all); 0: none
  float label_smoothing = 0;     // of the default cross-entropy loss
  std::string checkpoint;        // written after every epoch; empty: none
  std::string resume;            // continue the run this checkpoint holds
  std::string metrics;           // JSON lines: {"step": …} at each epoch's first step and every 20 steps, {"epoch": …} per epoch; appended on resume
  bool stop_on_divergence = true;  // false: warn (on_warning) and go on
  // A non-finite loss, or a non-finite gradient (the first parameter holding
  // one is named), stops the run at that step (Error); with skip_nonfinite the
  // batch is dropped instead (no update), counted in EpochReport, the metrics
  // line and TrainResult.
  bool skip_nonfinite = false;
  DivergenceRule divergence;
  // What a resumed run must repeat (it refuses other values), and the model's
  // description; both in every checkpoint's metadata.
  Metadata settings, model_metadata;
  std::function<bool()> stop_requested;  // polled before every step (Ctrl-C); true: fit returns, stopped
};

struct TrainResult {
  EvalResult last;  // the last epoch's validation
  double best = -1;
  double train_loss = 0, train_seconds = 0;
  bool stopped = false, stopped_mid_epoch = false;
  int64_t stopped_at = 0;  // 0-based epoch it stopped in or before
  std::string resumable;   // the checkpoint holding the last finished epoch ("" if none)
  int64_t skipped_batches = 0;  // over the whole run (skip_nonfinite)
};

// The settings that differ: {key, the file's value, this run's}.
std::vector<std::array<std::string, 3>> settings_diff(const Metadata& file, const Metadata& settings);

// The loss of a run that diverged (stop_on_divergence), naming where and why.
struct DivergenceError : Error {
  using Error::Error;
};

class Trainer {
 public:
  Trainer(ModulePtr model, TrainerConfig config, std::vector<TrainerCallback*> callbacks = {});
  TrainResult fit(const BatchSource& train, const BatchSource& val);
  Optimizer& optimizer() { return *opt_; }
  const TrainerConfig& config() const { return cfg_; }

 private:
  Tensor step_loss(const Batch& b, Tensor& logits);
  Metadata checkpoint_metadata(const Metadata& base, bool finished);

  ModulePtr model_;
  TrainerConfig cfg_;
  std::vector<TrainerCallback*> cbs_;
  Module* aux_ = nullptr;
  std::unique_ptr<Optimizer> opt_;
};

// "CHECKPOINT.best.safetensors" for "CHECKPOINT.safetensors" (else CHECKPOINT + ".best").
std::string best_path(const std::string& checkpoint);

}  // namespace lowbit::nn
