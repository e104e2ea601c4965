// Training checkpoints: one safetensors file (core/safetensors.h; written
// atomically) holding the model, optionally the optimizer, and metadata.
//
// Layout
//   model        the state dict at the top level under its torchvision names
//                ("conv1.weight", "layer1.0.bn1.running_mean", ...)
//   optimizer    tensors "optim.state.<parameter>.<buffer>" (momentum_buffer,
//                exp_avg, exp_avg_sq, step) and scalars in __metadata__ under
//                "optim." (type, steps, per-group lr/initial_lr/weight_decay
//                and parameter names, hyperparameters) — see nn/optim.h
//   aux          (optional) training-only modules trained with the model — the
//                distillation step's hint adapters — as "aux.<their state dict>"
//   metadata     the caller's string pairs (epoch, best accuracy, model name,
//                config, ...) plus "format" = "lowbit.checkpoint.1"
//
// In PyTorch, the model part loads with
//   sd = safetensors.torch.load_file(path)
//   model.load_state_dict({k: v for k, v in sd.items() if not k.startswith("optim.")})
// (BatchNorm's num_batches_tracked is stored as I32; load_state_dict copies it
// into the int64 buffer.)
//
// Errors name the file: unreadable or truncated files (from the safetensors
// reader), shape mismatches (key and both shapes), missing and unknown keys,
// an optimizer asked for but not saved, an optimizer of another type or
// parameter layout.
#pragma once
#include <map>
#include <string>

#include "nn/module.h"
#include "nn/optim.h"

namespace lowbit::nn {

using Metadata = std::map<std::string, std::string>;

inline constexpr const char* kCheckpointFormat = "lowbit.checkpoint.1";

// Metadata keys starting with "optim." are reserved (error).
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer = nullptr,
                     const Metadata& metadata = {}, const Module* aux = nullptr);

// Loads the model (strict: every model key present and no unknown key besides
// the optimizer's "optim." and the "aux." ones; not strict: as
// Module::load_state_dict) and, if given, the optimizer's state and the aux
// module's (strictly). Returns the metadata without the "optim." keys.
Metadata load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer = nullptr, bool strict = true,
                         Module* aux = nullptr);

// True for the keys of training state stored next to a model ("optim.", "aux.").
bool is_training_state_key(const std::string& key);

// The index of t's first value that is NaN or ±inf (or negative, with
// nonnegative); -1 when there is none, or t is undefined or not f32.
int64_t first_nonfinite(const Tensor& t, bool nonnegative = false);

// Refuses (Error naming `what`, the tensor and the index) a loaded model whose
// parameters are not all finite, or whose BatchNorm running statistics are not
// finite or hold a negative variance. load_checkpoint calls it; quantized
// checkpoints too (quant/checkpoint.h). Observer ranges are not checked: an
// observer that has seen nothing holds ±inf by design.
void check_loaded_values(const Module& model, const std::string& what);

}  // namespace lowbit::nn
