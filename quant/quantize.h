// The quantization flows, PyTorch's eager mode in C++:
//
//   PTQ   auto q = quant::prepare(model, qconfig);   // fuse (BN folded), attach quantizers
//         for (batch : calibration) q->forward(batch);  // observers watch the float model
//         quant::freeze(*q);                          // qparams fixed: the quantized model
//   QAT   auto q = quant::prepare_qat(model, qconfig); // fuse (BN kept), attach quantizers
//         ... train q with any optimizer ...
//         quant::freeze(*q);
//
// Placement: every tensor the integer engine materialises gets exactly one
// quantizer — the network input (QuantStub), every conv/linear output after
// its fused activation, every residual-add output (after its ReLU), every
// average-pool output. Max pooling, flatten and dropout keep their input's grid.
//
// prepare/prepare_qat change `model` in place (its modules are swapped) and
// return the wrapper that runs it behind the input quantizer; use the wrapper.
#pragma once
#include <functional>

#include "core/batch.h"
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"
#include "quant/qconfig.h"
#include "quant/qmodules.h"

namespace lowbit::quant {

// Merges every chain the model declares (Module::fusable_chains): Conv2d+BN
// [+ReLU/ReLU6] and Linear+ReLU become FusedConv2d / FusedLinear, the other
// members Identity. fold_bn: fold BN into the conv now (PTQ, eval mode), or
// keep it for QAT. Idempotent.
void fuse(nn::Module& model, bool fold_bn);

std::shared_ptr<QuantModel> prepare(const nn::ModulePtr& model, const QConfig& qconfig);
std::shared_ptr<QuantModel> prepare_qat(const nn::ModulePtr& model, const QConfig& qconfig);

// Observers off, qparams fixed (LSQ+ offsets folded into zero points), BN
// statistics frozen; eval mode.
void freeze(nn::Module& prepared);

// QAT schedule switches (PyTorch's disable_observer / freeze_bn_stats).
void enable_observers(nn::Module& prepared, bool on);
void freeze_bn_stats(nn::Module& prepared);
// PTQ calibration: observers on, fake quantization off (float forward).
void enable_calibration(nn::Module& prepared);
// PTQ calibration run: the prepared model (prepare, which enables calibration)
// sees every batch of `data` once, without grad; progress(images seen, all)
// after each batch. Returns the images seen. Then freeze().
int64_t calibrate(nn::Module& prepared, const BatchSource& data,
                  const std::function<void(int64_t done, int64_t total)>& progress = {});

// BatchNorm re-estimation (Nagel et al. 2022, "Overcoming Oscillations in
// Quantization-Aware Training", ICML 2022): low-bit weights that oscillate
// between grid points during QAT leave running statistics (an EMA over many
// weights) that fit none of the weights the model ends with. Each QAT conv+BN
// whose statistics still follow the batch gets the plain average of its
// batch statistics over the first `max_batches` batches of `data` (its order
// for `epoch`), without grad and with observers off (restored after). Every
// batch runs on the trained statistics, so the folded weights W·γ/σ, and the
// integer weights they round to, are the trained ones; at the end the
// per-channel LSQ steps are multiplied by σ_old/σ_new, so that with σ_new the
// same integers come out, scaled as the new statistics say. Refolding with
// σ_new and the old steps instead moved weights across rounding boundaries:
// at seed 0 the demo's w4a4 student fell from 80.15% to 71.00%. Layers
// whose weight quantizer has no per-channel step (STE observers, per-tensor)
// keep their statistics. Returns the batches run (0: nothing to re-estimate).
int64_t reestimate_bn_stats(nn::Module& prepared, const BatchSource& data, int64_t max_batches, uint64_t epoch = 0);

// What QatSchedule runs before freezing: the re-estimation, kept only if the
// model's evaluation-mode loss on `probe_batches` training batches (the order
// of epoch + 1, held in memory) is lower with it than with the running
// statistics it replaces; otherwise the model is restored exactly. The EMA
// statistics can be the better ones: at seed 0 the demo's w4a4 student
// validated at 80.38% on them and at 76.61% re-estimated (probe accuracy
// 81.49% against 79.49%), at seed 1 at 66.47% against 81.63% (probe 68.36%
// against 82.47%). Training batches, never the validation data, decide.
struct BnReestimation {
  int64_t batches = 0;                     // 0: nothing to re-estimate (then nothing else ran)
  double loss_before = 0, loss_after = 0;  // on the probe batches
  bool kept = false;
};
BnReestimation reestimate_bn_stats_if_better(nn::Module& prepared, const BatchSource& data, int64_t max_batches,
                                             int64_t probe_batches, uint64_t epoch = 0);

// Every quantizer by module path, in module order.
std::vector<std::pair<std::string, Quantizer*>> quantizers(nn::Module& prepared);

// The LSQ steps that collapsed to the clamp (fp32 epsilon) since the last
// call: the quantizer's path and one line ("features.3.conv.0.weight_fake_quant:
// the LSQ step of channel 12 fell to -0.0003 and was clamped to fp32 epsilon").
// A training loop asks after every step and warns.
struct CollapsedStep {
  std::string quantizer, text;
};
std::vector<CollapsedStep> collapsed_steps(nn::Module& prepared);

// Float bytes (every parameter in fp32) against quantized bytes (weights at
// their bit width, packed; one fp32 scale and one int32 zero point per
// channel; biases as int32; BN folded away; float-kept layers in fp32).
struct ModelSize {
  int64_t float_bytes = 0, quantized_bytes = 0;
};
ModelSize model_size(nn::Module& prepared);

// The config a model's first conv and last linear have, for the sub-8-bit
// presets that keep them at 8 bits: their module paths.
std::pair<std::string, std::string> first_and_last_layer(nn::Module& model);

}  // namespace lowbit::quant
