// Transforms: plain loops over one contiguous C×H×W image. Each follows
// torchvision v0.14's tensor code path step by step, in float32 as it does,
// so the golden fixtures from tools/make_fixtures.py --transforms match
// exactly (ToTensor, Normalize, CenterCrop, Grayscale) or within one ulp
// (Resize).
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "core/error.h"

namespace lowbit::data {

namespace {

// Uniform integer in [0, n) (torch.randint(0, n)); n >= 1.
int64_t rand_below(Generator& rng, int64_t n) {
  return (int64_t)(((unsigned __int128)rng.next_u64() * (uint64_t)n) >> 64);
}
// Uniform double in [0, 1) with 53 random bits.
double rand_unit(Generator& rng) { return (double)(rng.next_u64() >> 11) * (1.0 / 9007199254740992.0); }

Tensor checked_image(const Tensor& x, const char* who) {
  LOWBIT_CHECK(x.defined(), who, ": undefined image");
  LOWBIT_CHECK(x.dim() == 3, who, ": expects a CxHxW image, got shape ", shape_str(x.shape()));
  LOWBIT_CHECK(x.dtype() == DType::u8 || x.dtype() == DType::f32, who, ": expects a u8 or f32 image, got ",
               dtype_name(x.dtype()));
  return x.contiguous();
}

uint8_t u8_fill(float v) { return (uint8_t)std::clamp(std::nearbyint(v), 0.0f, 255.0f); }

template <class T>
void crop_impl(const T* src, T* dst, int64_t C, int64_t H, int64_t W, int64_t top, int64_t left, int64_t h,
               int64_t w, T fill) {
  // Columns [x0, x1) of the output come from the image; the rest is fill.
  const int64_t x0 = std::clamp<int64_t>(-left, 0, w), x1 = std::clamp<int64_t>(W - left, x0, w);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t y = 0; y < h; ++y) {
      T* d = dst + (c * h + y) * w;
      const int64_t sy = top + y;
      if (sy < 0 || sy >= H) {
        std::fill(d, d + w, fill);
        continue;
      }
      const T* s = src + (c * H + sy) * W + left;
      std::fill(d, d + x0, fill);
      if (x1 > x0) std::memcpy(d + x0, s + x0, (size_t)(x1 - x0) * sizeof(T));
      std::fill(d + x1, d + w, fill);
    }
  }
}

// PyTorch's upsample_bilinear2d (CPU, v1.13), align_corners=False: scale =
// in/out in float; the source index scale·(dst + 0.5) − 0.5 (clamped at 0)
// and the weights in double (the CPU acc_type of float), the weights then
// stored as float; a dimension whose size does not change is copied. These
// indices and weights are PyTorch's exactly (checked against F.interpolate).
struct Taps {
  std::vector<int64_t> i0, i1;
  std::vector<float> w0, w1;
};
Taps bilinear_taps(int64_t in, int64_t out) {
  Taps t;
  t.i0.resize(out);
  t.i1.resize(out);
  t.w0.resize(out);
  t.w1.resize(out);
  const double scale = (float)in / (float)out;
  for (int64_t o = 0; o < out; ++o) {
    if (in == out) {
      t.i0[o] = t.i1[o] = o;
      t.w0[o] = 1.0f;
      t.w1[o] = 0.0f;
      continue;
    }
    double src = scale * ((double)o + 0.5) - 0.5;
    if (src < 0.0) src = 0.0;
    const int64_t i0 = (int64_t)src;
    t.i0[o] = i0;
    t.i1[o] = i0 + (i0 < in - 1 ? 1 : 0);
    const double l1 = std::min(std::max(src - (double)i0, 0.0), 1.0);
    t.w1[o] = (float)l1;
    t.w0[o] = (float)(1.0 - l1);
  }
  return t;
}

template <class T>
void resize_impl(const T* src, T* dst, int64_t C, int64_t H, int64_t W, int64_t oh, int64_t ow) {
  const Taps ty = bilinear_taps(H, oh), tx = bilinear_taps(W, ow);
  for (int64_t c = 0; c < C; ++c) {
    const T* s = src + c * H * W;
    for (int64_t y = 0; y < oh; ++y) {
      const T* r0 = s + ty.i0[y] * W;
      const T* r1 = s + ty.i1[y] * W;
      T* d = dst + (c * oh + y) * ow;
      for (int64_t x = 0; x < ow; ++x) {
        // PyTorch's Interpolate<2>: along the row first, then between rows,
        // each `a * w0 + b * w1`. Its compiled kernels contract these to
        // fmas in a way that varies with the shape; fma(a, w0, b * w1) is
        // the contraction that matches most often: on the fixture every
        // downscale is bit-identical, the rest within one ulp, and u8
        // results (rounded half to even) identical.
        const float t0 = std::fma((float)r0[tx.i0[x]], tx.w0[x], (float)r0[tx.i1[x]] * tx.w1[x]);
        const float t1 = std::fma((float)r1[tx.i0[x]], tx.w0[x], (float)r1[tx.i1[x]] * tx.w1[x]);
        const float v = std::fma(t0, ty.w0[y], t1 * ty.w1[y]);
        if constexpr (std::is_same_v<T, uint8_t>)
          d[x] = u8_fill(v);  // torch.round (half to even), then .to(uint8)
        else
          d[x] = v;
      }
    }
  }
}

std::string size_str(int64_t h, int64_t w) {
  std::ostringstream os;
  os << "(" << h << ", " << w << ")";
  return os.str();
}

// ---------------------------------------------------------------- the transforms

class ToTensor final : public Transform {
 public:
  Tensor apply(const Tensor& image, Generator&) const override {
    Tensor x = checked_image(image, "ToTensor");
    LOWBIT_CHECK(x.dtype() == DType::u8, "ToTensor: expects a u8 image, got f32 (already converted?)");
    Tensor y = Tensor::empty(x.shape());
    const uint8_t* s = x.data<uint8_t>();
    float* d = y.data<float>();
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) d[i] = lut()[s[i]];
    return y;
  }
  std::string repr() const override { return "ToTensor()"; }
  // v / 255 in f32, as torchvision's img.float().div(255): a table of exactly those values.
  static const float* lut() {
    static const std::array<float, 256> t = [] {
      std::array<float, 256> a{};
      for (int v = 0; v < 256; ++v) a[v] = (float)v / 255.0f;
      return a;
    }();
    return t.data();
  }
};

class Normalize final : public Transform {
 public:
  Normalize(std::vector<float> mean, std::vector<float> std) : mean_(std::move(mean)), std_(std::move(std)) {
    LOWBIT_CHECK(!mean_.empty() && mean_.size() == std_.size(), "Normalize: mean has ", mean_.size(),
                 " values, std has ", std_.size());
    for (float s : std_) LOWBIT_CHECK(s != 0.0f, "Normalize: std contains 0 (division by zero)");
  }
  Tensor apply(const Tensor& image, Generator&) const override {
    Tensor x = checked_image(image, "Normalize");
    LOWBIT_CHECK(x.dtype() == DType::f32, "Normalize: expects an f32 image, got u8 (put to_tensor() first)");
    const int64_t C = x.size(0), hw = x.size(1) * x.size(2);
    check_channels(C);
    Tensor y = Tensor::empty(x.shape());
    const float* s = x.data<float>();
    float* d = y.data<float>();
    for (int64_t c = 0; c < C; ++c) {
      const float m = mean_[mean_.size() == 1 ? 0 : c], sd = std_[std_.size() == 1 ? 0 : c];
      // (x - mean) / std, a division as torchvision's sub_().div_(), not a reciprocal multiply.
      for (int64_t i = 0; i < hw; ++i) d[c * hw + i] = (s[c * hw + i] - m) / sd;
    }
    return y;
  }
  std::string repr() const override {
    std::ostringstream os;
    os << "Normalize(mean=" << list(mean_) << ", std=" << list(std_) << ")";
    return os.str();
  }
  void check_channels(int64_t C) const {
    LOWBIT_CHECK(mean_.size() == 1 || (int64_t)mean_.size() == C, "Normalize: image has ", C, " channels, mean/std have ",
                 mean_.size());
  }
  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& stdev() const { return std_; }

 private:
  static std::string list(const std::vector<float>& v) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    os << "]";
    return os.str();
  }
  std::vector<float> mean_, std_;
};

// ToTensor immediately followed by Normalize, as compose() builds it: one
// pass through per-channel tables holding ((v / 255) - mean) / std computed
// with the same float operations, so the result is bit-identical to the
// two steps and the u8 → f32 → normalised image is written once.
class ToTensorNormalize final : public Transform {
 public:
  ToTensorNormalize(TransformPtr to_tensor, std::shared_ptr<const Normalize> norm)
      : to_tensor_(std::move(to_tensor)), norm_(std::move(norm)) {
    const size_t n = norm_->mean().size();
    lut_.resize(n * 256);
    for (size_t c = 0; c < n; ++c)
      for (int v = 0; v < 256; ++v) lut_[c * 256 + v] = (ToTensor::lut()[v] - norm_->mean()[c]) / norm_->stdev()[c];
  }
  Tensor apply(const Tensor& image, Generator& rng) const override {
    Tensor x = checked_image(image, "ToTensor");
    if (x.dtype() != DType::u8) return norm_->apply(to_tensor_->apply(x, rng), rng);  // ToTensor reports it
    const int64_t C = x.size(0), hw = x.size(1) * x.size(2);
    norm_->check_channels(C);
    Tensor y = Tensor::empty(x.shape());
    const uint8_t* s = x.data<uint8_t>();
    float* d = y.data<float>();
    for (int64_t c = 0; c < C; ++c) {
      const float* t = lut_.data() + (lut_.size() == 256 ? 0 : c * 256);
      for (int64_t i = 0; i < hw; ++i) d[c * hw + i] = t[s[c * hw + i]];
    }
    return y;
  }
  std::string repr() const override { return to_tensor_->repr() + ", " + norm_->repr(); }

 private:
  TransformPtr to_tensor_;
  std::shared_ptr<const Normalize> norm_;
  std::vector<float> lut_;  // channel-major, 256 per channel
};

class RandomCrop final : public Transform {
 public:
  RandomCrop(int64_t h, int64_t w, std::array<int64_t, 4> pad, float fill, bool pad_if_needed)
      : h_(h), w_(w), pad_(pad), fill_(fill), pad_if_needed_(pad_if_needed) {
    LOWBIT_CHECK(h > 0 && w > 0, "RandomCrop: size must be positive, got ", size_str(h, w));
    for (int64_t p : pad) LOWBIT_CHECK(p >= 0, "RandomCrop: negative padding");
  }
  Tensor apply(const Tensor& image, Generator& rng) const override {
    Tensor x = checked_image(image, "RandomCrop");
    const int64_t H = x.size(1), W = x.size(2);
    // torchvision pads by `padding`, then (pad_if_needed) by the shortfall on
    // both sides of each dimension, then picks the crop in the padded image.
    int64_t left = pad_[0], top = pad_[1];
    int64_t PW = W + pad_[0] + pad_[2], PH = H + pad_[1] + pad_[3];
    if (pad_if_needed_ && PW < w_) {
      left += w_ - PW;
      PW += 2 * (w_ - PW);
    }
    if (pad_if_needed_ && PH < h_) {
      top += h_ - PH;
      PH += 2 * (h_ - PH);
    }
    LOWBIT_CHECK(PH >= h_ && PW >= w_, "RandomCrop: crop ", size_str(h_, w_), " is larger than the (padded) image ",
                 size_str(PH, PW));
    const int64_t i = rand_below(rng, PH - h_ + 1);
    const int64_t j = rand_below(rng, PW - w_ + 1);
    return crop(x, i - top, j - left, h_, w_, fill_);
  }
  std::string repr() const override {
    std::ostringstream os;
    os << "RandomCrop(size=" << size_str(h_, w_) << ", padding=(" << pad_[0] << ", " << pad_[1] << ", " << pad_[2]
       << ", " << pad_[3] << "))";
    return os.str();
  }

 private:
  int64_t h_, w_;
  std::array<int64_t, 4> pad_;
  float fill_;
  bool pad_if_needed_;
};

class RandomHorizontalFlip final : public Transform {
 public:
  explicit RandomHorizontalFlip(float p) : p_(p) {
    LOWBIT_CHECK(p >= 0.0f && p <= 1.0f, "RandomHorizontalFlip: p must be in [0, 1], got ", p);
  }
  Tensor apply(const Tensor& image, Generator& rng) const override {
    Tensor x = checked_image(image, "RandomHorizontalFlip");
    if (!(rng.next_uniform() < p_)) return x;
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    const int64_t rows = x.size(0) * x.size(1), W = x.size(2);
    if (x.dtype() == DType::u8)
      flip(x.data<uint8_t>(), y.data<uint8_t>(), rows, W);
    else
      flip(x.data<float>(), y.data<float>(), rows, W);
    return y;
  }
  std::string repr() const override { return "RandomHorizontalFlip(p=" + std::to_string(p_) + ")"; }

 private:
  template <class T>
  static void flip(const T* s, T* d, int64_t rows, int64_t W) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t x = 0; x < W; ++x) d[r * W + x] = s[r * W + W - 1 - x];
  }
  float p_;
};

class Resize final : public Transform {
 public:
  Resize(int64_t shorter, int64_t h, int64_t w) : shorter_(shorter), h_(h), w_(w) {
    LOWBIT_CHECK(shorter_ > 0 || (h_ > 0 && w_ > 0), "Resize: size must be positive");
  }
  Tensor apply(const Tensor& image, Generator&) const override {
    Tensor x = checked_image(image, "Resize");
    if (shorter_ > 0) {
      const auto s = resize_output_size(x.size(1), x.size(2), shorter_);
      return resize_bilinear(x, s[0], s[1]);
    }
    return resize_bilinear(x, h_, w_);
  }
  std::string repr() const override {
    return shorter_ > 0 ? "Resize(size=" + std::to_string(shorter_) + ")" : "Resize(size=" + size_str(h_, w_) + ")";
  }

 private:
  int64_t shorter_, h_, w_;
};

class CenterCrop final : public Transform {
 public:
  CenterCrop(int64_t h, int64_t w) : h_(h), w_(w) {
    LOWBIT_CHECK(h > 0 && w > 0, "CenterCrop: size must be positive, got ", size_str(h, w));
  }
  Tensor apply(const Tensor& image, Generator&) const override {
    Tensor x = checked_image(image, "CenterCrop");
    const int64_t H = x.size(1), W = x.size(2);
    // Zero padding where the crop is larger (left/top get the smaller half),
    // then top = round((PH - h) / 2) with Python's round (half to even).
    const int64_t pl = w_ > W ? (w_ - W) / 2 : 0, pt = h_ > H ? (h_ - H) / 2 : 0;
    const int64_t PW = std::max(W, w_), PH = std::max(H, h_);
    const int64_t top = (int64_t)std::nearbyint((double)(PH - h_) / 2.0);
    const int64_t left = (int64_t)std::nearbyint((double)(PW - w_) / 2.0);
    return crop(x, top - pt, left - pl, h_, w_, 0.0f);
  }
  std::string repr() const override { return "CenterCrop(size=" + size_str(h_, w_) + ")"; }

 private:
  int64_t h_, w_;
};

class RandomResizedCrop final : public Transform {
 public:
  RandomResizedCrop(int64_t h, int64_t w, std::array<double, 2> scale, std::array<double, 2> ratio)
      : h_(h), w_(w), scale_(scale), ratio_(ratio) {
    LOWBIT_CHECK(h > 0 && w > 0, "RandomResizedCrop: size must be positive, got ", size_str(h, w));
    LOWBIT_CHECK(scale[0] > 0 && scale[0] <= scale[1], "RandomResizedCrop: scale must be 0 < min <= max, got (",
                 scale[0], ", ", scale[1], ")");
    LOWBIT_CHECK(ratio[0] > 0 && ratio[0] <= ratio[1], "RandomResizedCrop: ratio must be 0 < min <= max, got (",
                 ratio[0], ", ", ratio[1], ")");
  }
  Tensor apply(const Tensor& image, Generator& rng) const override {
    Tensor x = checked_image(image, "RandomResizedCrop");
    const auto p = random_resized_crop_params(x.size(1), x.size(2), scale_, ratio_, rng);
    return resize_bilinear(crop(x, p[0], p[1], p[2], p[3]), h_, w_);
  }
  std::string repr() const override {
    std::ostringstream os;
    os << "RandomResizedCrop(size=" << size_str(h_, w_) << ", scale=(" << scale_[0] << ", " << scale_[1]
       << "), ratio=(" << ratio_[0] << ", " << ratio_[1] << "))";
    return os.str();
  }

 private:
  int64_t h_, w_;
  std::array<double, 2> scale_, ratio_;
};

class Grayscale final : public Transform {
 public:
  explicit Grayscale(int out) : out_(out) {
    LOWBIT_CHECK(out == 1 || out == 3, "Grayscale: output channels must be 1 or 3, got ", out);
  }
  Tensor apply(const Tensor& image, Generator&) const override {
    Tensor x = checked_image(image, "Grayscale");
    const int64_t C = x.size(0), H = x.size(1), W = x.size(2), hw = H * W;
    LOWBIT_CHECK(C == 1 || C == 3, "Grayscale: expects 1 or 3 channels, got ", C);
    Tensor y = Tensor::empty({out_, H, W}, x.dtype());
    if (x.dtype() == DType::u8)
      gray(x.data<uint8_t>(), y.data<uint8_t>(), C, hw);
    else
      gray(x.data<float>(), y.data<float>(), C, hw);
    return y;
  }
  std::string repr() const override { return "Grayscale(num_output_channels=" + std::to_string(out_) + ")"; }

 private:
  template <class T>
  void gray(const T* s, T* d, int64_t C, int64_t hw) const {
    for (int64_t i = 0; i < hw; ++i) {
      T v = s[i];
      if (C == 3) {
        // torchvision: (0.2989 * r + 0.587 * g + 0.114 * b).to(img.dtype), in f32.
        const float l = 0.2989f * (float)s[i] + 0.587f * (float)s[hw + i] + 0.114f * (float)s[2 * hw + i];
        if constexpr (std::is_same_v<T, uint8_t>)
          v = (uint8_t)std::clamp(l, 0.0f, 255.0f);  // truncation, as the cast does
        else
          v = l;
      }
      for (int c = 0; c < out_; ++c) d[c * hw + i] = v;
    }
  }
  int out_;
};

class Compose final : public Transform {
 public:
  explicit Compose(std::vector<TransformPtr> ts) : given_(ts) {
    for (size_t k = 0; k < ts.size(); ++k) {
      LOWBIT_CHECK(ts[k] != nullptr, "Compose: transform ", k, " is null");
      auto norm = k + 1 < ts.size() ? std::dynamic_pointer_cast<const Normalize>(ts[k + 1]) : nullptr;
      if (dynamic_cast<const ToTensor*>(ts[k].get()) && norm) {
        run_.push_back(std::make_shared<ToTensorNormalize>(ts[k], norm));
        ++k;
      } else {
        run_.push_back(ts[k]);
      }
    }
  }
  Tensor apply(const Tensor& image, Generator& rng) const override {
    Tensor x = image;
    for (const TransformPtr& t : run_) x = t->apply(x, rng);
    return x;
  }
  std::string repr() const override {
    std::string s = "Compose(";
    for (size_t k = 0; k < given_.size(); ++k) s += (k ? ", " : "") + given_[k]->repr();
    return s + ")";
  }

 private:
  std::vector<TransformPtr> given_;  // as the user wrote them (repr)
  std::vector<TransformPtr> run_;    // with ToTensor+Normalize fused
};

}  // namespace

// ---------------------------------------------------------------- the pieces

std::array<int64_t, 2> resize_output_size(int64_t h, int64_t w, int64_t s) {
  LOWBIT_CHECK(h > 0 && w > 0 && s > 0, "Resize: bad sizes (image ", size_str(h, w), ", size ", s, ")");
  const int64_t shorter = std::min(h, w), longer = std::max(h, w);
  // int(size * long / short): Python's true division, then truncation.
  const int64_t new_long = (int64_t)((double)(s * longer) / (double)shorter);
  return w <= h ? std::array<int64_t, 2>{new_long, s} : std::array<int64_t, 2>{s, new_long};
}

Tensor resize_bilinear(const Tensor& image, int64_t oh, int64_t ow) {
  Tensor x = checked_image(image, "Resize");
  LOWBIT_CHECK(oh > 0 && ow > 0, "Resize: output size must be positive, got ", size_str(oh, ow));
  const int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  LOWBIT_CHECK(H > 0 && W > 0, "Resize: empty image ", shape_str(x.shape()));
  if (H == oh && W == ow) return x;
  Tensor y = Tensor::empty({C, oh, ow}, x.dtype());
  if (x.dtype() == DType::u8)
    resize_impl(x.data<uint8_t>(), y.data<uint8_t>(), C, H, W, oh, ow);
  else
    resize_impl(x.data<float>(), y.data<float>(), C, H, W, oh, ow);
  return y;
}

Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t h, int64_t w, float fill) {
  Tensor x = checked_image(image, "crop");
  LOWBIT_CHECK(h > 0 && w > 0, "crop: size must be positive, got ", size_str(h, w));
  const int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  Tensor y = Tensor::empty({C, h, w}, x.dtype());
  if (x.dtype() == DType::u8)
    crop_impl(x.data<uint8_t>(), y.data<uint8_t>(), C, H, W, top, left, h, w, u8_fill(fill));
  else
    crop_impl(x.data<float>(), y.data<float>(), C, H, W, top, left, h, w, fill);
  return y;
}

std::array<int64_t, 4> random_resized_crop_params(int64_t H, int64_t W, std::array<double, 2> scale,
                                                  std::array<double, 2> ratio, Generator& rng) {
  const double area = (double)H * (double)W;
  const double log_lo = std::log(ratio[0]), log_hi = std::log(ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * (scale[0] + (scale[1] - scale[0]) * rand_unit(rng));
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * rand_unit(rng));
    // int(round(...)): Python's round is half to even, as nearbyint.
    const int64_t w = (int64_t)std::nearbyint(std::sqrt(target_area * aspect));
    const int64_t h = (int64_t)std::nearbyint(std::sqrt(target_area / aspect));
    if (0 < w && w <= W && 0 < h && h <= H) {
      const int64_t i = rand_below(rng, H - h + 1);
      const int64_t j = rand_below(rng, W - w + 1);
      return {i, j, h, w};
    }
  }
  // Fallback: the central crop with the aspect ratio clamped into `ratio`.
  const double in_ratio = (double)W / (double)H;
  int64_t w = W, h = H;
  if (in_ratio < ratio[0]) {
    h = (int64_t)std::nearbyint((double)w / ratio[0]);
  } else if (in_ratio > ratio[1]) {
    w = (int64_t)std::nearbyint((double)h * ratio[1]);
  }
  return {(H - h) / 2, (W - w) / 2, h, w};
}

// ---------------------------------------------------------------- factories

TransformPtr to_tensor() { return std::make_shared<ToTensor>(); }
TransformPtr normalize(std::vector<float> mean, std::vector<float> std) {
  return std::make_shared<Normalize>(std::move(mean), std::move(std));
}
TransformPtr random_crop(int64_t height, int64_t width, const RandomCropOptions& o) {
  return std::make_shared<RandomCrop>(height, width, o.padding, o.fill, o.pad_if_needed);
}
TransformPtr random_crop(int64_t size, int64_t padding) {
  return random_crop(size, size, RandomCropOptions{{padding, padding, padding, padding}});
}
TransformPtr random_horizontal_flip(float p) { return std::make_shared<RandomHorizontalFlip>(p); }
TransformPtr resize(int64_t shorter_side) { return std::make_shared<Resize>(shorter_side, 0, 0); }
TransformPtr resize(int64_t height, int64_t width) {
  LOWBIT_CHECK(height > 0 && width > 0, "Resize: size must be positive, got ", size_str(height, width));
  return std::make_shared<Resize>(0, height, width);
}
TransformPtr center_crop(int64_t height, int64_t width) { return std::make_shared<CenterCrop>(height, width); }
TransformPtr center_crop(int64_t size) { return center_crop(size, size); }
TransformPtr random_resized_crop(int64_t height, int64_t width, std::array<double, 2> scale,
                                 std::array<double, 2> ratio) {
  return std::make_shared<RandomResizedCrop>(height, width, scale, ratio);
}
TransformPtr grayscale(int output_channels) { return std::make_shared<Grayscale>(output_channels); }
TransformPtr compose(std::vector<TransformPtr> transforms) { return std::make_shared<Compose>(std::move(transforms)); }

namespace {
class TransformedDataset final : public Dataset {
 public:
  TransformedDataset(DatasetPtr base, TransformPtr t) : base_(std::move(base)), t_(std::move(t)) {
    LOWBIT_CHECK(base_ != nullptr && t_ != nullptr, "with_transform: null dataset or transform");
  }
  int64_t size() const override { return base_->size(); }
  Sample get(int64_t i) const override {
    Sample s = base_->get(i);
    Generator g(0);
    s.image = t_->apply(s.image, g);
    return s;
  }
  int label(int64_t i) const override { return base_->label(i); }
  const std::vector<std::string>& class_names() const override { return base_->class_names(); }
  std::string describe(int64_t i) const override { return base_->describe(i); }

 private:
  DatasetPtr base_;
  TransformPtr t_;
};
}  // namespace

DatasetPtr with_transform(DatasetPtr base, TransformPtr t) {
  return std::make_shared<TransformedDataset>(std::move(base), std::move(t));
}

}  // namespace lowbit::data
