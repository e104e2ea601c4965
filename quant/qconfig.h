// Quantization configuration: what one tensor's quantizer does (QSpec) and
// the weight/activation pair a layer gets (QConfig), with presets and
// per-module overrides — PyTorch's qconfig, plus the bit widths and
// quantizers PyTorch keeps out of its defaults.
//
// Ranges (qmin, qmax) for b bits:
//   signed     [-2^(b-1), 2^(b-1) - 1]   (s8: [-128, 127]; 4-bit: [-8, 7])
//   unsigned   [0, 2^b - 1]              (u8: [0, 255])
//   reduce_range drops one bit ([0, 127] for u8), as fbgemm's x86 qconfig
//   does so AVX2's vpmaddubsw cannot saturate its 16-bit pair sums.
#pragma once
#include <map>
#include <optional>
#include <string>

namespace lowbit::quant {

enum class ObserverKind { minmax, ema, histogram, entropy, percentile, mse };
enum class QuantizerKind { ste, lsq, lsq_plus };
// How an LSQ step starts (LSQ+ always starts from the min/max range):
//   automatic  observer at 8 bits, mean_abs below (the default)
//   mean_abs   the LSQ paper's 2·mean(|x|)/√Qp: sized for 2-4 bits; at 8 bits
//              it puts a Gaussian weight's range at about 18σ, a step ~5×
//              coarser than the min/max range gives
//   observer   the spec's observer on the first tensor (min/max for weights,
//              the activation observer, e.g. histogram): what PTQ would pick
enum class LsqInit { automatic, mean_abs, observer };

const char* observer_name(ObserverKind k);
const char* quantizer_name(QuantizerKind k);
ObserverKind parse_observer(const std::string& s);    // Error listing the names otherwise
QuantizerKind parse_quantizer(const std::string& s);  // "ste", "lsq", "lsq+"
const char* lsq_init_name(LsqInit k);
LsqInit parse_lsq_init(const std::string& s);         // "auto", "mean", "observer"

struct QSpec {
  int bits = 8;
  bool is_signed = false;
  bool symmetric = false;
  bool per_channel = false;
  int axis = 0;  // channel axis when per_channel (weights: 0, the output channels)
  bool reduce_range = false;
  ObserverKind observer = ObserverKind::minmax;
  QuantizerKind quantizer = QuantizerKind::ste;
  float ema_constant = 0.01f;   // MovingAverage observers (PyTorch's averaging_constant)
  float percentile = 99.99f;    // Percentile observer: the kept fraction, in percent
  LsqInit lsq_init = LsqInit::automatic;

  int qmin() const;
  int qmax() const;
  // Throws Error naming `where` for 1 or 9 bits, a bad percentile, ...
  void validate(const std::string& where) const;
  std::string str() const;  // "s8 symmetric per-channel(0) minmax ste"
  bool operator==(const QSpec&) const = default;
};

struct LayerQConfig {
  QSpec weight, activation;
  bool operator==(const LayerQConfig&) const = default;
};

struct QConfig {
  std::string name = "custom";
  LayerQConfig layer;  // every quantized layer, unless overridden
  // By module path ("conv1", "features.0.0", "fc"): another config, or
  // std::nullopt to keep that layer's weights and output in float.
  std::map<std::string, std::optional<LayerQConfig>> overrides;

  // The config of the module at `path` (nullopt: keep float).
  std::optional<LayerQConfig> for_module(const std::string& path) const;
  void validate() const;
};

// Presets:
//   w8a8             s8 symmetric per-channel weights (minmax), u8 affine
//                    per-tensor activations (histogram): PyTorch's x86/onednn default
//   w8a8-per-tensor  the same with per-tensor weights
//   w4a8             4-bit per-channel weights (LSQ), u8 activations
//   w4a4, w2a2       LSQ weights and activations; the first conv, its input
//                    ("quant", the network input) and the last linear keep
//                    w8a8 (as in the LSQ paper)
// first_layer/last_layer name those modules for the sub-8-bit presets.
QConfig preset(const std::string& name, const std::string& first_layer = "", const std::string& last_layer = "");
const char* preset_names();  // "w8a8, w8a8-per-tensor, w4a8, w4a4, w2a2"

// Sets the activation observer / every quantizer / weight granularity of a
// config and its overrides (the CLI's --observer, --quantizer, --per-channel).
void set_activation_observer(QConfig& c, ObserverKind k);
void set_quantizer(QConfig& c, QuantizerKind k);
void set_weight_per_channel(QConfig& c, bool per_channel);
void set_lsq_init(QConfig& c, LsqInit k);

// One-line text form for checkpoint metadata, and back (Error on bad text).
std::string qconfig_to_string(const QConfig& c);
QConfig qconfig_from_string(const std::string& s);

}  // namespace lowbit::quant
