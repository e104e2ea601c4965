// Pieces shared by the lowbit subcommands: data sets and loaders from the
// common flags, model construction, evaluation.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "data/loader.h"
#include "nn/checkpoint.h"
#include "nn/trainer.h"
#include "nn/models.h"
#include "quant/engine/model.h"
#include "quant/qconfig.h"
#include "quant/qmodules.h"
#include "quant/quantize.h"
#include "tools/cli.h"

namespace lowbit::cli {

using Json = nlohmann::ordered_json;  // tools/json.h

// --dataset NAME --data DIR --limit N --mean a,b,c --std a,b,c
struct DataFlags {
  std::string dataset = "fashion-mnist";
  std::string dir;
  int64_t limit = 0;  // 0: all
  data::Normalization norm;
  // imagefolder: the images as --in-channels asks (1: grayscale as torchvision's
  // Grayscale, 3: RGB); the files' own mode is converted.
  data::ColorMode color = data::ColorMode::rgb;
  // --resize N (shorter side, torchvision's Resize(N)) and --center-crop N
  // (CenterCrop(N)), applied to every image as it is read; 0: off.
  int64_t resize = 0, center_crop = 0;
};
DataFlags data_flags(const Args& a);

// The split as a Dataset (after --limit, seeded). Refuses a --mean/--std
// whose length is neither 1 nor the images' channel count.
data::DatasetPtr open_split(const DataFlags& f, bool train, uint64_t seed);

// Training transforms: RandomCrop(size, padding = size/14 rounded, i.e. 2 for
// 28×28 and 32×32 images… 4 for 32) + horizontal flip + normalize, or just
// normalize with augment = false.
data::TransformPtr train_transform(const DataFlags& f, const data::Dataset& ds, bool augment);
data::TransformPtr eval_transform(const DataFlags& f);

// --model --width --small-input --act --in-channels --num-classes --hidden; channel and
// class counts default to the data set's, the image size is the data set's.
// The mlp's --hidden: "1024,1024" or "none"; and back.
nn::ModelConfig model_config(const Args& a, const data::Dataset& ds);
std::vector<int64_t> parse_hidden(const std::string& s);

// Ctrl-C (SIGINT) and SIGTERM for long commands: the first sets a flag the
// training loop polls after every step (it stops, says which checkpoint holds
// the last finished epoch and how to resume, and exits 130); a second one
// ends the process at once (the default action).
void install_stop_handler();
bool stop_requested();


// Median wall time of f() in milliseconds over `reps` calls after `warmup`.
double median_ms(const std::function<void()>& f, int reps = 30, int warmup = 5);

using nn::EvalResult;
// nn::evaluate with a progress bar labelled `label` (when `progress`).
EvalResult evaluate(nn::Module& model, const BatchSource& loader, bool progress, const std::string& label);
// The same for any function from an image batch to logits (the int8 engine).
EvalResult evaluate(const std::function<Tensor(const Tensor&)>& forward, const BatchSource& loader, bool progress,
                    const std::string& label);

// What `lowbit qat` and `distill` add to `lowbit train`: the module to train,
// the library's callbacks for nn::Trainer (quant::QatSchedule,
// distill::DistillLoss) and the command's own (itself: printing, --int8-out).
struct TrainVariant : nn::TrainerCallback {
  // The module to train, from the freshly built float model; resuming: its
  // state comes from the --resume file next.
  virtual nn::ModulePtr build(const nn::ModulePtr& float_model, const nn::ModelConfig& cfg, bool resuming) = 0;
  // The library's callbacks, in order; the variant itself is called after them.
  virtual std::vector<nn::TrainerCallback*> callbacks() = 0;
  virtual void json_fields(nn::Module& model, Json& out) = 0;  // its fields of the --json line
  bool loads_init = false;  // the variant reads --init itself (train then does not)
  // The training images' data set (--int8-out traces one image of it), before fit.
  const data::Dataset* train_data = nullptr;
  bool quiet = false;  // --quiet or --json
};
// `lowbit train` (variant null) and its variants.
int run_training(const Args& a, TrainVariant* variant);

// Defaults for the model and data flags from a checkpoint's metadata (what
// `lowbit train` wrote); flags given on the command line win.
Args with_checkpoint_defaults(const Args& a, const std::map<std::string, std::string>& metadata);

// Refuses model flags the model does not have (given on the command line):
// --width, --small-input and --act are mobilenet_v2's, --hidden the mlp's.
void check_model_flags(const Args& given, const std::string& model);

// With --resume F: the model's description (with_checkpoint_defaults) and the
// run's training settings (batch, lr, schedule, limits, …) from F's metadata,
// for every flag the command line leaves out, so `train --resume F --out F`
// continues the run as it was started. Flags given must match F (the trainer
// refuses other settings). Without --resume: `a` unchanged.
Args with_resume_settings(const Args& a);

// --qconfig (w8a8 default) with --observer, --per-channel/--per-tensor and,
// for QAT, --quantizer applied; the sub-8-bit presets keep the model's first
// conv and last linear at 8 bits. model null: only check the flags.
quant::QConfig qconfig_from_flags(const Args& a, nn::Module* model, bool qat);

// Refuses, before any work, an output path that cannot be written: a
// directory or device (only regular files are replaced), a missing parent
// directory, or one this process cannot create files in.
void check_output_path(const std::string& flag, const std::string& path);

// Refuses, before any work, an output that is also an input or another
// output (the input would be replaced while it is read, or one output lost):
// --out, --int8-out, --metrics and, for commands that keep a best epoch
// (writes_best), the best checkpoint next to --out, against --weights, --init,
// --resume and --teacher. Resuming in place (--resume F --out F) is allowed.
void check_distinct_files(const Args& a, bool writes_best);

// An int8 model file read as a classifier (infer, eval): its input
// normalization and class names from its metadata, checked against the graph.
// Error naming the file when the output is not a vector of class scores, when
// num_classes or the class names disagree with it, or when mean/std do not
// have 1 or C finite values (std positive).
struct Int8Classifier {
  std::vector<float> mean{0.0f}, std{1.0f};
  std::vector<std::string> names;  // empty: the file names none
  int64_t classes = 0;
};
Int8Classifier int8_classifier(const quant::engine::Model& m, const std::string& path);

// nn::create_model, refused (UsageError with the figures) when the model's
// weights would take more than 1/`copies` of the memory available now
// (/proc/meminfo MemAvailable): training holds weights, gradients and the
// optimizer's state (copies = 3), evaluation the weights (1).
nn::ModulePtr create_model_that_fits(const std::string& name, const nn::ModelConfig& cfg, int copies);

// Refuses a checkpoint whose metadata (written by lowbit train) describes
// another model than `cfg`: "F holds a resnet32 (1 channel, 10 classes), not a
// resnet20 (…)". Files without that metadata pass (the load then checks keys).
void check_checkpoint_model(const std::string& path, const std::string& model, const nn::ModelConfig& cfg);

// Converts a frozen quantized model (quant::freeze) to the int8 engine's file
// (quant/engine/model.h), traced on one image of `ds`'s shape, with what
// `lowbit infer` and `eval` need in its metadata: the model's description
// (`model_md`), the data set, normalization and class names. Returns the
// integer model's bytes. Error naming the layer if it cannot run in integers.
int64_t write_int8(const std::string& path, quant::QuantModel& q, const data::Dataset& ds, const DataFlags& df,
                   const nn::Metadata& model_md);
// The same for an integer model already converted (dynamic quantization).
int64_t save_int8(const std::string& path, quant::engine::Model m, const data::Dataset& ds, const DataFlags& df,
                  const nn::Metadata& model_md);

// "a,b,c" → floats (usage error naming the flag otherwise).
std::vector<float> parse_floats(const std::string& flag, const std::string& s);

}  // namespace lowbit::cli
