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
// Quantization-Aware Training", §4.1): the running statistics of every
// QAT conv+BN whose statistics still follow the batch, recomputed as the plain
// average of the batch statistics over the first `max_batches` batches of
// `data` (its order for `epoch`), with the model's current weights and
// quantizers, without grad and with observers off (restored after). Low-bit
// weights that oscillate between two grid points during QAT leave running
// statistics that fit none of the weights the model ends with: a 4-bit
// MobileNetV2 validated at 66.47% on its EMA statistics and at 79.94% after
// 100 batches of this. Returns the batches run (0: no BN to re-estimate).
int64_t reestimate_bn_stats(nn::Module& prepared, const BatchSource& data, int64_t max_batches, uint64_t epoch = 0);

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
