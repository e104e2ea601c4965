// `lowbit train`: float training with per-epoch validation, best-checkpoint
// saving and exact resume.
//
// Files: --out F is written after every epoch (model + optimizer + epoch +
// generator position: `--resume F` continues bit for bit); the best
// validation accuracy so far is also written to F with ".best" before the
// extension. The learning-rate schedule is evaluated per iteration
// (t = global step), so a resumed run sees the same rates. `--stop-after E`
// stops after epoch E of the planned --epochs; `--resume F` then continues
// and ends bit-identical to an uninterrupted run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "nn/checkpoint.h"
#include "nn/clip.h"
#include "nn/divergence.h"
#include "nn/metrics.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "tools/common.h"
#include "tools/progress.h"

namespace lowbit::cli {

namespace {

std::string best_path(const std::string& out) {
  const auto dot = out.rfind('.');
  const auto slash = out.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return out + ".best";
  return out.substr(0, dot) + ".best" + out.substr(dot);
}

std::string fmt(double v, int prec = 4) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

}  // namespace

int cmd_train(const Args& a) { return run_training(a, nullptr); }

int run_training(const Args& a, TrainVariant* variant) {
  std::vector<std::string> known{"--epochs", "--out", "--batch", "--lr", "--momentum", "--wd", "--nesterov",
                                 "--optimizer", "--schedule", "--warmup-epochs", "--label-smoothing", "--no-augment",
                                 "--resume", "--init", "--clip-grad", "--val-limit", "--val-split", "--quiet",
                                 "--stop-after", "--lr-step", "--lr-gamma", "--lr-milestones", "--metrics",
                                 "--on-divergence"};
  if (variant)
    for (auto& n : variant->flags) known.push_back(n);
  for (auto& n : data_flag_names()) known.push_back(n);
  for (auto& n : model_flag_names()) known.push_back(n);
  a.reject_unknown(known);
  if (!a.has("--model")) throw UsageError("--model is required (" + std::to_string(nn::model_names().size()) +
                                          " known: resnet20, resnet18, mobilenet_v2, …)");
  if (!a.has("--out")) throw UsageError("--out FILE.safetensors is required");
  const std::string model_name = a.get("--model", "");
  nn::check_model_name(model_name);
  const std::string out = a.get("--out", "");
  const int64_t epochs = a.get_int("--epochs", 1);
  const int64_t batch = a.get_int("--batch", 128);
  const uint64_t seed = (uint64_t)a.get_int("--seed", 0);
  const int workers = (int)a.get_int("--workers", 2);
  const bool json = a.has("--json"), quiet = a.has("--quiet");
  const double lr = a.get_double("--lr", 0.1), momentum = a.get_double("--momentum", 0.9),
               wd = a.get_double("--wd", 5e-4), ls = a.get_double("--label-smoothing", 0.0),
               clip = a.get_double("--clip-grad", 0.0);
  const int64_t warmup_epochs = a.get_int("--warmup-epochs", 0);
  // --stop-after E: run the schedule planned for --epochs but stop after
  // epoch E (a long run split into resumable pieces).
  const int64_t stop_after = a.get_int("--stop-after", epochs);
  const std::string opt_name = a.get("--optimizer", "sgd"), sched_name = a.get("--schedule", "cosine");
  // --on-divergence stop|warn: what a run does when its training loss
  // diverges (nn/divergence.h's rule): stop with exit 2, naming the cause and
  // the LSQ steps that collapsed (the last finished epoch's checkpoint
  // stays), or warn once and go on. An LSQ step collapsing to the clamp is
  // always a warning, once per quantizer: a dead channel's step may learn to
  // zero in a healthy low-bit run; a collapse followed by a rising loss stops.
  const std::string on_divergence = a.get("--on-divergence", "stop");
  if (on_divergence != "stop" && on_divergence != "warn")
    throw UsageError("--on-divergence must be stop or warn, got '" + on_divergence + "'");
  if (epochs < 1) throw UsageError("--epochs must be at least 1");
  if (stop_after < 1 || stop_after > epochs) throw UsageError("--stop-after must be between 1 and --epochs");
  if (batch < 1) throw UsageError("--batch must be at least 1");
  if (workers < 0) throw UsageError("--workers must be 0 or more");
  if (!(lr > 0)) throw UsageError("--lr must be positive");
  if (ls < 0 || ls >= 1) throw UsageError("--label-smoothing must be in [0, 1)");
  if (a.has("--resume") && a.has("--init"))
    throw UsageError("--resume continues a run, --init starts one from weights: give one of them");
  // Fail now, not after the first epoch has trained.
  check_output_path("--out", out);
  check_output_path("--out", best_path(out));
  // --metrics F: JSON lines appended while training — {"step": …} every 20 steps
  // (running train loss/accuracy) and {"epoch": …} after each validation.
  std::FILE* metrics = nullptr;
  if (a.has("--metrics")) {
    check_output_path("--metrics", a.get("--metrics", ""));
    // A new run starts the file; a resumed one continues it.
    metrics = std::fopen(a.get("--metrics", "").c_str(), a.has("--resume") ? "a" : "w");
    if (!metrics) throw UsageError("--metrics " + a.get("--metrics", "") + ": cannot open for appending");
  }
  struct CloseFile {
    std::FILE* f;
    ~CloseFile() {
      if (f) std::fclose(f);
    }
  } close_metrics{metrics};

  // ---- data
  DataFlags df = data_flags(a);
  // Validation (per-epoch accuracy, the .best checkpoint): the test split by
  // default, as torchvision's reference scripts do; --val-split F holds out a
  // seeded fraction F of the training images instead and leaves the test split
  // untouched (evaluate it once at the end with lowbit eval).
  const double val_split = a.get_double("--val-split", 0.0);
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
  }
  data::DataLoader train_loader(train_ds, {.batch_size = batch, .shuffle = true, .drop_last = true,
                                           .num_workers = workers, .seed = seed},
                                train_transform(df, *train_ds, !a.has("--no-augment")));
  data::DataLoader val_loader(val_ds, {.batch_size = 256, .num_workers = workers, .seed = seed},
                              eval_transform(df));
  LOWBIT_CHECK(train_loader.num_batches() > 0, "", train_ds->size(), " training images are fewer than one batch of ",
               batch);

  // ---- model + optimizer + schedule
  manual_seed(seed);
  nn::ModelConfig cfg = model_config(a, *train_ds);
  nn::ModulePtr model = nn::create_model(model_name, cfg);
  if (variant) model = variant->build(model, cfg, a.has("--resume"));
  std::unique_ptr<nn::Optimizer> opt;
  nn::Module* aux = variant ? variant->aux() : nullptr;
  nn::NamedTensors trained = model->named_parameters();
  if (aux)
    for (auto& [n, t] : aux->named_parameters()) trained.emplace_back("aux." + n, t);
  auto groups = nn::no_decay_groups(trained, wd);
  if (opt_name == "sgd") opt = std::make_unique<nn::SGD>(groups, nn::SGDOptions{.lr = lr, .momentum = momentum,
                                                                              .weight_decay = wd, .nesterov = a.has("--nesterov")});
  else if (opt_name == "adam") opt = std::make_unique<nn::Adam>(groups, nn::AdamOptions{.lr = lr, .weight_decay = wd});
  else if (opt_name == "adamw") opt = std::make_unique<nn::AdamW>(groups, nn::AdamOptions{.lr = lr, .weight_decay = wd});
  else throw UsageError("--optimizer must be sgd, adam or adamw, got '" + opt_name + "'");
  const int64_t steps_per_epoch = train_loader.num_batches(), total = epochs * steps_per_epoch;
  const int64_t warmup = warmup_epochs * steps_per_epoch;
  // --lr-step E and --lr-milestones a,b count epochs after the warm-up, as in
  // torchvision's reference scripts; without them: a third of the run, and
  // its half and three quarters.
  const int64_t lr_step = a.get_int("--lr-step", 1);
  const double lr_gamma = a.get_double("--lr-gamma", 0.1);
  int64_t step_size = std::max<int64_t>((total - warmup) / 3, 1);
  if (a.has("--lr-step")) step_size = lr_step * steps_per_epoch;
  std::vector<int64_t> milestones{(total - warmup) / 2, (total - warmup) * 3 / 4};
  if (a.has("--lr-milestones")) {
    milestones.clear();
    for (float m : parse_floats("--lr-milestones", a.get("--lr-milestones", ""))) {
      const int64_t it = (int64_t)m * steps_per_epoch;
      if (m != std::floor(m) || m < 1 || (!milestones.empty() && it <= milestones.back()))
        throw UsageError("--lr-milestones expects increasing whole epochs, got '" + a.get("--lr-milestones", "") + "'");
      milestones.push_back(it);
    }
  }
  if (lr_step < 1) throw UsageError("--lr-step must be at least 1 epoch");
  if (!(lr_gamma > 0)) throw UsageError("--lr-gamma must be positive");
  for (const auto& [flag, sched] : {std::pair{"--lr-step", "step"}, std::pair{"--lr-milestones", "multistep"}})
    if (a.has(flag) && sched_name != sched)
      throw UsageError(std::string(flag) + " needs --schedule " + sched + " (the schedule is " + sched_name + ")");
  if (a.has("--lr-gamma") && sched_name != "step" && sched_name != "multistep")
    throw UsageError("--lr-gamma needs --schedule step or multistep (the schedule is " + sched_name + ")");
  nn::LrSchedulePtr sched;
  if (sched_name == "cosine") sched = std::make_shared<nn::CosineAnnealingLR>(std::max<int64_t>(total - warmup, 1));
  else if (sched_name == "step") sched = std::make_shared<nn::StepLR>(step_size, lr_gamma);
  else if (sched_name == "multistep") sched = std::make_shared<nn::MultiStepLR>(milestones, lr_gamma);
  else if (sched_name == "constant") sched = std::make_shared<nn::ConstantLR>();
  else throw UsageError("--schedule must be cosine, step, multistep or constant, got '" + sched_name + "'");
  if (warmup > 0) sched = nn::warmup_then(warmup, 0.1, sched);

  // The settings a resumed run must repeat to continue bit for bit; saved in
  // every checkpoint (metadata key = the flag without "--").
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.9g", v);
    return std::string(b);
  };
  const std::map<std::string, std::string> settings{
      {"dataset", df.dataset}, {"limit", std::to_string(df.limit)}, {"val-split", num(val_split)},
      {"val-limit", std::to_string(val_limit)}, {"seed", std::to_string(seed)}, {"epochs", std::to_string(epochs)},
      {"batch", std::to_string(batch)}, {"lr", num(lr)}, {"momentum", num(momentum)}, {"wd", num(wd)},
      {"optimizer", opt_name}, {"nesterov", a.has("--nesterov") ? "1" : "0"}, {"schedule", sched_name},
      {"warmup-epochs", std::to_string(warmup_epochs)}, {"lr-step", a.get("--lr-step", "default")},
      {"lr-gamma", num(lr_gamma)}, {"lr-milestones", a.get("--lr-milestones", "default")},
      {"label-smoothing", num(ls)}, {"clip-grad", num(clip)}, {"no-augment", a.has("--no-augment") ? "1" : "0"}};

  // ---- resume, or start from weights
  int64_t start_epoch = 0;
  double best = -1;
  if (a.has("--init") && !(variant && variant->loads_init)) {
    check_checkpoint_model(a.get("--init", ""), model_name, cfg);
    nn::load_checkpoint(a.get("--init", ""), *model, nullptr);
  }
  if (a.has("--resume")) {
    const std::string from = a.get("--resume", "");
    check_checkpoint_model(from, model_name, cfg);
    // The variant's settings first (a changed --hint list is named as such, not as missing aux keys).
    if (variant) variant->check_resume(load_safetensors(from).metadata, from);
    nn::Metadata md = nn::load_checkpoint(from, *model, opt.get(), true, aux);
    auto need = [&](const char* k) {
      LOWBIT_CHECK(md.count(k), "", from, " has no '", k, "' entry; not a lowbit train checkpoint");
      return md.at(k);
    };
    std::string was, now;
    for (const auto& [k, v] : settings)
      if (md.count(k) && md.at(k) != v) {
        was += " --" + k + " " + md.at(k);
        now += " --" + k + " " + v;
      }
    if (!was.empty())
      throw UsageError("--resume " + from + " was trained with" + was + "; this run has" + now +
                       " (a resumed run repeats its settings; --init F starts a new run from F's weights)");
    start_epoch = std::stoll(need("epoch"));
    best = std::stod(need("best_accuracy"));
    default_generator().set_counter(std::stoull(need("rng_counter")));
    LOWBIT_CHECK(start_epoch < epochs, "", from, " already finished ", start_epoch, " of ", epochs, " epochs");
  }

  if (!json)
    std::fprintf(stderr, "train %s (%lld parameters) on %s: %lld train / %lld val images, %lld epochs, batch %lld, %d threads\n",
                 model_name.c_str(), (long long)model->num_parameters(), df.dataset.c_str(),
                 (long long)train_ds->size(), (long long)val_ds->size(), (long long)epochs, (long long)batch,
                 kernels::num_threads());
  if (variant) variant->before_training(val_loader, quiet || json);
  EvalResult last;
  double train_seconds = 0, train_loss = 0;
  // Ctrl-C / SIGTERM: stop at the next step. The resumable state is the last
  // finished epoch's checkpoint (written after every epoch); the interrupted
  // epoch is redone on --resume, so the result equals an uninterrupted run.
  install_stop_handler();
  std::string resumable = a.has("--resume") ? a.get("--resume", "") : "";
  auto stopped = [&](int64_t e, bool mid_epoch) {
    if (!mid_epoch && e >= stop_after) return 0;
    std::fprintf(stderr, "\n%s: interrupted %s epoch %lld of %lld. ", a.command.c_str(),
                 mid_epoch ? "during" : "before", (long long)e + 1, (long long)epochs);
    if (resumable.empty())
      std::fprintf(stderr, "No epoch had finished, so there is nothing to resume: run the command again.\n");
    else
      std::fprintf(stderr, "%s holds the state after epoch %lld; continue with: lowbit %s --resume %s --out %s "
                           "(and the same flags)\n",
                   resumable.c_str(), (long long)e, a.command.c_str(), resumable.c_str(), out.c_str());
    return 130;
  };
  nn::DivergenceMonitor divergence;
  std::vector<std::string> collapsed;  // quantizer paths whose LSQ step hit the clamp, in order
  auto at = [](int64_t e, int64_t step) { return "epoch " + std::to_string(e + 1) + " step " + std::to_string(step + 1); };
  auto check_divergence = [&](int64_t e, int64_t step, double loss) {
    for (const quant::CollapsedStep& c : variant ? variant->collapses(*model) : std::vector<quant::CollapsedStep>{}) {
      if (std::find(collapsed.begin(), collapsed.end(), c.quantizer) != collapsed.end()) continue;
      collapsed.push_back(c.quantizer);
      std::fprintf(stderr, "\n%s: warning at %s: %s\n", a.command.c_str(), at(e, step).c_str(), c.text.c_str());
    }
    const auto why = divergence.add_loss(loss);
    if (!why) return;
    std::string msg = "diverging at " + at(e, step) + ": " + *why;
    if (!collapsed.empty()) {
      msg += "; LSQ steps collapsed to the clamp in " + collapsed[0];
      if (collapsed.size() > 1) msg += " and " + std::to_string(collapsed.size() - 1) + " more quantizers";
    }
    if (on_divergence == "stop") throw Error(msg + " (--on-divergence warn to continue)");
    std::fprintf(stderr, "\n%s: warning: %s\n", a.command.c_str(), msg.c_str());
  };
  for (int64_t e = start_epoch; e < stop_after; ++e) {
    if (stop_requested()) return stopped(e, false);
    if (variant) variant->on_epoch(*model, e);
    model->train();
    Progress bar("epoch " + std::to_string(e + 1) + "/" + std::to_string(epochs),
                 steps_per_epoch * batch, "img", quiet || json);
    nn::ClassificationMeter meter(cfg.num_classes);
    int64_t step = 0;
    for (const data::Batch& b : train_loader.epoch((uint64_t)e)) {
      if (stop_requested()) break;
      nn::apply_schedule(*opt, *sched, e * steps_per_epoch + step);
      Tensor logits;
      Tensor loss = variant ? variant->step_loss(*model, b, (float)ls, logits)
                            : cross_entropy(logits = model->forward(b.images), b.labels, (float)ls);
      const float lv = loss.item();
      LOWBIT_CHECK(std::isfinite(lv), "loss became ", lv, " at epoch ", e + 1, " step ", step + 1,
                   " (lower --lr?)");
      check_divergence(e, step, lv);
      opt->zero_grad();
      loss.backward();
      if (clip > 0) nn::clip_grad_norm_(opt->parameters(), clip);
      opt->step();
      {
        NoGradGuard ng;
        meter.update(logits.detach(), b.labels, lv);
      }
      ++step;
      if (metrics && step % 20 == 0) {
        std::fprintf(metrics, "{\"step\": %lld, \"epoch_progress\": %.6f, \"train_loss\": %.6f, \"train_accuracy\": %.6f, \"lr\": %.8g}\n",
                     (long long)(e * steps_per_epoch + step), (double)e + (double)step / steps_per_epoch,
                     meter.mean_loss(), meter.top1(), opt->lr());
        std::fflush(metrics);
      }
      bar.update(step * batch, "loss " + fmt(meter.mean_loss()) + " acc " + fmt(meter.top1()) + " lr " + fmt(opt->lr(), 5));
    }
    if (stop_requested()) return stopped(e, true);
    train_seconds += bar.elapsed();
    train_loss = meter.mean_loss();
    if (variant) variant->before_eval(*model);
    last = evaluate(*model, val_loader, !quiet && !json, "  val");
    if (variant) variant->after_eval(*model);
    nn::Metadata md = settings;
    md.insert({{"model", model_name},
               {"epoch", std::to_string(e + 1)},
               {"val_accuracy", fmt(last.top1, 6)},
               {"in_channels", std::to_string(cfg.in_channels)},
               {"num_classes", std::to_string(cfg.num_classes)},
               {"width", fmt(cfg.width_mult, 6)},
               {"small_input", cfg.small_input ? "1" : "0"},
               {"act", cfg.relu6 ? "relu6" : "relu"},
               {"hidden", hidden_text(cfg.hidden)},
               {"rng_counter", std::to_string(default_generator().counter())}});
    if (metrics) {
      std::fprintf(metrics, "{\"epoch\": %lld, \"train_loss\": %.6f, \"train_accuracy\": %.6f, \"val_loss\": %.6f, "
                            "\"val_accuracy\": %.6f}\n",
                   (long long)e + 1, train_loss, meter.top1(), last.loss, last.top1);
      std::fflush(metrics);
    }
    const bool improved = last.top1 > best;
    if (improved) best = last.top1;
    md["best_accuracy"] = fmt(best, 6);
    // A variant's finished model (QAT: frozen) replaces the resumable state
    // after the last planned epoch; the .best copy is always the finished form.
    auto with = [&](bool finished) {
      nn::Metadata m = md;
      if (variant)
        for (auto& [k, v] : variant->metadata(finished)) m[k] = v;
      return m;
    };
    if (variant && variant->has_finished_form() && e + 1 == epochs) {
      variant->finish(*model, *train_ds);
      nn::save_checkpoint(out, *model, nullptr, with(true), aux);
    } else {
      nn::save_checkpoint(out, *model, opt.get(), with(false), aux);
    }
    if (improved) nn::save_checkpoint(best_path(out), *model, nullptr, with(true), aux);
    resumable = out;
    if (!json)  // --quiet drops the progress bars, not the one line per epoch
      std::fprintf(stderr, "epoch %lld/%lld  train loss %.4f acc %.4f  val loss %.4f acc %.4f (top-5 %.4f)%s  %.0f img/s\n",
                   (long long)e + 1, (long long)epochs, train_loss, meter.top1(), last.loss, last.top1, last.top5,
                   improved ? "  best" : "", (double)(steps_per_epoch * batch) / bar.elapsed());
  }
  if (json)
    std::printf("{\"model\": \"%s\", \"epochs\": %lld, \"accuracy\": %.6f, \"top5\": %.6f, \"loss\": %.6f, "
                "\"best_accuracy\": %.6f, \"train_loss\": %.6f, \"train_seconds\": %.2f, \"out\": \"%s\"%s}\n",
                model_name.c_str(), (long long)epochs, last.top1, last.top5, last.loss, best, train_loss, train_seconds,
                out.c_str(), variant ? variant->json_fields(*model).c_str() : "");
  return 0;
}

}  // namespace lowbit::cli
