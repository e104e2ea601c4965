#include "quant/observer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/quant_math.h"

namespace lowbit::quant {

namespace qm = kernels::qmath;

namespace {

constexpr float kEps = std::numeric_limits<float>::epsilon();  // torch.finfo(torch.float32).eps

// x as contiguous floats, with its channel layout: outer × channels × inner.
struct ChannelView {
  std::vector<float> data;
  int64_t outer = 1, channels = 1, inner = 1;
};

ChannelView channel_view(const Tensor& x, const QSpec& spec, const std::string& name) {
  ChannelView v;
  v.data = x.to_vector();
  if (!spec.per_channel) {
    v.inner = (int64_t)v.data.size();
    return v;
  }
  LOWBIT_CHECK(spec.axis < x.dim(), name, ": per-channel axis ", spec.axis, " is out of range for a tensor of shape ",
               shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < spec.axis) v.outer *= x.shape()[d];
    else if (d > spec.axis) v.inner *= x.shape()[d];
  }
  v.channels = x.shape()[spec.axis];
  return v;
}

template <class F>
void for_channel(const ChannelView& v, int64_t c, F f) {
  for (int64_t o = 0; o < v.outer; ++o) {
    const float* p = v.data.data() + (o * v.channels + c) * v.inner;
    for (int64_t i = 0; i < v.inner; ++i) f(p[i]);
  }
}

std::vector<float> channel_values(const ChannelView& v, int64_t c) {
  std::vector<float> out;
  out.reserve((size_t)(v.outer * v.inner));
  for_channel(v, c, [&](float f) { out.push_back(f); });
  return out;
}

// The squared error of quantizing the given values with one range.
double values_quant_error(const std::vector<float>& vals, float lo, float hi, const QSpec& spec) {
  const QuantParams qp = qparams_from_range({lo}, {hi}, spec);
  const float s = qp.scale[0], inv = qm::inverse_scale(s);
  const int32_t zp = qp.zero_point[0];
  double err = 0;
  for (float f : vals) {
    const float d = qm::dequantize(qm::quantize(f, inv, zp, spec.qmin(), spec.qmax()), zp, s) - f;
    err += (double)d * d;
  }
  return err;
}

}  // namespace

QuantParams qparams_from_range(const std::vector<float>& min_val, const std::vector<float>& max_val,
                               const QSpec& spec) {
  const int qmin = spec.qmin(), qmax = spec.qmax();
  QuantParams qp;
  qp.axis = spec.per_channel ? spec.axis : -1;
  for (size_t c = 0; c < min_val.size(); ++c) {
    const float min_neg = std::min(min_val[c], 0.0f), max_pos = std::max(max_val[c], 0.0f);
    float scale;
    int32_t zp = 0;
    if (spec.symmetric) {
      scale = std::max(-min_neg, max_pos) / ((float)(qmax - qmin) / 2.0f);
      scale = std::max(scale, kEps);
      if (!spec.is_signed) zp = (qmin + qmax + 1) / 2;
    } else {
      scale = (max_pos - min_neg) / (float)(qmax - qmin);
      scale = std::max(scale, kEps);
      zp = qmin - (int32_t)std::nearbyint(min_neg / scale);
      zp = std::clamp(zp, qmin, qmax);
    }
    qp.scale.push_back(scale);
    qp.zero_point.push_back(zp);
  }
  return qp;
}

void Observer::check_finite(const Tensor& x_in) const {
  const Tensor x = x_in.contiguous();
  float lo, hi;
  LOWBIT_CHECK(kernels::table().q8.f32_minmax(&lo, &hi, x.data<float>(), x.numel()), name,
               ": observed a non-finite value (NaN or Inf) in a tensor of shape ", shape_str(x.shape()));
}

ObserverPtr make_observer(const QSpec& spec) {
  switch (spec.observer) {
    case ObserverKind::minmax: return std::make_unique<MinMaxObserver>(spec, false);
    case ObserverKind::ema: return std::make_unique<MinMaxObserver>(spec, true);
    case ObserverKind::histogram:
    case ObserverKind::entropy:
      LOWBIT_CHECK(!spec.per_channel, "the ", observer_name(spec.observer), " observer is per-tensor only");
      if (spec.observer == ObserverKind::histogram) return std::make_unique<HistogramObserver>(spec);
      return std::make_unique<EntropyObserver>(spec);
    case ObserverKind::percentile:
      if (spec.per_channel) return std::make_unique<PerChannelSearchObserver>(spec);
      return std::make_unique<PercentileObserver>(spec);
    case ObserverKind::mse:
      if (spec.per_channel) return std::make_unique<PerChannelSearchObserver>(spec);
      return std::make_unique<MseObserver>(spec);
  }
  fail("internal: unknown observer kind");
}

// ---- MinMax / MovingAverage ----------------------------------------------------

void MinMaxObserver::observe(const Tensor& x_in) {
  if (x_in.numel() == 0) return;
  const Tensor x = x_in.contiguous();
  int64_t outer = 1, channels = 1, inner = x.numel();
  if (spec_.per_channel) {
    LOWBIT_CHECK(spec_.axis < x.dim(), name, ": per-channel axis ", spec_.axis,
                 " is out of range for a tensor of shape ", shape_str(x.shape()));
    channels = x.shape()[spec_.axis];
    inner = 1;
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (d < spec_.axis) outer *= x.shape()[d];
      else if (d > spec_.axis) inner *= x.shape()[d];
    }
  }
  // Runs of `inner` contiguous values, one channel each: the min/max kernel per run.
  const auto& k = kernels::table().q8;
  const float* p = x.data<float>();
  std::vector<float> lo(channels, std::numeric_limits<float>::infinity()), hi(channels, -lo[0]);
  bool finite = true;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      float l, h;
      finite = k.f32_minmax(&l, &h, p + (o * channels + c) * inner, inner) && finite;
      lo[c] = std::min(lo[c], l);
      hi[c] = std::max(hi[c], h);
    }
  if (!finite) check_finite(x);  // throws, with the one message
  if (!has_data_) {
    min_ = lo;
    max_ = hi;
    has_data_ = true;
    return;
  }
  LOWBIT_CHECK(lo.size() == min_.size(), name, ": observed ", lo.size(), " channels after ", min_.size());
  for (size_t c = 0; c < lo.size(); ++c) {
    if (ema_) {  // PyTorch: min_val + c · (min_cur − min_val), in fp32
      min_[c] = min_[c] + spec_.ema_constant * (lo[c] - min_[c]);
      max_[c] = max_[c] + spec_.ema_constant * (hi[c] - max_[c]);
    } else {
      min_[c] = std::min(min_[c], lo[c]);
      max_[c] = std::max(max_[c], hi[c]);
    }
  }
}

bool MinMaxObserver::restore(const std::vector<float>& lo, const std::vector<float>& hi) {
  for (size_t c = 0; c < lo.size(); ++c)
    if (!(lo[c] <= hi[c]) || !std::isfinite(lo[c]) || !std::isfinite(hi[c])) return false;
  min_ = lo;
  max_ = hi;
  has_data_ = !lo.empty();
  return has_data_;
}

QuantParams MinMaxObserver::calculate_qparams() const {
  LOWBIT_CHECK(has_data_, name, ": no data observed (run calibration batches first)");
  return qparams_from_range(min_, max_, spec_);
}

// ---- Histogram ------------------------------------------------------------------

namespace {
// torch.histc: bin = (int)((x − lo) / (hi − lo) · bins) in fp32, the last edge
// inclusive, values outside [lo, hi] dropped. lo == hi: one value, all in bin 0.
void histc(const std::vector<float>& x, float lo, float hi, std::vector<float>& out) {
  const int bins = (int)out.size();
  for (float f : x) {
    if (f < lo || f > hi) continue;
    int64_t b = hi > lo ? (int64_t)((f - lo) / (hi - lo) * (float)bins) : 0;
    if (b >= bins) b = bins - 1;
    out[(size_t)b] += 1.0f;
  }
}
}  // namespace

void HistogramObserver::observe(const Tensor& x_in) {
  if (x_in.numel() == 0) return;
  check_finite(x_in);
  const std::vector<float> x = x_in.to_vector();
  float lo = x[0], hi = x[0];
  for (float f : x) lo = std::min(lo, f), hi = std::max(hi, f);
  if (!has_data_ || min_ == max_) {
    min_ = lo;
    max_ = hi;
    std::fill(hist_.begin(), hist_.end(), 0.0f);
    histc(x, min_, max_, hist_);
    has_data_ = true;
    return;
  }
  float cmin = std::min(lo, min_), cmax = std::max(hi, max_);
  // PyTorch's _adjust_min_max: a common grid of width (max − min)/(bins·upsample).
  const float hist_bin_width = (max_ - min_) / (float)(kBins * kUpsampleRate);
  const int64_t downsample = (int64_t)std::ceil((cmax - cmin) / ((float)kBins * hist_bin_width));
  const float e = (float)downsample * ((float)kBins * hist_bin_width) - (cmax - cmin);
  cmax = cmax + e;
  const int64_t start_idx = (int64_t)std::nearbyint((min_ - cmin) / hist_bin_width);
  std::vector<float> combined(kBins, 0.0f);
  histc(x, cmin, cmax, combined);
  if (cmin == min_ && cmax == max_) {
    for (int i = 0; i < kBins; ++i) combined[i] += hist_[i];
  } else {
    // _combine_histograms: upsample the old histogram, place it at start_idx,
    // integrate in double, take every downsample-th sample, difference.
    const int64_t n = (int64_t)kBins * downsample;
    std::vector<double> integral(kBins, 0.0);
    double acc = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = i - start_idx;
      if (j >= 0 && j < (int64_t)kBins * kUpsampleRate) acc += hist_[(size_t)(j / kUpsampleRate)];
      if ((i + 1) % downsample == 0) integral[(size_t)(i / downsample)] = acc;
    }
    for (int i = 0; i < kBins; ++i) {
      const float shifted = i > 0 ? (float)integral[i - 1] : 0.0f;  // PyTorch keeps this in fp32
      combined[i] += (float)((integral[i] - (double)shifted) / kUpsampleRate);
    }
  }
  hist_ = combined;
  min_ = cmin;
  max_ = cmax;
}

double HistogramObserver::quantization_error(int next_start_bin, int next_end_bin) const {
  // PyTorch's _compute_quantization_error: the L2 error of the histogram's
  // uniform densities against the centres of dst_nbins = 2^bits output bins.
  const double bin_width_d = ((double)max_ - (double)min_) / kBins;
  const int dst_nbins = 1 << spec_.bits;
  const double dst_bin_width_d = bin_width_d * (next_end_bin - next_start_bin + 1) / dst_nbins;
  if (dst_bin_width_d == 0.0) return 0.0;
  const float bw = (float)bin_width_d, dbw = (float)dst_bin_width_d;
  auto get_norm = [](float db, float de, float density) { return density * ((de * de * de - db * db * db) / 3.0f); };
  double total = 0;
  for (int i = 0; i < kBins; ++i) {
    const float begin = (float)(i - next_start_bin) * bw, end = begin + bw;
    const float b_of_begin = std::clamp(std::floor(begin / dbw), 0.0f, (float)(dst_nbins - 1));
    const float b_of_end = std::clamp(std::floor(end / dbw), 0.0f, (float)(dst_nbins - 1));
    const float density = hist_[i] / bw;
    float norm = get_norm(begin - (b_of_begin + 0.5f) * dbw, dbw / 2, density);
    norm += (b_of_end - b_of_begin - 1.0f) * get_norm(-dbw / 2, dbw / 2, density);
    norm += get_norm(-dbw / 2, end - (b_of_end * dbw + dbw / 2), density);
    total += norm;
  }
  return total;
}

std::pair<float, float> HistogramObserver::search() const {
  // PyTorch's _non_linear_param_search (caffe2's NormMinimization).
  std::vector<float> csum(kBins);
  float run = 0;
  double total = 0;
  for (int i = 0; i < kBins; ++i) {
    run += hist_[i];
    csum[i] = run;
    total += hist_[i];
  }
  const double step = 1e-5;
  double alpha = 0, beta = 1, norm_min = std::numeric_limits<double>::infinity();
  int start_bin = 0, end_bin = kBins - 1;
  while (alpha < beta) {
    const double next_alpha = alpha + step, next_beta = beta - step;
    int l = start_bin, r = end_bin;
    while (l < end_bin && csum[l] < next_alpha * total) ++l;
    while (r > start_bin && csum[r] > next_beta * total) --r;
    int next_start = start_bin, next_end = end_bin;
    if (l - start_bin > end_bin - r) {
      next_start = l;
      alpha = next_alpha;
    } else {
      next_end = r;
      beta = next_beta;
    }
    if (next_start == start_bin && next_end == end_bin) continue;
    const double norm = quantization_error(next_start, next_end);
    if (norm > norm_min) break;
    norm_min = norm;
    start_bin = next_start;
    end_bin = next_end;
  }
  const float bin_width = (max_ - min_) / (float)kBins;
  return {min_ + bin_width * (float)start_bin, min_ + bin_width * (float)(end_bin + 1)};
}

std::pair<float, float> HistogramObserver::percentile_range(double percent) const {
  double total = 0;
  for (float h : hist_) total += h;
  const float bw = (max_ - min_) / (float)kBins;
  // The value below which `frac` of the mass lies, linear inside a bin.
  auto at = [&](double frac) {
    const double target = frac * total;
    double acc = 0;
    for (int i = 0; i < kBins; ++i) {
      if (acc + hist_[i] >= target && hist_[i] > 0)
        return min_ + bw * (float)(i + (target - acc) / hist_[i]);
      acc += hist_[i];
    }
    return max_;
  };
  return {at(1.0 - percent / 100.0), at(percent / 100.0)};
}

double histogram_quant_error(const std::vector<float>& hist, float hist_min, float hist_max, const QuantParams& qp,
                             int qmin, int qmax) {
  const float bw = (hist_max - hist_min) / (float)hist.size(), s = qp.scale[0], inv = qm::inverse_scale(s);
  const int32_t zp = qp.zero_point[0];
  // Each bin's mass spread evenly over kSub points: bins may be wider than
  // the quantization step, where a bin centre alone would alias.
  constexpr int kSub = 8;
  double err = 0;
  for (size_t i = 0; i < hist.size(); ++i) {
    if (hist[i] == 0) continue;
    double bin_err = 0;
    for (int j = 0; j < kSub; ++j) {
      const float c = hist_min + bw * ((float)i + ((float)j + 0.5f) / kSub);
      const float d = qm::dequantize(qm::quantize(c, inv, zp, qmin, qmax), zp, s) - c;
      bin_err += (double)d * d;
    }
    err += (double)hist[i] * bin_err / kSub;
  }
  return err;
}

std::pair<float, float> HistogramObserver::mse_range() const {
  // Grid search over shrunk ranges [k/100 · min, k/100 · max].
  std::pair<float, float> best{min_, max_};
  double best_err = std::numeric_limits<double>::infinity();
  for (int k = 100; k >= 1; --k) {
    const float lo = min_ * (float)k / 100.0f, hi = max_ * (float)k / 100.0f;
    const double err = histogram_quant_error(hist_, min_, max_, qparams_from_range({lo}, {hi}, spec_), spec_.qmin(),
                                             spec_.qmax());
    if (err < best_err) best_err = err, best = {lo, hi};
  }
  return best;
}

std::pair<float, float> HistogramObserver::entropy_range() const {
  // TensorRT's calibrator generalised to a signed range: thresholds T cut the
  // histogram to [max(min, −T), min(max, T)]; P is the cut histogram with the
  // outliers folded into its edge bins, Q the same mass spread over
  // qmax − qmin + 1 levels; keep the T of least KL(P ‖ Q).
  const float bw = (max_ - min_) / (float)kBins;
  const float amax = std::max(std::fabs(min_), std::fabs(max_));
  const int levels = spec_.qmax() - spec_.qmin() + 1;
  std::pair<float, float> best{min_, max_};
  double best_kl = std::numeric_limits<double>::infinity();
  for (int j = 32; j <= 512; ++j) {  // thresholds from max|x|/16 up, as TensorRT's (bin 128 of 2048)
    const float t = amax * (float)j / 512.0f;
    const int b0 = std::max(0, (int)std::floor((std::max(min_, -t) - min_) / bw));
    const int b1 = std::min(kBins, (int)std::ceil((std::min(max_, t) - min_) / bw));
    const int n = b1 - b0;
    if (n < 2) continue;
    std::vector<double> h(hist_.begin() + b0, hist_.begin() + b1), q(n, 0.0);
    // A one-sided tensor (a ReLU output) has its zeros in bin 0: they are
    // exact on any grid with zero point 0, and their spike, spread over a
    // merged level, would make every wide range look bad (pytorch-quantization's
    // skip_zeros). Leave bin 0 out of both distributions.
    if (min_ >= 0.0f && b0 == 0) h[0] = 0.0;
    std::vector<double> p = h;
    for (int i = 0; i < b0; ++i) p[0] += hist_[i];
    for (int i = b1; i < kBins; ++i) p[n - 1] += hist_[i];
    const int groups = std::min(levels, n);
    for (int g = 0; g < groups; ++g) {
      const int gb = (int)((int64_t)g * n / groups), ge = (int)((int64_t)(g + 1) * n / groups);
      double mass = 0;
      int nonzero = 0;
      for (int i = gb; i < ge; ++i) mass += h[i], nonzero += h[i] > 0;
      for (int i = gb; i < ge; ++i) q[i] = h[i] > 0 ? mass / nonzero : 0.0;
    }
    double ps = 0, qs = 0;
    for (int i = 0; i < n; ++i) ps += p[i], qs += q[i];
    if (ps <= 0 || qs <= 0) continue;
    double kl = 0;
    for (int i = 0; i < n; ++i) {
      if (p[i] <= 0) continue;
      const double pi = p[i] / ps, qi = std::max(q[i] / qs, 1e-12);
      kl += pi * std::log(pi / qi);
    }
    if (kl < best_kl) best_kl = kl, best = {min_ + bw * (float)b0, min_ + bw * (float)b1};
  }
  return best;
}

QuantParams HistogramObserver::calculate_qparams() const {
  LOWBIT_CHECK(has_data_, name, ": no data observed (run calibration batches first)");
  const auto [lo, hi] = range();
  return qparams_from_range({lo}, {hi}, spec_);
}

std::pair<std::vector<float>, std::vector<float>> HistogramObserver::range() const {
  if (!has_data_ || min_ == max_) return {{min_}, {max_}};
  const auto [lo, hi] = search();
  return {{lo}, {hi}};
}

// ---- per-channel Percentile / MSE ---------------------------------------------------

void PerChannelSearchObserver::observe(const Tensor& x) {
  if (x.numel() == 0) return;
  check_finite(x);
  const ChannelView v = channel_view(x, spec_, name);
  std::vector<float> lo(v.channels), hi(v.channels);
  for (int64_t c = 0; c < v.channels; ++c) {
    std::vector<float> vals = channel_values(v, c);
    std::sort(vals.begin(), vals.end());
    const float vmin = vals.front(), vmax = vals.back();
    if (spec_.observer == ObserverKind::percentile) {
      const double p = spec_.percentile / 100.0;
      auto at = [&](double frac) {
        const double pos = frac * (double)(vals.size() - 1);
        const size_t i = (size_t)pos;
        const double t = pos - (double)i;
        return i + 1 < vals.size() ? (float)(vals[i] * (1 - t) + vals[i + 1] * t) : vals[i];
      };
      lo[c] = at(1 - p);
      hi[c] = at(p);
    } else {
      double best = std::numeric_limits<double>::infinity();
      for (int k = 100; k >= 1; --k) {
        const float l = vmin * (float)k / 100.0f, h = vmax * (float)k / 100.0f;
        const double err = values_quant_error(vals, l, h, spec_);
        if (err < best) best = err, lo[c] = l, hi[c] = h;
      }
    }
  }
  if (!has_data_) {
    min_ = lo, max_ = hi, has_data_ = true;
    return;
  }
  LOWBIT_CHECK(lo.size() == min_.size(), name, ": observed ", lo.size(), " channels after ", min_.size());
  for (size_t c = 0; c < lo.size(); ++c) min_[c] = std::min(min_[c], lo[c]), max_[c] = std::max(max_[c], hi[c]);
}

QuantParams PerChannelSearchObserver::calculate_qparams() const {
  LOWBIT_CHECK(has_data_, name, ": no data observed (run calibration batches first)");
  return qparams_from_range(min_, max_, spec_);
}

}  // namespace lowbit::quant
