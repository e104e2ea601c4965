// Observers: collect statistics of the tensors a quantizer sees and answer
// calculate_qparams() — as torch.ao.quantization's observers, one small class
// each. An observer only observes; FakeQuantize decides when to ask it.
//
//   MinMax          running min/max                       (per tensor or per channel)
//   MovingAverage   EMA of per-batch min/max (constant c)  (per tensor or per channel)
//   Histogram       2048-bin running histogram, L2 range search (PyTorch's HistogramObserver)
//   Entropy         the same histogram, range by minimum KL divergence (TensorRT's calibrator)
//   Percentile      the same histogram, range at the p-th / (100-p)-th percentiles
//   MSE             the same histogram, range by grid search of the expected squared error
//   Percentile/MSE per channel: the range is found per channel on each observed tensor,
//                   then combined across calls as MinMax combines them (exact for weights,
//                   which are observed whole).
//
// scale/zero-point from a range follow PyTorch's _calculate_qparams in fp32:
//   the range is widened to include 0; symmetric: scale = max(|min|, max) / ((qmax − qmin)/2),
//   zero point 0 (signed) or (qmin + qmax + 1)/2 (unsigned); affine: scale = (max − min)/(qmax − qmin),
//   zero point = qmin − round_half_even(min/scale), clamped. scale ≥ fp32 epsilon, so an
//   all-zero or constant tensor still gets a small positive scale.
//
// PyTorch 1.13's HistogramObserver truncates the histogram range to integers
// (torch.histc(min=int(min_val), ...)); lowbit bins over the real range, so
// the two agree when one tensor in (−1, 1) is observed and differ otherwise.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "quant/qconfig.h"

namespace lowbit::quant {

// PyTorch's _calculate_qparams for one range per channel (or one range).
QuantParams qparams_from_range(const std::vector<float>& min_val, const std::vector<float>& max_val,
                               const QSpec& spec);

class Observer {
 public:
  explicit Observer(const QSpec& spec) : spec_(spec) {}
  virtual ~Observer() = default;
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;
  // x: any f32 tensor (per-channel: channel dimension spec.axis). Throws
  // naming `name` if x holds NaN or Inf.
  virtual void observe(const Tensor& x) = 0;
  virtual QuantParams calculate_qparams() const = 0;
  // The observed (clipped, for the searching observers) range per channel.
  virtual std::pair<std::vector<float>, std::vector<float>> range() const = 0;
  // Continue from a saved range (a resumed QAT run). Only the running
  // min/max observers can: a histogram is not in the checkpoint.
  virtual bool restore(const std::vector<float>&, const std::vector<float>&) { return false; }
  bool has_data() const { return has_data_; }
  const QSpec& spec() const { return spec_; }
  std::string name = "observer";  // the module path, for error messages

 protected:
  void check_finite(const Tensor& x) const;
  QSpec spec_;
  bool has_data_ = false;
};

using ObserverPtr = std::unique_ptr<Observer>;
ObserverPtr make_observer(const QSpec& spec);

// Running min/max (MinMax) or its EMA (MovingAverage), per tensor or channel.
class MinMaxObserver : public Observer {
 public:
  MinMaxObserver(const QSpec& spec, bool moving_average) : Observer(spec), ema_(moving_average) {}
  void observe(const Tensor& x) override;
  QuantParams calculate_qparams() const override;
  std::pair<std::vector<float>, std::vector<float>> range() const override { return {min_, max_}; }
  bool restore(const std::vector<float>& lo, const std::vector<float>& hi) override;

 private:
  bool ema_;
  std::vector<float> min_, max_;
};

// The histogram shared by Histogram, Entropy, Percentile and MSE (per tensor).
class HistogramObserver : public Observer {
 public:
  static constexpr int kBins = 2048;
  static constexpr int kUpsampleRate = 128;
  explicit HistogramObserver(const QSpec& spec) : Observer(spec), hist_(kBins, 0.0f) {}
  void observe(const Tensor& x) override;
  QuantParams calculate_qparams() const override;
  std::pair<std::vector<float>, std::vector<float>> range() const override;
  const std::vector<float>& histogram() const { return hist_; }
  float min_val() const { return min_; }
  float max_val() const { return max_; }

 protected:
  // The clipped range [lo, hi] the subclass chooses from the histogram.
  virtual std::pair<float, float> search() const;  // PyTorch's L2 search
  std::pair<float, float> percentile_range(double percent) const;
  std::pair<float, float> mse_range() const;
  std::pair<float, float> entropy_range() const;

 private:
  double quantization_error(int start_bin, int end_bin) const;
  std::vector<float> hist_;
  float min_ = 0, max_ = 0;
};

class EntropyObserver : public HistogramObserver {
 public:
  using HistogramObserver::HistogramObserver;
 protected:
  std::pair<float, float> search() const override { return entropy_range(); }
};

class PercentileObserver : public HistogramObserver {
 public:
  using HistogramObserver::HistogramObserver;
 protected:
  std::pair<float, float> search() const override { return percentile_range(spec_.percentile); }
};

class MseObserver : public HistogramObserver {
 public:
  using HistogramObserver::HistogramObserver;
 protected:
  std::pair<float, float> search() const override { return mse_range(); }
};

// Percentile or MSE per channel: the range of each channel of each observed
// tensor, combined across calls by min/max.
class PerChannelSearchObserver : public Observer {
 public:
  using Observer::Observer;
  void observe(const Tensor& x) override;
  QuantParams calculate_qparams() const override;
  std::pair<std::vector<float>, std::vector<float>> range() const override { return {min_, max_}; }

 private:
  std::vector<float> min_, max_;
};

// The expected squared quantization error of values in [lo, hi] clipped to
// the grid of `qp` (per-tensor), from a histogram with bin centres c_i: used
// by the MSE search and by lowbit analyze.
double histogram_quant_error(const std::vector<float>& hist, float hist_min, float hist_max, const QuantParams& qp,
                             int qmin, int qmax);

}  // namespace lowbit::quant
