// The `lowbit` tool's options and commands, each declared once (options.h).
#include "tools/options.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

namespace lowbit::cli {

namespace {

// Scopes: a command, or a command in one mode. `distill-qat` is distill with
// --qconfig or --quantizer (a low-bit student), `quantize-dynamic` quantize
// with --dynamic, `bench-X` the benchmark X. "*": every command.
constexpr const char* kTrain = "train qat distill";
constexpr const char* kModelScopes = "train qat distill eval quantize quantize-dynamic analyze";

const std::vector<Option> kOptions = {
    // ---- model --------------------------------------------------------------------------------
    {"--model", "M", kModelScopes, "", "model",
     "resnet18|resnet34|resnet50|resnet20|resnet32|resnet44|resnet56|mobilenet_v2|mlp "
     "(eval, quantize, analyze, a resumed run: from the checkpoint's metadata)"},
    {"--width", "W", kModelScopes, "1", "model", "width multiplier (mobilenet_v2)"},
    {"--small-input", nullptr, kModelScopes, "", "model", "stride-1 stem for 28×28 and 32×32 images (mobilenet_v2)"},
    {"--act", "A", kModelScopes, "relu6", "model", "relu|relu6 (mobilenet_v2's activation)"},
    {"--in-channels", "N", kModelScopes, "the data set's; 3 for image folders", "model",
     "input channels (image folders: 1 converts every image to grayscale, 3 to RGB, as torchvision's ImageFolder; lowbit infer converts to what the model takes)"},
    {"--num-classes", "N", kModelScopes, "the data set's", "model", "classes"},
    {"--hidden", "SIZES", kModelScopes, "1024,1024", "model", "mlp: hidden sizes, comma-separated, or none"},
    // ---- data ---------------------------------------------------------------------------------
    {"--dataset", "D", kModelScopes, "fashion-mnist", "data", "fashion-mnist|mnist|kmnist|cifar10|cifar100|imagefolder"},
    {"--data", "DIR", kModelScopes, "", "data", "the data set's folder (default: Debian's dataset-fashion-mnist)"},
    {"--limit", "N", kModelScopes, "", "data",
     "use N images (training; eval, quantize, analyze: N test images); default all"},
    {"--resize", "N", kModelScopes, "", "data", "resize each image's shorter side to N pixels (torchvision's Resize(N))"},
    {"--center-crop", "N", kModelScopes, "", "data",
     "crop each image's central N×N (CenterCrop(N)); with --resize, a folder of mixed sizes becomes N×N"},
    {"--mean", "a,b,c", kModelScopes, "the data set's", "data", "normalization mean per channel"},
    {"--std", "a,b,c", kModelScopes, "the data set's", "data", "normalization standard deviation per channel"},
    {"--workers", "N", kModelScopes, "2", "data", "data-loader threads"},
    {"--val-split", "F", kTrain, "0", "data", "validate on a held-out fraction F of train (0: the test split)"},
    {"--val-limit", "N", kTrain, "", "data", "validate on N images; default all"},
    {"--no-augment", nullptr, kTrain, "", "data", "no random crop and flip"},
    // ---- schedule -----------------------------------------------------------------------------
    {"--epochs", "N", kTrain, "1", "schedule", "epochs"},
    {"--batch --batch-size", "N", kTrain, "128", "schedule", "batch size"},
    {"--lr", "X", "qat distill-qat", "0.01", "schedule", "learning rate (fine-tuning a quantized model)"},
    {"--lr", "X", "train distill", "0.1", "schedule", "learning rate"},
    {"--schedule", "S", kTrain, "cosine", "schedule", "cosine|step|multistep|constant"},
    {"--lr-step", "E", kTrain, "1", "schedule", "step: decay every E epochs"},
    {"--lr-milestones", "E1,E2", kTrain, "", "schedule", "multistep: decay at these epochs"},
    {"--lr-gamma", "G", kTrain, "0.1", "schedule", "step, multistep: decay factor"},
    {"--warmup-epochs", "N", kTrain, "0", "schedule", "linear warm-up epochs"},
    {"--optimizer", "O", kTrain, "sgd", "schedule", "sgd|adam|adamw"},
    {"--momentum", "X", kTrain, "0.9", "schedule", "momentum (sgd)"},
    {"--nesterov", nullptr, kTrain, "", "schedule", "Nesterov momentum (sgd)"},
    {"--wd --weight-decay", "X", kTrain, "5e-4", "schedule", "weight decay"},
    {"--label-smoothing", "X", kTrain, "0", "schedule", "label smoothing of the cross-entropy"},
    {"--clip-grad", "X", kTrain, "0", "schedule", "clip the gradients' global L2 norm to X (0: off)"},
    // ---- run ----------------------------------------------------------------------------------
    {"--out", "F", kTrain, "", "run",
     "the checkpoint (required; written each epoch with optimizer state, and F's .best twin: best validation)"},
    {"--resume", "F", kTrain, "", "run", "continue F's run with its settings"},
    {"--init", "F", kTrain, "", "run", "start from F's weights"},
    {"--stop-after", "E", kTrain, "--epochs", "run", "stop after epoch E of the planned schedule (resume later)"},
    {"--metrics", "F", kTrain, "", "run", "JSON lines: each epoch's first step, every 20 steps and every epoch (lowbit report plots them)"},
    {"--on-divergence", "P", kTrain, "stop", "run",
     "stop|warn: a training loss rising for 3 windows of 20 steps to 2× the first window's ends the run "
     "(exit 2) or warns"},
    {"--on-nonfinite", "P", kTrain, "stop", "run",
     "stop|skip: a NaN or Inf loss or gradient ends the run naming the step and the first parameter it reached "
     "(exit 2), or drops that batch (counted)"},
    {"--quiet", nullptr, "train qat distill eval quantize quantize-dynamic demo", "", "run", "no progress bar"},
    // ---- quantization -------------------------------------------------------------------------
    {"--weights", "F", "qat", "", "quantization", "the float checkpoint to fine-tune (required)"},
    {"--qconfig", "Q", "quantize qat distill", "w8a8", "quantization",
     "w8a8|w8a8-per-tensor|w4a8|w4a4|w2a2 (distill: a low-bit student)"},
    {"--quantizer", "Q", "qat distill", "ste", "quantization", "ste|lsq|lsq+ (distill: a low-bit student)"},
    {"--observer", "O", "quantize qat distill-qat", "the preset's", "quantization",
     "minmax|ema|histogram|entropy|percentile|mse (activations; QAT with STE: minmax|ema)"},
    {"--per-channel", nullptr, "quantize quantize-dynamic qat distill-qat", "", "quantization", "per-channel weights"},
    {"--per-tensor", nullptr, "quantize quantize-dynamic qat distill-qat", "", "quantization", "per-tensor weights"},
    {"--lsq-init", "I", "qat distill-qat", "auto", "quantization",
     "auto|mean|observer: LSQ's first step (auto: observer at 8 bits, else 2·mean|x|/√Qp)"},
    {"--freeze-bn-after", "E", "qat distill-qat", "never", "quantization", "freeze BN statistics after epoch E"},
    {"--freeze-observers-after", "E", "qat distill-qat", "never", "quantization", "freeze observers after epoch E"},
    {"--quantize-activations-after", "E", "qat distill-qat", "0", "quantization",
     "quantize activations from epoch E on (weights first)"},
    {"--bn-reestimate", "N", "qat distill-qat", "64", "quantization",
     "before freezing, recompute BN statistics on N training batches, kept if the loss on 16 falls (0: off)"},
    {"--int8-out", "F", "qat distill-qat", "", "quantization", "after the last epoch, also write the int8 engine's model"},
    // ---- distillation -------------------------------------------------------------------------
    {"--teacher", "T", "distill", "", "distillation", "the teacher: a float checkpoint (required; frozen, eval mode)"},
    {"--teacher-model", "M", "distill", "", "distillation", "the model the teacher file holds (required)"},
    {"--temperature", "T", "distill", "4", "distillation",
     "loss: alpha·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − alpha)·CE(z_s, y)"},
    {"--alpha", "A", "distill", "0.9", "distillation", "weight of the teacher term"},
    {"--hint", "T_MOD:S_MOD,...", "distill", "", "distillation",
     "FitNets hints: 1×1 conv+BN adapter, MSE (module names as PyTorch's: layer2, features.7)"},
    {"--hint-weight", "X", "distill", "1", "distillation", "weight of the hint terms"},
    {"--attention", "T_MOD:S_MOD,...", "distill", "", "distillation", "attention transfer"},
    {"--attention-weight", "X", "distill", "1000", "distillation", "weight of the attention terms"},
    {"--attention-p", "P", "distill", "2", "distillation", "attention maps: mean of |a|^P over channels"},
    // ---- eval, quantize, analyze, infer -------------------------------------------------------
    {"--weights", "F", "eval", "", "input",
     "a float checkpoint, a quantized one (simulated) or an int8 model file (the int8 engine) (required)"},
    {"--weights", "F", "quantize quantize-dynamic", "", "input", "the float checkpoint (required)"},
    {"--weights", "Q", "analyze", "", "input", "a quantized checkpoint (required)"},
    {"--weights", "F", "infer", "", "input", "an int8 model file (required)"},
    {"--batch --batch-size", "N", "eval quantize quantize-dynamic", "256", "input", "batch size"},
    {"--compare-sim", nullptr, "eval", "", "input",
     "quantized F: convert to int8 in memory and compare with the simulation image by image"},
    {"--out", "Q", "quantize quantize-dynamic", "", "output", "the quantized checkpoint (required)"},
    {"--int8-out", "F", "quantize quantize-dynamic", "", "output",
     "also write the int8 engine's model (dynamic: models whose every layer is dynamic)"},
    {"--calib", "N", "quantize", "1024", "input", "calibration images from the training split"},
    {"--calib", "N", "analyze", "256", "input", "training images the outputs are compared on"},
    {"--dynamic", nullptr, "quantize quantize-dynamic", "", "dynamic",
     "dynamic quantization: s8 Linear weights, activations quantized per batch (no calibration)"},
    {"--reduce-range", nullptr, "quantize-dynamic", "", "dynamic", "activations 0..127 (PyTorch's reduce_range)"},
    {"--layers", "Linear|PATH,...", "quantize-dynamic", "Linear", "dynamic", "the layers to quantize"},
    {"--top", "K", "infer", "5", "input", "classes shown per image"},
    // ---- demo, report -------------------------------------------------------------------------
    {"--full", nullptr, "demo", "", "demo", "the recipes (hours) instead of the short schedules"},
    {"--out", "DIR", "demo", "lowbit-demo-DATE-TIME", "demo", "the run folder"},
    {"--data", "DIR", "demo report", "", "demo", "the Fashion-MNIST folder"},
    {"--quiet", nullptr, "demo", "", "demo", "no progress bars"},
    {"--limit", "N", "demo", "", "demo", "every stage on N images (a quick look)"},
    {"--out", "F.html", "report", "RUN_DIR/report.html", "report", "the report file"},
    // ---- bench (defaults: bench/*.h's option structs) ----------------------------------------
    {"--batch", "N", "bench-conv", "32", "conv", "batch size"},
    {"--reps", "N", "bench-conv", "5", "conv", "timed runs (the median is reported)"},
    {"--warmup", "N", "bench-conv", "1", "conv", "untimed runs first"},
    {"--path", "P", "bench-conv", "table", "conv", "table|im2col: the kernel table's convolution, or im2col over its GEMM"},
    {"--case", "NAME", "bench-conv", "", "conv", "only this case; default all"},
    {"--model", "M", "bench-train", "resnet20", "train, distill", "the (student) model"},
    {"--model", "M", "bench-distill", "mobilenet_v2", "train, distill", "the (student) model"},
    {"--width", "W", "bench-train", "1", "train, distill", "width multiplier"},
    {"--width", "W", "bench-distill", "0.25", "train, distill", "width multiplier"},
    {"--small-input", nullptr, "bench-train bench-distill", "", "train, distill", "stride-1 stem"},
    {"--batch", "N", "bench-train bench-distill", "128", "train, distill", "batch size"},
    {"--size", "S", "bench-train bench-distill", "28", "train, distill", "image size S×S"},
    {"--channels", "C", "bench-train bench-distill", "1", "train, distill", "image channels"},
    {"--classes", "K", "bench-train bench-distill", "10", "train, distill", "classes"},
    {"--steps", "N", "bench-train bench-distill", "10", "train, distill", "timed steps"},
    {"--warmup", "N", "bench-train bench-distill", "3", "train, distill", "untimed steps first"},
    {"--qconfig", "Q", "bench-train bench-distill", "", "train, distill", "a QAT step (w8a8, w4a4, ...) instead of a float one"},
    {"--quantizer", "Q", "bench-train bench-distill", "", "train, distill", "ste|lsq|lsq+ (with --qconfig)"},
    {"--teacher-model", "T", "bench-distill", "resnet20", "train, distill", "the teacher model"},
    {"--attention", "A:B,...", "bench-distill", "", "train, distill", "attention-transfer taps; default logit KD only"},
    {"--model", "M", "bench-models", "resnet18", "models", "resnet18|mobilenet_v2"},
    {"--batch", "N", "bench-models", "1", "models", "batch size"},
    {"--size", "S", "bench-models", "224", "models", "image size S×S"},
    {"--reps", "N", "bench-models", "10", "models", "timed runs"},
    {"--warmup", "N", "bench-models", "3", "models", "untimed runs first"},
    {"--int8-only", nullptr, "bench-models", "", "models", "only the int8 engine"},
    {"--float-only", nullptr, "bench-models", "", "models", "only the float model"},
    {"--profile", nullptr, "bench-models", "", "models", "the int8 model's time per op kind and its slowest ops"},
    {"--reps", "N", "bench-kernels", "10", "kernels", "at least this many timed runs per side"},
    {"--seconds", "S", "bench-kernels", "0.2", "kernels", "and at least this many seconds per side and case"},
    {"--case", "NAME", "bench-kernels", "", "kernels", "only cases whose name contains NAME; default all"},
    // ---- every command ------------------------------------------------------------------------
    {"--threads", "N", "*", "the cores", "common", "OpenMP threads", "LOWBIT_THREADS, then OMP_NUM_THREADS"},
    {"--seed", "S", "*", "0", "common", "random seed (initialization, data order, augmentation)"},
    {"--json", nullptr, "*", "", "common", "one JSON line of results on stdout instead of text"},
    {"--help -h", nullptr, "*", "", "common", "this help"},
};

const std::vector<Command> kCommands = {
    {"info", "[--json]", "version, CPU features, chosen kernel paths", "", 0},
    {"train", "--model M --out F.safetensors [options]", "float training",
     "  Ctrl-C stops at the next step (exit 130) and names the checkpoint to --resume from\n", 0},
    {"eval", "--weights F.safetensors [options]",
     "accuracy, loss, size and latency: float, quantized (simulated) or int8 file",
     "  the model is rebuilt from the checkpoint's metadata (written by lowbit train)\n", 0},
    {"quantize", "--weights F.safetensors --out Q.safetensors [options]",
     "post-training static quantization, or --dynamic (Linear layers, no calibration)",
     "  prints float and quantized (simulated) accuracy and size; writes Q (float weights + quantization parameters)\n"
     "  --dynamic prints float vs dynamic accuracy, size and batch-1/32 latency\n",
     0},
    {"qat", "--weights F.safetensors --out Q.safetensors [options]", "quantization-aware training",
     "  writes Q (resumable each epoch; frozen after the last) and Q's .best twin (frozen)\n", 0},
    {"distill", "--teacher T.safetensors --teacher-model M --model S --out F.safetensors [options]",
     "teacher–student training (float, or a low-bit student with --qconfig)",
     "  the student: --model S ... from scratch, or --init F (float weights); with --qconfig or --quantizer\n"
     "  it trains quantized (QAT) and takes the quantization options\n",
     0},
    {"analyze", "--weights Q.safetensors [options]", "per-layer quantization error (weight and output SQNR)",
     "  per quantized layer: SQNR in dB of its weights (float, BN folded, vs fake-quantized) and of its output\n", 0},
    {"infer", "--weights F.int8.safetensors IMAGE... [options]", "top classes of images on the int8 engine",
     "  decodes PNG/JPEG/BMP/GIF/TGA/PNM, resizes to the model's input, normalizes as the file says\n",
     static_cast<size_t>(-1)},
    {"bench", "peak|conv|train|distill|kernels|models [options]",
     "machine peak; float conv; training and distillation steps; int8 vs references",
     "  peak: fp32 and int8 multiply-add peak; conv: float conv, ResNet-18 shapes; train: training step\n"
     "  throughput and peak memory; distill: distillation step vs the plain student step; kernels: int8\n"
     "  GEMM/conv vs oneDNN; models: whole-model inference, float vs the int8 engine\n",
     1},
    {"demo", "[options]", "the whole cycle: teacher, distilled student, PTQ, QAT+KD, int8; a table",
     "  short schedules (9 to 31 minutes on 2 cores); writes checkpoints, int8 models, metrics.jsonl, table.md\n", 0},
    {"report", "RUN_DIR [options]", "one self-contained HTML report of a demo run folder",
     "  training curves, the comparison table, accuracy against size, per-layer quantization error\n", 1},
};

std::vector<std::string> words(const char* s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool in_scopes(const Option& o, const std::vector<std::string>& scopes) {
  if (std::strcmp(o.scopes, "*") == 0) return true;
  for (const std::string& s : words(o.scopes))
    if (std::find(scopes.begin(), scopes.end(), s) != scopes.end()) return true;
  return false;
}

// A command's scopes: the command and its modes ("distill", "distill-qat").
bool of_command(const Option& o, const std::string& cmd) {
  if (std::strcmp(o.scopes, "*") == 0) return true;
  for (const std::string& s : words(o.scopes))
    if (s == cmd || s.rfind(cmd + "-", 0) == 0) return true;
  return false;
}

std::string name_of(const Option& o) { return words(o.names)[0]; }

std::string flag_text(const Option& o) {
  std::string t = name_of(o);
  if (o.value) t += std::string(" ") + o.value;
  return t;
}

std::string aliases_of(const Option& o) {
  const auto w = words(o.names);
  std::string t;
  for (size_t i = 1; i < w.size(); ++i) t += (t.empty() ? "" : ", ") + w[i];
  return t;
}

// The options of one command, in table order, common ones last.
std::vector<const Option*> command_options(const std::string& cmd) {
  std::vector<const Option*> out, common;
  for (const Option& o : kOptions)
    if (of_command(o, cmd)) (std::strcmp(o.scopes, "*") == 0 ? common : out).push_back(&o);
  out.insert(out.end(), common.begin(), common.end());
  return out;
}

// Where in a command an option applies, when not everywhere in it ("with --qconfig", "conv").
std::string mode_of(const Option& o, const std::string& cmd) {
  if (std::strcmp(o.scopes, "*") == 0) return "";
  bool plain = false;
  std::vector<std::string> modes;
  for (const std::string& s : words(o.scopes)) {
    if (s == cmd) plain = true;
    if (s.rfind(cmd + "-", 0) == 0) modes.push_back(s.substr(cmd.size() + 1));
  }
  if (plain || modes.empty()) return "";
  std::string t;
  for (const std::string& m : modes)
    t += (t.empty() ? "" : ", ") + (m == "qat" ? std::string("with --qconfig") : m == "dynamic" ? "with --dynamic" : m);
  return t;
}

}  // namespace

const std::vector<Option>& options() { return kOptions; }
const std::vector<Command>& commands() { return kCommands; }

const Command* find_command(const std::string& name) {
  for (const Command& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

const Option* find_option(const std::string& name, const std::vector<std::string>& scopes) {
  for (const Option& o : kOptions) {
    const auto w = words(o.names);
    if (std::find(w.begin(), w.end(), name) != w.end() && in_scopes(o, scopes)) return &o;
  }
  return nullptr;
}

std::vector<std::string> option_names(const std::vector<std::string>& scopes) {
  std::vector<std::string> out;
  for (const Option& o : kOptions)
    if (in_scopes(o, scopes))
      for (const std::string& n : words(o.names))
        if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  return out;
}

std::string canonical_name(const std::string& name) {
  for (const Option& o : kOptions) {
    const auto w = words(o.names);
    if (std::find(w.begin() + 1, w.end(), name) != w.end()) return w[0];
  }
  return name;
}

bool is_switch(const std::string& name) {
  for (const Option& o : kOptions)
    if (!o.value && name_of(o) == name) return true;
  return false;
}

std::string usage_text() {
  std::string t = "usage: lowbit <command> [options]\n\ncommands:\n";
  for (const Command& c : kCommands) {
    std::string head = std::string("  ") + c.name;
    head.resize(12, ' ');
    t += head + c.summary + "\n";
  }
  t += "\nlowbit help COMMAND (or lowbit COMMAND --help) lists a command's options; lowbit --version\n"
       "common options: --threads N  --seed S  --json\n"
       "environment: LOWBIT_ISA=ref|avx2|avxvnni|avx512vnni|neon|neondot (force a kernel path)\n"
       "             LOWBIT_THREADS=N (else OMP_NUM_THREADS)\n";
  return t;
}

std::string command_help(const Command& c) {
  std::string t = std::string("usage: lowbit ") + c.name + " " + c.synopsis + "\n";
  std::string group;
  for (const Option* o : command_options(c.name)) {
    if (group != o->group) {
      group = o->group;
      t += std::string("  ") + group + ":\n";
    }
    std::string line = "    " + flag_text(*o);
    if (line.size() < 30) line.resize(30, ' ');
    else line += "  ";
    line += o->help;
    if (*o->def) line += std::string(" (") + o->def + ")";
    const std::string mode = mode_of(*o, c.name), al = aliases_of(*o);
    if (!mode.empty()) line += " [" + mode + "]";
    if (!al.empty()) line += "; alias " + al;
    if (o->env) line += std::string("; env ") + o->env;
    t += line + "\n";
  }
  return t + c.notes;
}

std::string markdown_reference() {
  auto cell = [](std::string s) {
    for (size_t i = 0; (i = s.find('|', i)) != std::string::npos; i += 2) s.replace(i, 1, "\\|");
    return s;
  };
  std::string t;
  for (const Command& c : kCommands) {
    t += std::string("#### lowbit ") + c.name + "\n\n`lowbit " + c.name + " " + c.synopsis + "`: " + c.summary +
         ".\n\n| option | default | meaning |\n|---|---|---|\n";
    for (const Option* o : command_options(c.name)) {
      std::string meaning = o->help;
      const std::string mode = mode_of(*o, c.name), al = aliases_of(*o);
      if (!mode.empty()) meaning = "(" + mode + ") " + meaning;
      if (!al.empty()) meaning += "; alias " + al;
      if (o->env) meaning += std::string("; environment: ") + o->env;
      t += "| `" + cell(flag_text(*o)) + "` | " + cell(o->def) + " | " + cell(meaning) + " |\n";
    }
    t += "\n";
  }
  return t;
}

}  // namespace lowbit::cli
