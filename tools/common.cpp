#include "tools/common.h"

#include "quant/convert.h"
#include "quant/engine/model.h"

#include <fcntl.h>

#include <atomic>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <tuple>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "core/strings.h"
#include "nn/metrics.h"
#include "quant/quantize.h"
#include "tools/progress.h"

namespace lowbit::cli {

std::vector<float> parse_floats(const std::string& flag, const std::string& s) {
  std::vector<float> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    float v = std::strtof(item.c_str(), &end);
    if (item.empty() || *end || !std::isfinite(v))
      throw UsageError(flag + " expects comma-separated finite numbers, got '" + s + "'");
    out.push_back(v);
  }
  if (out.empty()) throw UsageError(flag + " expects comma-separated numbers, got '" + s + "'");
  return out;
}

DataFlags data_flags(const Args& a) {
  DataFlags f;
  f.dataset = a.get("--dataset");
  f.dir = a.get("--data", "");
  f.limit = a.get_int("--limit", 0);
  if (a.has("--limit") && f.limit < 1) throw UsageError("--limit must be at least 1 (leave it out for all images)");
  f.norm = data::default_normalization(f.dataset);
  if (f.dataset == "imagefolder" && a.has("--in-channels")) {
    const int64_t c = a.get_int("--in-channels", 3);
    if (c != 1 && c != 3) throw UsageError("--in-channels must be 1 (grayscale) or 3 (RGB) for image folders");
    f.color = c == 1 ? data::ColorMode::grayscale : data::ColorMode::rgb;
    if (c == 1 && !a.has("--mean")) f.norm.mean.resize(1);
    if (c == 1 && !a.has("--std")) f.norm.std.resize(1);
  }
  for (auto [flag, v] : {std::pair{"--resize", &f.resize}, std::pair{"--center-crop", &f.center_crop}}) {
    if (!a.has(flag)) continue;
    *v = a.get_int(flag, 0);
    if (*v < 1 || *v > 8192) throw UsageError(std::string(flag) + " takes a size in pixels from 1 to 8192, got " + a.get(flag, ""));
  }
  if (a.has("--mean")) f.norm.mean = parse_floats("--mean", a.get("--mean", ""));
  if (a.has("--std")) f.norm.std = parse_floats("--std", a.get("--std", ""));
  if (f.norm.mean.size() != f.norm.std.size())
    throw UsageError("--mean has " + std::to_string(f.norm.mean.size()) + " values but --std has " +
                     std::to_string(f.norm.std.size()));
  return f;
}

namespace {

std::string data_name(const DataFlags& f) { return f.dir.empty() ? f.dataset : f.dir; }

// "mobilenet_v2 (1 channel, 10 classes, width 0.5, relu6)": what the model checks compare.
}  // namespace

data::DatasetPtr open_split(const DataFlags& f, bool train, uint64_t seed) {
  data::DatasetSpec spec;
  spec.name = f.dataset;
  spec.dir = f.dir;
  spec.train = train;
  spec.color = f.color;
  data::DatasetPtr ds = data::open_dataset(spec);
  std::vector<data::TransformPtr> geometry;
  if (f.resize) geometry.push_back(data::resize(f.resize));
  if (f.center_crop) geometry.push_back(data::center_crop(f.center_crop));
  if (!geometry.empty()) ds = data::with_transform(ds, data::compose(geometry));
  const int64_t channels = ds->get(0).image.shape()[0];
  for (const auto& [flag, v] : {std::pair{"--mean", f.norm.mean}, std::pair{"--std", f.norm.std}})
    if (v.size() != 1 && (int64_t)v.size() != channels)
      throw UsageError(std::string(flag) + " has " + std::to_string(v.size()) + " values but the " + data_name(f) +
                       " images have " + std::to_string(channels) + " channel" + (channels == 1 ? "" : "s"));
  if (f.limit > 0 && f.limit < ds->size()) ds = data::limit(ds, f.limit, seed);
  return ds;
}

data::TransformPtr train_transform(const DataFlags& f, const data::Dataset& ds, bool augment) {
  std::vector<data::TransformPtr> t;
  if (augment) {
    const Tensor img = ds.get(0).image;  // C×H×W
    const int64_t h = img.shape()[1], w = img.shape()[2];
    const int64_t pad = h <= 28 ? 2 : 4;  // the usual Fashion-MNIST / CIFAR recipes
    t.push_back(data::random_crop(h, w, {pad, pad, pad, pad}));
    t.push_back(data::random_horizontal_flip());
  }
  t.push_back(data::to_tensor());
  t.push_back(data::normalize(f.norm.mean, f.norm.std));
  return data::compose(t);
}

data::TransformPtr eval_transform(const DataFlags& f) {
  return data::compose({data::to_tensor(), data::normalize(f.norm.mean, f.norm.std)});
}

std::vector<int64_t> parse_hidden(const std::string& s) {
  try {
    return nn::parse_hidden(s);
  } catch (const Error&) {
    throw UsageError("--hidden takes sizes from 1 to 1048576 separated by commas (e.g. 1024,1024) or 'none', got '" + s +
                     "'");
  }
}

nn::ModelConfig model_config(const Args& a, const data::Dataset& ds) {
  nn::ModelConfig c;
  const int64_t data_channels = ds.get(0).image.shape()[0];
  c.in_channels = a.get_int("--in-channels", data_channels);
  c.num_classes = a.get_int("--num-classes", ds.num_classes());
  if (!a.has("--num-classes") && c.num_classes < 2)
    throw UsageError("the data set has " + std::to_string(c.num_classes) +
                     " class; a classifier needs at least 2 (an image folder holds one folder per class: DIR/CLASS/IMAGE)");
  if (c.in_channels != data_channels)
    throw UsageError("--in-channels " + std::to_string(c.in_channels) + " but the images have " +
                     std::to_string(data_channels) + " channel" + (data_channels == 1 ? "" : "s"));
  c.width_mult = (float)a.get_double("--width");
  c.small_input = a.has("--small-input");
  const std::string act = a.get("--act");
  if (act != "relu" && act != "relu6") throw UsageError("--act must be relu or relu6, got '" + act + "'");
  c.relu6 = act == "relu6";
  if (c.in_channels < 1) throw UsageError("--in-channels must be at least 1");
  if (c.num_classes < 2) throw UsageError("--num-classes must be at least 2");
  if (!(c.width_mult > 0)) throw UsageError("--width must be positive");
  if (a.has("--hidden")) c.hidden = parse_hidden(a.get("--hidden", ""));
  const Shape img = ds.get(0).image.shape();  // C×H×W
  c.input_h = img[1];
  c.input_w = img[2];
  return c;
}

Args with_checkpoint_defaults(const Args& a_in, const std::map<std::string, std::string>& md) {
  Args a = a_in;
  auto from_meta = [&](const char* meta_key, const char* flag, bool is_switch = false) {
    auto it = md.find(meta_key);
    if (it == md.end() || a.has(flag)) return;
    if (is_switch) {
      if (it->second == "1") a.flags[flag] = "";
    } else {
      a.flags[flag] = it->second;
    }
  };
  from_meta("model", "--model");
  from_meta("dataset", "--dataset");
  from_meta("width", "--width");
  from_meta("act", "--act");
  from_meta("in_channels", "--in-channels");
  from_meta("num_classes", "--num-classes");
  from_meta("small_input", "--small-input", true);
  from_meta("hidden", "--hidden");
  return a;
}

void check_model_flags(const Args& given, const std::string& model) {
  for (const char* f : {"--width", "--small-input", "--act"})
    if (given.has(f) && model != "mobilenet_v2")
      throw UsageError(std::string(f) + " is a mobilenet_v2 option; " + model + " has no such setting");
  if (given.has("--hidden") && model != "mlp")
    throw UsageError("--hidden is the mlp's option; " + model + " has no hidden layers to size");
}

Args with_resume_settings(const Args& a_in) {
  if (!a_in.has("--resume")) return a_in;
  const std::string path = a_in.get("--resume", "");
  const auto md = load_safetensors(path).metadata;
  const auto fmt = md.find("format");
  if (fmt != md.end() && fmt->second == "lowbit.int8")
    throw UsageError("--resume " + path + ": is an int8 model file; --resume takes the checkpoint a run writes after each "
                     "epoch (its --out), and --init F starts a new run from a float checkpoint's weights");
  if (!md.count("optim.type"))
    throw UsageError("--resume " + path + " holds no training state (no optimizer; a .best file keeps only the best "
                     "epoch's weights); to train on from its weights, use --init " + path);
  Args a = with_checkpoint_defaults(a_in, md);
  // The run's settings (train_settings: the keys are the flags' names), where
  // the command line does not give them; "0"/"default" mean the flag's default.
  for (const char* key : {"dataset", "limit", "val-split", "val-limit", "seed", "epochs", "batch", "lr", "momentum", "wd",
                          "optimizer", "schedule", "warmup-epochs", "lr-step", "lr-gamma", "lr-milestones",
                          "label-smoothing", "clip-grad"}) {
    const std::string flag = std::string("--") + key;
    const auto it = md.find(key);
    if (it == md.end() || a.has(flag) || it->second == "default") continue;
    const std::string k = key;
    if ((k == "limit" || k == "val-limit") && it->second == "0") continue;
    // Settings that only apply with another one (their recorded value is then the default).
    const std::string schedule = md.count("schedule") ? md.at("schedule") : "", opt = md.count("optimizer") ? md.at("optimizer") : "";
    if (k == "lr-gamma" && schedule != "step" && schedule != "multistep") continue;
    if (k == "momentum" && opt != "sgd") continue;
    a.flags[flag] = it->second;
  }
  for (const char* key : {"nesterov", "no-augment"}) {
    const auto it = md.find(key);
    if (it != md.end() && it->second == "1") a.flags[std::string("--") + key] = "";
  }
  return a;
}

quant::QConfig qconfig_from_flags(const Args& a, nn::Module* model, bool qat) {
  const auto [first, last] = model ? quant::first_and_last_layer(*model) : std::pair<std::string, std::string>{};
  quant::QConfig qc;
  try {
    qc = quant::preset(a.get("--qconfig"), first, last);
    if (a.has("--observer")) quant::set_activation_observer(qc, quant::parse_observer(a.get("--observer", "")));
    if (qat && a.has("--quantizer")) quant::set_quantizer(qc, quant::parse_quantizer(a.get("--quantizer", "")));
    if (qat && a.has("--lsq-init")) quant::set_lsq_init(qc, quant::parse_lsq_init(a.get("--lsq-init", "")));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (a.has("--per-channel") && a.has("--per-tensor")) throw UsageError("--per-channel and --per-tensor contradict each other");
  if (a.has("--per-channel")) quant::set_weight_per_channel(qc, true);
  if (a.has("--per-tensor")) quant::set_weight_per_channel(qc, false);
  qc.validate();
  return qc;
}

namespace {
bool same_file(const std::string& a, const std::string& b) {
  std::error_code e1, e2;
  if (std::filesystem::exists(a, e1) && std::filesystem::exists(b, e2)) return std::filesystem::equivalent(a, b, e1);
  return std::filesystem::weakly_canonical(a, e1) == std::filesystem::weakly_canonical(b, e2);
}
}  // namespace

void check_distinct_files(const Args& a, bool writes_best) {
  struct File {
    std::string flag, path, what;
  };
  std::vector<File> in, out;
  for (const char* f : {"--weights", "--init", "--resume", "--teacher"})
    if (a.has(f)) in.push_back({f, a.get(f, ""), std::string(f) + " " + a.get(f, "")});
  for (const char* f : {"--out", "--int8-out", "--metrics"})
    if (a.has(f)) out.push_back({f, a.get(f, ""), std::string(f) + " " + a.get(f, "")});
  if (writes_best && a.has("--out")) {
    const std::string best = nn::best_path(a.get("--out", ""));
    out.push_back({"--out", best, "--out " + a.get("--out", "") + " (its best epoch goes to " + best + ")"});
  }
  for (const File& o : out)
    for (const File& i : in)
      if (same_file(o.path, i.path) && !(i.flag == "--resume" && o.flag == "--out" && o.path == a.get("--out", "")))
        throw UsageError(o.what + " would replace " + i.what + ", which this run reads; write to another file");
  for (size_t x = 0; x < out.size(); ++x)
    for (size_t y = x + 1; y < out.size(); ++y)
      if (same_file(out[x].path, out[y].path))
        throw UsageError(out[x].what + " and " + out[y].what + " are the same file; each output needs its own");
}

void check_output_path(const std::string& flag, const std::string& path) {
  const std::string what = flag + " " + path + ": ";
  if (path.empty() || path.back() == '/') throw UsageError(what + "needs a file name");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw UsageError(what + (S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file") +
                     "; only regular files are replaced");
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw UsageError(what + "directory " + dir + " does not exist");
  // Permission bits do not tell (root, read-only mounts): create and remove a probe file.
  const std::string probe = dir + "/.lowbit-probe-" + std::to_string((long)::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw UsageError(what + "cannot create files in " + dir + ": " + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

int64_t write_int8(const std::string& path, quant::QuantModel& q, const data::Dataset& ds, const DataFlags& df,
                   const nn::Metadata& model_md) {
  const Shape img = ds.get(0).image.shape();  // C×H×W
  return save_int8(path, quant::convert(q, Tensor::zeros({1, img[0], img[1], img[2]})), ds, df, model_md);
}

int64_t save_int8(const std::string& path, quant::engine::Model m, const data::Dataset& ds, const DataFlags& df,
                  const nn::Metadata& model_md) {
  m.info = model_md;
  auto floats = [](const std::vector<float>& v) {
    std::string s;
    char b[32];
    for (size_t i = 0; i < v.size(); ++i) {
      std::snprintf(b, sizeof b, "%s%.9g", i ? "," : "", (double)v[i]);
      s += b;
    }
    return s;
  };
  m.info["dataset"] = df.dataset;
  m.info["mean"] = floats(df.norm.mean);
  m.info["std"] = floats(df.norm.std);
  std::string names;
  for (const auto& n : ds.class_names()) names += n + "\n";
  m.info["class_names"] = names;
  quant::engine::save(path, m);
  return quant::engine::model_bytes(m);
}

Int8Classifier int8_classifier(const quant::engine::Model& m, const std::string& path) {
  Int8Classifier c;
  const Shape& out = m.values.at((size_t)m.output).shape;
  LOWBIT_CHECK(out.size() == 1, path, ": its output (value ", m.output, ") is ", shape_str(out),
               " per image, not a vector of class scores");
  c.classes = out[0];
  if (m.info.count("num_classes"))
    LOWBIT_CHECK(m.info.at("num_classes") == std::to_string(c.classes), path, ": metadata says num_classes ",
                 printable(m.info.at("num_classes"), 40), " but the graph gives ", c.classes, " scores");
  if (m.info.count("class_names")) {
    c.names = split_all(m.info.at("class_names"), '\n');
    if (!c.names.empty() && c.names.back().empty()) c.names.pop_back();  // written with a final newline
    LOWBIT_CHECK((int64_t)c.names.size() == c.classes, path, ": ", c.names.size(), " class names for ", c.classes,
                 " classes");
  }
  const int64_t channels = m.input_shape.at(0);
  for (auto [key, v, positive] : {std::tuple{"mean", &c.mean, false}, std::tuple{"std", &c.std, true}}) {
    if (!m.info.count(key)) continue;
    *v = parse_floats(path + " metadata '" + key + "'", m.info.at(key));
    LOWBIT_CHECK(v->size() == 1 || (int64_t)v->size() == channels, path, ": metadata '", key, "' has ", v->size(),
                 " values for ", channels, "-channel input");
    for (float x : *v)
      LOWBIT_CHECK(std::isfinite(x) && (!positive || x > 0), path, ": metadata '", key, "' holds ", x,
                   positive ? " (a standard deviation must be positive)" : " (must be finite)");
  }
  return c;
}

nn::ModulePtr create_model_that_fits(const std::string& name, const nn::ModelConfig& cfg, int copies) {
  int64_t available = 0;  // bytes; 0: unknown (no /proc/meminfo), no limit
  if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    long long kb = 0;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "MemAvailable: %lld kB", &kb) == 1) available = (int64_t)kb * 1024;
    std::fclose(f);
  }
  if (available <= 0) return nn::create_model(name, cfg);
  try {
    AllocationLimit limit(available / copies, "");
    return nn::create_model(name, cfg);
  } catch (const AllocationLimitError&) {
    char b[256];
    std::snprintf(b, sizeof b, "%.1f GB", (double)available / (1 << 30));
    throw UsageError(nn::describe_model(name, cfg) + " does not fit in memory: its weights alone need more than " +
                     (copies > 1 ? "a third of the " + std::string(b) + " available (training holds weights, gradients and "
                                   "optimizer state)"
                                 : "the " + std::string(b) + " available") +
                     "; choose a smaller model, --width or --hidden");
  }
}

void check_checkpoint_model(const std::string& path, const std::string& model, const nn::ModelConfig& cfg) {
  const auto md = load_safetensors(path).metadata;
  if (!md.count("model")) return;
  // Keys the file lacks say nothing against the flags.
  const std::string want = nn::describe_model(model, cfg);
  const std::string have = nn::describe_model(md.at("model"), nn::ModelConfig::from_metadata(md, cfg));
  if (have != want) throw UsageError(path + " holds a " + printable(have) + ", not a " + want);
}

namespace {
std::atomic<int> g_stop{0};  // lock-free: safe in a handler, and read by any thread
void on_stop_signal(int sig) {
  g_stop = 1;
  signal(sig, SIG_DFL);  // a second Ctrl-C ends the process at once
}
}  // namespace

void install_stop_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return g_stop != 0; }

double median_ms(const std::function<void()>& f, int reps, int warmup) {
  std::vector<double> ms;
  for (int i = 0; i < warmup + reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    auto t1 = std::chrono::steady_clock::now();
    if (i >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

EvalResult evaluate(const std::function<Tensor(const Tensor&)>& forward, const BatchSource& loader, bool progress,
                    const std::string& label) {
  Progress bar(label, loader.num_samples(), "img", !progress);
  EvalResult r = nn::evaluate(forward, loader, [&](int64_t done, int64_t, double top1) {
    bar.update(done, "acc " + std::to_string(top1).substr(0, 6));
  });
  r.seconds = bar.elapsed();
  return r;
}

EvalResult evaluate(nn::Module& model, const BatchSource& loader, bool progress, const std::string& label) {
  const bool was_training = model.is_training();
  model.eval();
  EvalResult r = evaluate([&](const Tensor& x) { return model.forward(x); }, loader, progress, label);
  model.train(was_training);
  return r;
}

}  // namespace lowbit::cli
