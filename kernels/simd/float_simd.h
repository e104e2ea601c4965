// Elementwise kernels, reductions and batch-norm helpers written once with
// xsimd and instantiated per ISA: FloatSimd<Arch> for Arch = fma3<avx2>
// (kernels/avx2/) or neon64 (kernels/neon/). Include this header only from an
// ISA folder's .cpp, which is compiled with that ISA's flags; everything here
// has internal linkage, so each ISA's copy stays in its own object file.
//
// Parallelism: arrays longer than kParallelMin are split into fixed chunks
// and the chunks run under OpenMP. Reductions use a fixed block partition that
// does not depend on the thread count, and combine block results in block
// order, so sums are bit-identical for any LOWBIT_THREADS.
//
// Tails: the last n % lanes elements go through the same vector code on a
// padded copy, so an element's result never depends on its position.
#pragma once
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"

namespace lowbit::kernels {
namespace {

constexpr int64_t kParallelMin = 32 * 1024;  // below this, thread start-up costs more than it saves
constexpr int64_t kChunk = 8 * 1024;         // elementwise work unit (32 KiB of floats)
constexpr int64_t kSumBlock = 512;           // reduction block: float lanes, then double

// body(begin, end) over [0, n), in parallel chunks when n is large.
template <class Body>
void parallel_ranges(int64_t n, Body body) {
  const int threads = num_threads();
  if (n <= kParallelMin || threads <= 1) {
    body(int64_t{0}, n);
    return;
  }
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t ci = 0; ci < chunks; ++ci) body(ci * kChunk, std::min(n, (ci + 1) * kChunk));
}

// Σ over [0, n) by fixed blocks combined in order (serial; callers parallelise above it).
template <class Block>
double blocked(int64_t n, Block block) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i += kSumBlock) s += block(i, std::min(kSumBlock, n - i));
  return s;
}

template <class Arch>
struct FloatSimd {
  using VF = xsimd::batch<float, Arch>;
  static constexpr int64_t kLanes = VF::size;

  // y[i] = op(x[i]) over [0, n); the tail runs through a zero-padded batch.
  template <class Op>
  static void map1(float* y, const float* x, int64_t n, Op op) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) op(VF::load_unaligned(x + i)).store_unaligned(y + i);
    if (i < n) {
      alignas(32) float buf[kLanes] = {};
      std::memcpy(buf, x + i, sizeof(float) * (n - i));
      op(VF::load_aligned(buf)).store_aligned(buf);
      std::memcpy(y + i, buf, sizeof(float) * (n - i));
    }
  }

  // y[i] = op(a[i*sa], b[i*sb]) with sa, sb ∈ {0, 1}.
  template <class Op>
  static void map2(float* y, const float* a, bool a_scalar, const float* b, bool b_scalar, int64_t n, Op op) {
    if (n <= 0) return;
    const VF a0(a[0]), b0(b[0]);
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      VF va = a_scalar ? a0 : VF::load_unaligned(a + i);
      VF vb = b_scalar ? b0 : VF::load_unaligned(b + i);
      op(va, vb).store_unaligned(y + i);
    }
    if (i < n) {
      alignas(32) float ba[kLanes] = {}, bb[kLanes] = {};
      const int64_t rest = n - i;
      if (!a_scalar) std::memcpy(ba, a + i, sizeof(float) * rest);
      if (!b_scalar) std::memcpy(bb, b + i, sizeof(float) * rest);
      VF va = a_scalar ? a0 : VF::load_aligned(ba);
      VF vb = b_scalar ? b0 : VF::load_aligned(bb);
      op(va, vb).store_aligned(ba);
      std::memcpy(y + i, ba, sizeof(float) * rest);
    }
  }

  // Stable sigmoid: exp only of −|x|, so it never overflows.
  static VF sigmoid(VF x) {
    const VF e = xsimd::exp(-xsimd::abs(x));
    const VF one(1.0f);
    const VF r = one / (one + e);
    return xsimd::select(x >= VF(0.0f), r, e * r);
  }

  template <class Op>
  static void unary_with(float* y, const float* x, int64_t n, Op op) {
    parallel_ranges(n, [&](int64_t b, int64_t e) { map1(y + b, x + b, e - b, op); });
  }

  // y[n] = op(x[n])
  static void f32_unary(float* y, const float* x, Unary op, int64_t n) {
    const VF one(1.0f);
    switch (op) {
      case Unary::neg: unary_with(y, x, n, [](VF v) { return -v; }); break;
      case Unary::exp: unary_with(y, x, n, [](VF v) { return xsimd::exp(v); }); break;
      case Unary::log: unary_with(y, x, n, [](VF v) { return xsimd::log(v); }); break;
      case Unary::sqrt: unary_with(y, x, n, [](VF v) { return xsimd::sqrt(v); }); break;
      case Unary::abs: unary_with(y, x, n, [](VF v) { return xsimd::abs(v); }); break;
      case Unary::relu: unary_with(y, x, n, [](VF v) { return act_v<Act::relu>(v); }); break;
      case Unary::relu6: unary_with(y, x, n, [](VF v) { return act_v<Act::relu6>(v); }); break;
      case Unary::sigmoid: unary_with(y, x, n, sigmoid); break;
      case Unary::tanh: unary_with(y, x, n, [](VF v) { return xsimd::tanh(v); }); break;
      case Unary::square: unary_with(y, x, n, [](VF v) { return v * v; }); break;
      case Unary::reciprocal: unary_with(y, x, n, [&](VF v) { return one / v; }); break;
    }
  }

  template <class Op>
  static void binary_with(float* y, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n, Op op) {
    parallel_ranges(n, [&](int64_t lo, int64_t hi) {
      map2(y + lo, sa ? a + lo : a, sa == 0, sb ? b + lo : b, sb == 0, hi - lo, op);
    });
  }

  // y[n] = op(a[n*sa], b[n*sb]); strides other than 0/1 take the reference loop.
  static void f32_binary(float* y, const float* a, int64_t sa, const float* b, int64_t sb, Binary op, int64_t n) {
    if (n <= 0) return;
    if ((sa != 0 && sa != 1) || (sb != 0 && sb != 1)) {
      ref::f32_binary(y, a, sa, b, sb, op, n);
      return;
    }
    switch (op) {
      case Binary::add: binary_with(y, a, sa, b, sb, n, [](VF u, VF v) { return u + v; }); break;
      case Binary::sub: binary_with(y, a, sa, b, sb, n, [](VF u, VF v) { return u - v; }); break;
      case Binary::mul: binary_with(y, a, sa, b, sb, n, [](VF u, VF v) { return u * v; }); break;
      case Binary::div: binary_with(y, a, sa, b, sb, n, [](VF u, VF v) { return u / v; }); break;
      // NaN in either operand propagates (ref semantics; a bare max instruction may drop
      // one). isnan, not u != u: xsimd's != is an ordered compare on AVX, false for NaN.
      case Binary::max:
        binary_with(y, a, sa, b, sb, n,
                    [](VF u, VF v) { return xsimd::select((u > v) | xsimd::isnan(u), u, v); });
        break;
      case Binary::min:
        binary_with(y, a, sa, b, sb, n,
                    [](VF u, VF v) { return xsimd::select((u < v) | xsimd::isnan(u), u, v); });
        break;
    }
  }

  // y[n] = a[n]*alpha + b[n]*beta   (b may alias y: each batch is loaded before it is stored)
  static void f32_axpby(float* y, const float* a, float alpha, const float* b, float beta, int64_t n) {
    const VF va(alpha), vb(beta);
    parallel_ranges(n, [&](int64_t lo, int64_t hi) {
      map2(y + lo, a + lo, false, b + lo, false, hi - lo,
           [&](VF u, VF v) { return xsimd::fma(u, va, v * vb); });
    });
  }

  // Sum of at most kSumBlock floats: four float accumulators of kLanes lanes
  // (≤ 16 terms per lane with AVX2, 32 with NEON: the float error stays near
  // that many ulp of Σ|x|),
  // then a horizontal add converted to double.
  static double block_sum(const float* x, int64_t n) {
    VF s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    int64_t i = 0;
    for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
      s0 += VF::load_unaligned(x + i);
      s1 += VF::load_unaligned(x + i + kLanes);
      s2 += VF::load_unaligned(x + i + 2 * kLanes);
      s3 += VF::load_unaligned(x + i + 3 * kLanes);
    }
    for (; i + kLanes <= n; i += kLanes) s0 += VF::load_unaligned(x + i);
    double s = static_cast<double>(xsimd::hadd((s0 + s1) + (s2 + s3)));
    for (; i < n; ++i) s += x[i];
    return s;
  }

  // Σ (x − mean)² over at most kSumBlock floats, same scheme as block_sum.
  static double block_sq_dev(const float* x, int64_t n, float mean) {
    const VF m(mean);
    VF s0(0.0f), s1(0.0f);
    int64_t i = 0;
    for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
      VF d0 = VF::load_unaligned(x + i) - m, d1 = VF::load_unaligned(x + i + kLanes) - m;
      s0 = xsimd::fma(d0, d0, s0);
      s1 = xsimd::fma(d1, d1, s1);
    }
    for (; i + kLanes <= n; i += kLanes) {
      VF d = VF::load_unaligned(x + i) - m;
      s0 = xsimd::fma(d, d, s0);
    }
    double s = static_cast<double>(xsimd::hadd(s0 + s1));
    for (; i < n; ++i) {
      double d = double(x[i]) - mean;
      s += d * d;
    }
    return s;
  }

  // sum of x[n]: per-chunk partials (each a fixed blocked sum) added in chunk
  // order — the same arithmetic whether the chunks ran on one thread or many.
  static double f32_sum(const float* x, int64_t n) {
    auto chunk_sum = [&](int64_t ci) {
      const int64_t lo = ci * kChunk, len = std::min(kChunk, n - lo);
      return blocked(len, [&](int64_t i, int64_t l) { return block_sum(x + lo + i, l); });
    };
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    if (n <= kParallelMin || num_threads() <= 1) {
      double s = 0.0;
      for (int64_t ci = 0; ci < chunks; ++ci) s += chunk_sum(ci);
      return s;
    }
    std::vector<double> part(static_cast<size_t>(chunks));
#pragma omp parallel for num_threads(num_threads()) schedule(static)
    for (int64_t ci = 0; ci < chunks; ++ci) part[ci] = chunk_sum(ci);
    double s = 0.0;
    for (double p : part) s += p;
    return s;
  }

  // max of x[n]; NaN if any NaN
  static float range_max(const float* x, int64_t n) {
    VF m(-std::numeric_limits<float>::infinity());
    auto nan = xsimd::isnan(VF(0.0f));  // all false
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      VF v = VF::load_unaligned(x + i);
      nan = nan | xsimd::isnan(v);
      m = xsimd::max(m, v);
    }
    if (xsimd::any(nan)) return std::numeric_limits<float>::quiet_NaN();
    alignas(32) float lanes[kLanes];
    m.store_aligned(lanes);
    float r = lanes[0];
    for (int64_t l = 1; l < kLanes; ++l) r = std::max(r, lanes[l]);
    for (; i < n; ++i) {
      if (x[i] != x[i]) return x[i];
      r = std::max(r, x[i]);
    }
    return r;
  }

  // max of x[n]
  static float f32_max(const float* x, int64_t n) {
    if (n <= kParallelMin || num_threads() <= 1) return range_max(x, n);
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<float> part(static_cast<size_t>(chunks));
#pragma omp parallel for num_threads(num_threads()) schedule(static)
    for (int64_t ci = 0; ci < chunks; ++ci)
      part[ci] = range_max(x + ci * kChunk, std::min(kChunk, n - ci * kChunk));
    float r = -std::numeric_limits<float>::infinity();
    for (float p : part) {
      if (p != p) return p;
      r = std::max(r, p);
    }
    return r;
  }

  // mean[C], var[C] (biased) over x[N×C×HW]; two passes per channel, channels in parallel.
  static void f32_channel_moments(float* mean, float* var, const float* x, int64_t n, int64_t c, int64_t hw) {
    const double count = static_cast<double>(n * hw);
    const bool par = n * c * hw > kParallelMin && c > 1 && num_threads() > 1;
#pragma omp parallel for num_threads(num_threads()) schedule(static) if (par)
    for (int64_t ch = 0; ch < c; ++ch) {
      double s = 0.0;
      for (int64_t b = 0; b < n; ++b) {
        const float* p = x + (b * c + ch) * hw;
        s += blocked(hw, [&](int64_t i, int64_t len) { return block_sum(p + i, len); });
      }
      const double mu = count > 0 ? s / count : 0.0;
      const float muf = static_cast<float>(mu);
      double ss = 0.0;
      for (int64_t b = 0; b < n; ++b) {
        const float* p = x + (b * c + ch) * hw;
        ss += blocked(hw, [&](int64_t i, int64_t len) { return block_sq_dev(p + i, len, muf); });
      }
      // Deviations were taken from the float-rounded mean; remove that offset
      // exactly: Σ(x−m)² = Σ(x−μ)² + count·(μ−m)².
      const double off = mu - double(muf);
      mean[ch] = muf;
      var[ch] = count > 0 ? static_cast<float>(std::max(0.0, ss / count - off * off)) : 0.0f;
    }
  }

  // act(v) as act_apply (kernels.h); also f32_unary's relu/relu6. Select on
  // (v < 0) rather than max(): NaN compares false and passes through, as in ref.
  template <Act A>
  static VF act_v(VF v) {
    if constexpr (A == Act::none) return v;
    const VF zero(0.0f), six(6.0f);
    v = xsimd::select(v < zero, zero, v);
    if constexpr (A == Act::relu6) v = xsimd::select(v > six, six, v);
    return v;
  }
  // g where act_passes(A, y), else 0.
  template <Act A>
  static VF gate_v(VF g, VF y) {
    if constexpr (A == Act::none) return g;
    const VF zero(0.0f), six(6.0f);
    auto pass = y > zero;
    if constexpr (A == Act::relu6) pass = pass && (y < six);
    return xsimd::select(pass, g, zero);
  }
  // Calls f.template operator()<A>() for the runtime act.
  template <class F>
  static void with_act(Act a, F&& f) {
    switch (a) {
      case Act::none: f.template operator()<Act::none>(); break;
      case Act::relu: f.template operator()<Act::relu>(); break;
      case Act::relu6: f.template operator()<Act::relu6>(); break;
    }
  }

  // y[N×C×HW] = act(x * scale[C] + shift[C]); planes in parallel.
  static void f32_channel_affine(float* y, const float* x, const float* scale, const float* shift, Act act,
                                 int64_t n, int64_t c, int64_t hw) {
    const int64_t planes = n * c;
    const bool par = planes * hw > kParallelMin && planes > 1 && num_threads() > 1;
    with_act(act, [&]<Act A>() {
#pragma omp parallel for num_threads(num_threads()) schedule(static) if (par)
      for (int64_t pl = 0; pl < planes; ++pl) {
        const VF sc(scale[pl % c]), sh(shift[pl % c]);
        map1(y + pl * hw, x + pl * hw, hw, [&](VF v) { return act_v<A>(xsimd::fma(v, sc, sh)); });
      }
    });
  }

  // Σg and Σg·(x−m) over at most kSumBlock floats (float lanes, then double),
  // g gated by the fused activation's output y (unread for Act::none).
  template <Act A>
  static void block_bn_sums(const float* x, const float* g, const float* y, int64_t n, float m, double& sg,
                            double& sgd) {
    const VF vm(m);
    auto gv = [&](int64_t i) {
      if constexpr (A == Act::none) return VF::load_unaligned(g + i);
      else return gate_v<A>(VF::load_unaligned(g + i), VF::load_unaligned(y + i));
    };
    VF a0(0.0f), a1(0.0f), b0(0.0f), b1(0.0f);
    int64_t i = 0;
    for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
      const VF g0 = gv(i), g1 = gv(i + kLanes);
      a0 += g0;
      a1 += g1;
      b0 = xsimd::fma(g0, VF::load_unaligned(x + i) - vm, b0);
      b1 = xsimd::fma(g1, VF::load_unaligned(x + i + kLanes) - vm, b1);
    }
    for (; i + kLanes <= n; i += kLanes) {
      const VF g0 = gv(i);
      a0 += g0;
      b0 = xsimd::fma(g0, VF::load_unaligned(x + i) - vm, b0);
    }
    double s = static_cast<double>(xsimd::hadd(a0 + a1)), t = static_cast<double>(xsimd::hadd(b0 + b1));
    for (; i < n; ++i) {
      const float gi = A == Act::none || act_passes(A, y[i]) ? g[i] : 0.0f;
      s += gi;
      t += double(gi) * (double(x[i]) - m);
    }
    sg += s;
    sgd += t;
  }

  // Batch-norm backward (kernels.h); channels in parallel. Σg·x̂ is taken as
  // invstd·Σg·(x − mean): one multiply per channel instead of per element.
  static void f32_bn_backward(float* dx, float* sum_g, float* sum_gxhat, const float* x, const float* g,
                              const float* y, Act act, const float* mean, const float* invstd, const float* weight,
                              bool training, int64_t n, int64_t c, int64_t hw) {
    with_act(act, [&]<Act A>() { bn_backward<A>(dx, sum_g, sum_gxhat, x, g, y, mean, invstd, weight, training, n, c, hw); });
  }
  template <Act A>
  static void bn_backward(float* dx, float* sum_g, float* sum_gxhat, const float* x, const float* g, const float* y,
                          const float* mean, const float* invstd, const float* weight, bool training, int64_t n,
                          int64_t c, int64_t hw) {
    const double count = static_cast<double>(n * hw);
    const bool par = n * c * hw > kParallelMin && c > 1 && num_threads() > 1;
#pragma omp parallel for num_threads(num_threads()) schedule(static) if (par)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float m = mean[ch], is = invstd[ch];
      double sg = 0.0, sgd = 0.0;
      for (int64_t b = 0; b < n; ++b) {
        const int64_t o = (b * c + ch) * hw;
        for (int64_t i = 0; i < hw; i += kSumBlock)
          block_bn_sums<A>(x + o + i, g + o + i, y ? y + o + i : nullptr, std::min(kSumBlock, hw - i), m, sg, sgd);
      }
      const double sgx = sgd * is;
      sum_g[ch] = static_cast<float>(sg);
      sum_gxhat[ch] = static_cast<float>(sgx);
      if (!dx || hw == 0) continue;
      // dx = k·g − k·is·mgx·(x − m) − k·mg, k = w·is (x − m kept: no cancellation).
      const double w = weight ? weight[ch] : 1.0;
      const double mg = training && count > 0 ? sg / count : 0.0, mgx = training && count > 0 ? sgx / count : 0.0;
      const double kk = w * is;
      const VF cg(static_cast<float>(kk)), cx(static_cast<float>(-kk * is * mgx)), c0(static_cast<float>(-kk * mg)),
          vm(m);
      for (int64_t b = 0; b < n; ++b) {
        const int64_t o = (b * c + ch) * hw;
        auto f = [&](VF gv, VF xv) { return xsimd::fma(gv, cg, xsimd::fma(xv - vm, cx, c0)); };
        if constexpr (A == Act::none) {
          map2(dx + o, g + o, false, x + o, false, hw, f);
        } else {
          // Gate g into dx first (dx is write-only scratch here), then the affine map in place.
          map2(dx + o, g + o, false, y + o, false, hw, [](VF gv, VF yv) { return gate_v<A>(gv, yv); });
          map2(dx + o, dx + o, false, x + o, false, hw, f);
        }
      }
    }
  }

  static void fill(FloatKernels& k) {
    k.f32_unary = f32_unary;
    k.f32_binary = f32_binary;
    k.f32_axpby = f32_axpby;
    k.f32_sum = f32_sum;
    k.f32_max = f32_max;
    k.f32_channel_moments = f32_channel_moments;
    k.f32_channel_affine = f32_channel_affine;
    k.f32_bn_backward = f32_bn_backward;
  }
};

}  // namespace
}  // namespace lowbit::kernels
