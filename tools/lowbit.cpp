// The `lowbit` command line tool. Exit codes: 0 success, 2 bad usage or bad
// input (one-line reason on stderr), 1 internal failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include <unistd.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "tools/cli.h"

namespace lowbit::cli {

// ---- parser ------------------------------------------------------------------
// Every command's options go through here. A command declares what it knows
// by calling reject_unknown(known, max_positional) first; switches (options
// that never take a value) and aliases are listed once below.

namespace {

// Options that never take a value. Every other option takes exactly one.
const std::set<std::string> kSwitches{"--json", "--help", "--full", "--nesterov", "--no-augment", "--small-input",
                                      "--quiet", "--per-channel", "--per-tensor", "--compare-sim", "--int8-only",
                                      "--float-only", "--profile", "--dynamic", "--reduce-range"};

// Spellings users type, mapped to lowbit's name (torchvision's reference scripts use the long ones).
const std::map<std::string, std::string> kAliases{
    {"--batch-size", "--batch"}, {"--weight-decay", "--wd"}, {"--lr-step-size", "--lr-step"}};

// Options every command accepts.
const char* const kCommon[] = {"--threads", "--seed", "--json", "--help"};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

bool is_number(const std::string& s) {
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return !s.empty() && *end == '\0';
}

}  // namespace

Args parse_args(const std::string& command, const std::vector<std::string>& words) {
  Args a;
  a.command = command;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& s = words[i];
    if (s.rfind("--", 0) != 0) {
      // "-5" is a (bad) value for the command to refuse; "-b" is a flag lowbit does not have.
      if (s.size() > 1 && s[0] == '-' && !is_number(s))
        throw UsageError("unknown option " + s + " (options are spelled --name; see lowbit " + command + " --help)");
      a.positional.push_back(s);
      continue;
    }
    std::string key = s, val;
    const auto eq = s.find('=');
    if (eq != std::string::npos) key = s.substr(0, eq);
    if (auto al = kAliases.find(key); al != kAliases.end()) key = al->second;
    if (kSwitches.count(key)) {
      if (eq != std::string::npos) throw UsageError(key + " takes no value");
    } else if (eq != std::string::npos) {
      val = s.substr(eq + 1);
    } else if (i + 1 < words.size() && words[i + 1].rfind("--", 0) != 0) {
      val = words[++i];
    } else {
      // Refused later (reject_unknown), after an unknown-option check with a better message.
      a.missing_value.push_back(key);
    }
    if (a.has(key)) throw UsageError(key + " is given twice");
    a.flags[key] = val;
  }
  return a;
}

std::string Args::get(const std::string& k, const std::string& def) const {
  auto it = flags.find(k);
  if (it == flags.end()) return def;
  if (std::find(missing_value.begin(), missing_value.end(), k) != missing_value.end())
    throw UsageError(k + " needs a value");
  return it->second;
}

int64_t Args::get_int(const std::string& k, int64_t def) const {
  if (!has(k)) return def;
  const std::string v = get(k, "");
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end) throw UsageError(k + " expects an integer, got '" + v + "'");
  return x;
}

double Args::get_double(const std::string& k, double def) const {
  if (!has(k)) return def;
  const std::string v = get(k, "");
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || !std::isfinite(x)) throw UsageError(k + " expects a finite number, got '" + v + "'");
  return x;
}

void Args::reject_unknown(const std::vector<std::string>& known, size_t max_positional) const {
  std::vector<std::string> all(known);
  all.insert(all.end(), std::begin(kCommon), std::end(kCommon));
  const std::string help = "see lowbit " + command + " --help";
  for (const auto& [k, v] : flags) {
    if (std::find(all.begin(), all.end(), k) != all.end()) continue;
    std::string best;
    size_t best_d = 3;  // suggest only near misses
    for (const auto& n : all)
      if (size_t d = edit_distance(k, n); d < best_d) best = n, best_d = d;
    throw UsageError("unknown option " + k + (best.empty() ? "" : " (did you mean " + best + "?)") + "; " + help);
  }
  for (const auto& k : missing_value)
    throw UsageError(k + " needs a value; " + help);
  if (positional.size() > max_positional)
    throw UsageError("unexpected argument '" + positional[max_positional] + "'; " + help);
}

}  // namespace lowbit::cli

namespace {

const char* kUsage =
    "usage: lowbit <command> [options]\n"
    "\n"
    "commands:\n"
    "  info                           version, CPU features, chosen kernel paths\n"
    "  bench peak|conv|train|distill|kernels|models   machine peak; float conv; training and distillation steps; int8 vs references\n"
    "  train --model M --out F        float training (--epochs --lr --batch --dataset --data --resume ...)\n"
    "  eval --weights F               accuracy, loss, size and latency: float, quantized (simulated) or int8 file\n"
    "  quantize --weights F --out Q   post-training static quantization (--qconfig --observer --calib ...),\n"
    "                                 or --dynamic (Linear layers, no calibration)\n"
    "  qat --weights F --out Q        quantization-aware training (--qconfig --quantizer --epochs ...)\n"
    "  distill --teacher T --teacher-model M --model S --out F   teacher–student training (float or --qconfig)\n"
    "  analyze --weights Q            per-layer quantization error (weight and output SQNR) of Q\n"
    "  infer --weights F.int8 IMAGE   top-5 classes of images on the int8 engine\n"
    "  demo [--full] [--out DIR]      the whole cycle: teacher, distilled student, PTQ, QAT+KD, int8; a table\n"
    "  report RUN_DIR                 one self-contained HTML report of a demo run folder\n"
    "\n"
    "common options: --threads N  --seed S  --json   (lowbit COMMAND --help lists a command's options)\n"
    "environment: LOWBIT_ISA=ref|avx2|avxvnni|avx512vnni|neon|neondot  LOWBIT_THREADS=N (else OMP_NUM_THREADS)\n"
    "lowbit --version; lowbit help COMMAND\n";

// `lowbit COMMAND --help`, per command.
const std::pair<const char*, const char*> kCommandUsage[] = {
    {"train",
        "usage: lowbit train --model M --out F.safetensors [options]\n"
        "  model:     --model resnet18|resnet34|resnet50|resnet20|resnet32|resnet44|resnet56|mobilenet_v2|mlp\n"
        "             --width W (mobilenet_v2) --small-input --act relu|relu6 --in-channels N --num-classes N\n"
        "             --hidden 1024,1024 (mlp: hidden sizes, or none)\n"
        "  data:      --dataset fashion-mnist|mnist|kmnist|cifar10|cifar100|imagefolder --data DIR --limit N\n"
        "             --val-split F (validate on a held-out fraction of train; default: the test split)\n"
        "             --val-limit N --mean a,b,c --std a,b,c --workers N --no-augment\n"
        "  schedule:  --epochs N (1) --batch N (128) --lr X (0.1) --schedule cosine|step|multistep|constant\n"
        "             --lr-step E --lr-milestones E1,E2 --lr-gamma G (0.1)   (step/multistep, in epochs)\n"
        "             --warmup-epochs N --optimizer sgd|adam|adamw --momentum X (0.9) --nesterov --wd X (5e-4)\n"
        "             --label-smoothing X --clip-grad X   (--batch-size, --weight-decay: aliases)\n"
        "  run:       --resume F (continue F's run with its settings) --init F (start from F's weights)\n"
        "             --stop-after N --quiet (no progress bar) --json --threads N --seed S\n"
        "             --metrics F (JSON lines: every 20 steps and every epoch; lowbit report plots them)\n"
        "             --on-divergence stop|warn (stop: a training loss rising for 3 windows of 20 steps to 2x\n"
        "             the first window's ends the run, exit 2; an LSQ step collapsing to the clamp warns)\n"
        "  Ctrl-C stops at the next step (exit 130) and names the checkpoint to --resume from\n"
        "  writes F (last epoch, with optimizer state) and F's .best twin (best validation accuracy)\n"},
    {"eval",
        "usage: lowbit eval --weights F.safetensors [--batch N] [--dataset D --data DIR --limit N] [--quiet] [--json]\n"
        "  F: a float checkpoint (lowbit train), a quantized one (lowbit quantize/qat --out; simulated), or an\n"
        "     int8 model file (--int8-out; runs on the int8 engine)\n"
        "  --compare-sim (quantized F): convert to int8 in memory and compare with the simulation image by image\n"
        "  the model is rebuilt from the checkpoint's metadata (written by lowbit train)\n"},
    {"analyze",
        "usage: lowbit analyze --weights Q.safetensors [--calib N (256)] [--json]\n"
        "  per quantized layer: SQNR in dB of its weights (float, BN folded, vs fake-quantized) and of its output\n"
        "  (the float model vs the quantized one, on N training images)\n"},
    {"infer",
        "usage: lowbit infer --weights F.int8.safetensors IMAGE... [--top K (5)] [--json]\n"
        "  decodes PNG/JPEG/BMP/GIF/TGA/PNM, resizes to the model's input, normalizes as the file says\n"},
    {"bench",
        "usage: lowbit bench peak|conv|train|distill|kernels|models [options] [--threads N] [--json]\n"
        "  peak                       fp32 and int8 multiply-add peak of this machine\n"
        "  conv [--batch N --reps N --warmup N --path P --case NAME]   float conv, ResNet-18 shapes\n"
        "  train [--model M --width W --small-input --batch N --size S --channels C --classes K\n"
        "         --steps N --warmup N --qconfig Q --quantizer ste|lsq|lsq+]   training step (float or QAT) throughput\n"
        "                             and peak memory\n"
        "  distill [--model S --width W --small-input --teacher-model T --attention A:B,... --qconfig Q --batch N\n"
        "           --steps N]   distillation step vs the plain student step, teacher forward share\n"
        "  kernels [--reps N --seconds S --case NAME]   int8 GEMM/conv vs oneDNN\n"
        "  models [--model resnet18|mobilenet_v2 --batch N --reps N --warmup N --size S]   whole-model inference,\n"
        "                             float vs the int8 engine (bench/compare_int8.py adds PyTorch)\n"},
    {"quantize",
        "usage: lowbit quantize --weights F.safetensors --out Q.safetensors [options]\n"
        "  config:    --qconfig w8a8|w8a8-per-tensor|w4a8|w4a4|w2a2 (w8a8)\n"
        "             --observer minmax|ema|histogram|entropy|percentile|mse (activations; preset's: histogram)\n"
        "             --per-channel | --per-tensor (weights)\n"
        "  data:      --calib N (1024 training images) --batch N (256) --dataset D --data DIR --limit N (test images)\n"
        "  model:     read from F's metadata; --model --width --small-input --act --in-channels --num-classes override\n"
        "  run:       --quiet --json --threads N --seed S\n"
        "  --int8-out F.int8.safetensors   also write the int8 engine's model (lowbit eval / infer run it)\n"
        "  prints float and quantized (simulated) accuracy and size; writes Q (float weights + quantization parameters)\n"
        "  --dynamic  dynamic quantization instead (no calibration): s8 Linear weights, activations quantized\n"
        "             per batch; --per-channel --reduce-range (activations 0..127, PyTorch's) --layers Linear|PATH,...\n"
        "             prints float vs dynamic accuracy, size and batch-1/32 latency; writes Q; --int8-out for\n"
        "             models whose every layer is dynamic (an mlp)\n"},
    {"qat",
        "usage: lowbit qat --weights F.safetensors --out Q.safetensors [options]\n"
        "  config:    --qconfig w8a8|w8a8-per-tensor|w4a8|w4a4|w2a2 (w8a8) --quantizer ste|lsq|lsq+\n"
        "             --observer minmax|ema (STE) --per-channel | --per-tensor\n"
        "             --lsq-init auto|mean|observer (LSQ's first step: auto = observer at 8 bits, else 2·mean|x|/√Qp)\n"
        "             --freeze-bn-after E --freeze-observers-after E (epochs; default: never)\n"
        "             --quantize-activations-after E (weights first; default 0)\n"
        "             --bn-reestimate N (before freezing, BN statistics recomputed on N training batches\n"
        "             unless --freeze-bn-after froze them; default 64, 0: off)\n"
        "  training:  as lowbit train (--epochs 1 --lr 0.01 --batch --schedule --optimizer --resume --stop-after ...)\n"
        "  --int8-out F.int8.safetensors   after the last epoch, also write the int8 engine's model\n"
        "  writes Q (resumable each epoch; frozen after the last) and Q's .best twin (frozen)\n"},
    {"distill",
        "usage: lowbit distill --teacher T.safetensors --teacher-model M --model S --out F.safetensors [options]\n"
        "  teacher:   a float checkpoint of model M (its width etc. from its metadata); frozen, eval mode\n"
        "  student:   --model S --width W --small-input ... (from scratch) or --init S.safetensors (float weights)\n"
        "             --qconfig w8a8|w4a4|w2a2 --quantizer lsq|ste|lsq+: a low-bit student (QAT; lr 0.01)\n"
        "             --int8-out F.int8.safetensors (with --qconfig) after the last epoch; the QAT\n"
        "             schedule flags of lowbit qat (--freeze-bn-after, --bn-reestimate N, ...)\n"
        "  loss:      alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(z_s, y)\n"
        "             --temperature T (4) --alpha A (0.9; weight of the teacher term) --label-smoothing X\n"
        "             --hint T_MOD:S_MOD[,...] (FitNets: 1x1 conv+BN adapter, MSE; --hint-weight 1)\n"
        "             --attention T_MOD:S_MOD[,...] (attention transfer; --attention-weight 1000 --attention-p 2)\n"
        "             module names as PyTorch's (layer2, features.7); a tap reads the module's output\n"
        "  training:  as lowbit train (--epochs --lr --batch --schedule --resume --stop-after --json ...)\n"},
    {"demo",
        "usage: lowbit demo [--full] [--out DIR] [--data DIR] [--quiet] [--seed S] [--limit N]\n"
        "  train a resnet20 teacher, distill a mobilenet_v2 (width 0.5, small input) student, quantize it (PTQ\n"
        "  per-tensor MinMax, PTQ per-channel histogram, QAT w8a8 and w4a4 LSQ + KD), run each on the int8 engine;\n"
        "  ends with a table. Short schedules (9 to 31 minutes on 2 cores); --full: the recipes (hours);\n"
        "  --limit N: every stage on N images (a quick look). Writes everything to DIR (default\n"
        "  lowbit-demo-DATE-TIME): checkpoints, int8 models, metrics.jsonl, table.md\n"},
    {"report",
        "usage: lowbit report RUN_DIR [--out F.html (RUN_DIR/report.html)] [--data DIR]\n"
        "  training curves, the comparison table, accuracy against size, per-layer quantization error and a\n"
        "  4-bit layer's weight histogram with its grid, as inline SVG in one HTML file (no network needed)\n"},
    {"info", "usage: lowbit info [--json]\n"},
};

const char* command_usage(const std::string& cmd) {
  for (const auto& [name, text] : kCommandUsage)
    if (cmd == name) return text;
  return nullptr;
}


}  // namespace

// OpenMP threads that spin while waiting at a barrier steal the cores the
// other threads (data-loader workers, a build, a second process) need: on a
// busy 2-core machine training ran 8× slower with libgomp's default waiting
// (300,000 spins before sleeping) than with passive waiting. Passive waiting
// costs the other way: every parallel region then wakes sleeping threads,
// and a training step has thousands of short regions (MobileNetV2 width 0.5
// at 28×28, 2 threads: 868 img/s passive vs 1149 with a short spin). So the
// tool spins briefly, then sleeps: libgomp reads GOMP_SPINCOUNT once, before
// main, so when the user has set neither it nor OMP_WAIT_POLICY the tool
// re-executes itself with GOMP_SPINCOUNT=1000 (set either to opt out).
// Measured with a CPU hog on one of 2 cores (a 1-epoch ResNet-20 run on
// 5000 images): passive 15.2 s, 1000 spins 15.0 s, 10000 spins 20.9 s,
// 300000 spins 22.0 s.
static void prefer_short_spin_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "1000", 1);
  execv("/proc/self/exe", argv);  // only returns on failure: carry on with the default
}

int main(int argc, char** argv) {
  using namespace lowbit::cli;
  prefer_short_spin_openmp(argv);
  Args a;
  try {
    const std::vector<std::string> words(argv + std::min(argc, 2), argv + argc);
    const std::string first = argc > 1 ? argv[1] : "";
    if (first.empty()) {
      std::fputs("usage: lowbit <command> [options] (commands: info, train, distill, eval, quantize, qat, analyze, infer, bench, demo, report; see lowbit --help)\n", stderr);
      return 2;
    }
    if (first == "--version") {
      std::printf("lowbit %s\n", LOWBIT_VERSION);
      return 0;
    }
    // lowbit --help | lowbit help [COMMAND] | lowbit COMMAND --help
    if (first == "--help" || first == "-h" || first == "help") {
      const char* u = words.empty() ? kUsage : command_usage(words[0]);
      if (!u) throw UsageError("no help for '" + words[0] + "' (commands: info, train, distill, eval, quantize, qat, analyze, infer, bench, demo, report)");
      std::fputs(u, stdout);
      return 0;
    }
    a.command = first;
    for (const std::string& w : words)
      if (w == "--help" || w == "-h")
        if (const char* u = command_usage(a.command)) {
          std::fputs(u, stdout);
          return 0;
        }
    a = parse_args(first, words);
    // The kernel table and the thread count are chosen once; a bad
    // LOWBIT_ISA, LOWBIT_THREADS or OMP_NUM_THREADS is a usage error.
    try {
      lowbit::kernels::table();
      lowbit::kernels::num_threads();
    } catch (const std::runtime_error& e) {
      throw UsageError(e.what());
    }
    if (a.has("--threads")) {
      int64_t t = a.get_int("--threads", 0);
      if (t < 1) throw UsageError("--threads must be at least 1");
      lowbit::kernels::set_num_threads((int)t);
    }
    if (a.command == "info") return cmd_info(a);
    if (a.command == "bench") return cmd_bench(a);
    if (a.command == "demo") return cmd_demo(a);
    if (a.command == "train") return cmd_train(a);
    if (a.command == "eval") return cmd_eval(a);
    if (a.command == "quantize") return cmd_quantize(a);
    if (a.command == "qat") return cmd_qat(a);
    if (a.command == "distill") return cmd_distill(a);
    if (a.command == "analyze") return cmd_analyze(a);
    if (a.command == "report") return cmd_report(a);
    if (a.command == "infer") return cmd_infer(a);
    throw UsageError("unknown command '" + a.command + "' (commands: info, train, distill, eval, quantize, qat, analyze, infer, bench, demo, report; see lowbit --help)");
  } catch (const UsageError& e) {
    std::cerr << "lowbit " << a.command << ": " << e.what() << "\n";
    return 2;
  } catch (const lowbit::Error& e) {
    std::cerr << "lowbit " << a.command << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lowbit " << a.command << ": internal error: " << e.what() << "\n";
    return 1;
  }
}
