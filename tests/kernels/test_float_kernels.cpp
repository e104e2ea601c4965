// Every available kernel path against the reference kernels.
//
// How to add a kernel: give it a reference in kernels/ref/, hand-computed
// cases in test_ref_kernels.cpp, then a case here that runs it for every
// fast path (fast_isas(): every available path but ref) on odd sizes (1, 3, 13, 17, 31, 100, 1007 and
// one above the parallel threshold) and compares with the ref result.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"
#include "tests/kernels/kernel_test_util.h"

using namespace lowbit::kernels;
using namespace lowbit::kernels::testing;

namespace {

// 100003 crosses the 32K parallel threshold of the fast paths.
const int64_t kSizes[] = {1, 3, 13, 17, 31, 100, 1007, 100003};

struct UnaryCase {
  Unary op;
  const char* name;
  float lo, hi;  // a valid input domain
};

// Domains reach the ends of float range where the op is defined there: exp
// up to overflow's edge and down into denormal results, log over 60 decades.
const UnaryCase kUnaryCases[] = {
    {Unary::neg, "neg", -100.0f, 100.0f},      {Unary::exp, "exp", -87.0f, 88.0f},
    {Unary::log, "log", 1e-30f, 1e30f},        {Unary::sqrt, "sqrt", 0.0f, 1e6f},
    {Unary::abs, "abs", -10.0f, 10.0f},        {Unary::relu, "relu", -5.0f, 5.0f},
    {Unary::relu6, "relu6", -3.0f, 9.0f},      {Unary::sigmoid, "sigmoid", -100.0f, 100.0f},
    {Unary::tanh, "tanh", -20.0f, 20.0f},      {Unary::square, "square", -1e3f, 1e3f},
    {Unary::reciprocal, "reciprocal", 1e-3f, 1e3f},
};

std::vector<float> log_uniform(int64_t n, float lo, float hi, uint32_t seed) {
  auto u = uniform(n, std::log(lo), std::log(hi), seed);
  for (auto& v : u) v = std::exp(v);
  return u;
}

}  // namespace

TEST_CASE("f32_unary: every path matches ref for every op") {
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (const UnaryCase& uc : kUnaryCases)
      for (int64_t n : kSizes) {
        auto x = uc.op == Unary::log ? log_uniform(n, uc.lo, uc.hi, 11) : uniform(n, uc.lo, uc.hi, 11);
        if (uc.op == Unary::reciprocal)  // both signs
          for (size_t i = 0; i < x.size(); i += 2) x[i] = -x[i];
        std::vector<float> got(n, -1.0f), want(n, -2.0f);
        t.f32.f32_unary(got.data(), x.data(), uc.op, n);
        ref::f32_unary(want.data(), x.data(), uc.op, n);
        // xsimd's exp/log/tanh are within ~2 ulp of libm's (2.4e-7 measured);
        // FLT_MIN absolute slack: exp/sigmoid reach denormal results, where
        // relative error is meaningless.
        check_close(got, want, 1e-6, FLT_MIN,
                    std::string(isa_name(isa)) + " " + uc.name + " n=" + std::to_string(n));
      }
  }
}

TEST_CASE("f32_unary: relu, relu6 and abs keep NaN; relu6 clamps at 6") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = {nan, -1.0f, 0.0f, 3.0f, 6.0f, 7.5f, nan, -0.5f, 100.0f, nan};
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (Unary op : {Unary::relu, Unary::relu6, Unary::abs, Unary::sigmoid, Unary::tanh}) {
      std::vector<float> got(x.size()), want(x.size());
      t.f32.f32_unary(got.data(), x.data(), op, (int64_t)x.size());
      ref::f32_unary(want.data(), x.data(), op, (int64_t)x.size());
      check_close(got, want, 1e-6, 0.0, std::string(isa_name(isa)) + " nan op " + std::to_string(int(op)));
    }
    std::vector<float> y(x.size());
    t.f32.f32_unary(y.data(), x.data(), Unary::relu6, (int64_t)x.size());
    CHECK(y[4] == 6.0f);
    CHECK(y[5] == 6.0f);
    CHECK(y[8] == 6.0f);
    CHECK(y[1] == 0.0f);
    CHECK(std::isnan(y[0]));
  }
}

TEST_CASE("f32_binary: every path matches ref, strides 0/1/3") {
  const Binary ops[] = {Binary::add, Binary::sub, Binary::mul, Binary::div, Binary::max, Binary::min};
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (Binary op : ops)
      for (int64_t sa : {0, 1, 3})
        for (int64_t sb : {0, 1, 3})
          for (int64_t n : kSizes) {
            auto a = uniform(std::max<int64_t>(1, n * sa), -4.0f, 4.0f, 21);
            auto b = uniform(std::max<int64_t>(1, n * sb), 0.5f, 4.0f, 22);  // away from 0 for div
            std::vector<float> got(n, -1.0f), want(n, -2.0f);
            t.f32.f32_binary(got.data(), a.data(), sa, b.data(), sb, op, n);
            ref::f32_binary(want.data(), a.data(), sa, b.data(), sb, op, n);
            check_close(got, want, 1e-6, 0.0,
                        std::string(isa_name(isa)) + " op " + std::to_string(int(op)) + " sa=" +
                            std::to_string(sa) + " sb=" + std::to_string(sb) + " n=" + std::to_string(n));
          }
  }
}

TEST_CASE("f32_binary: max/min propagate NaN from either side") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> a = {nan, 1.0f, 2.0f, nan, 5.0f, -1.0f, 0.0f, 3.0f, nan};
  std::vector<float> b = {1.0f, nan, 3.0f, nan, 4.0f, -2.0f, nan, 3.0f, 0.0f};
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (Binary op : {Binary::max, Binary::min}) {
      std::vector<float> got(a.size()), want(a.size());
      t.f32.f32_binary(got.data(), a.data(), 1, b.data(), 1, op, (int64_t)a.size());
      ref::f32_binary(want.data(), a.data(), 1, b.data(), 1, op, (int64_t)a.size());
      check_close(got, want, 0.0, 0.0, std::string(isa_name(isa)) + " nan max/min");
      CHECK(std::isnan(got[0]));
      CHECK(std::isnan(got[1]));
    }
  }
}

TEST_CASE("f32_axpby: every path matches ref, including b aliasing y") {
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (int64_t n : kSizes) {
      auto a = uniform(n, -2.0f, 2.0f, 31), b = uniform(n, -2.0f, 2.0f, 32);
      std::vector<float> got(n), want(n);
      t.f32.f32_axpby(got.data(), a.data(), 0.75f, b.data(), -1.5f, n);
      ref::f32_axpby(want.data(), a.data(), 0.75f, b.data(), -1.5f, n);
      check_close(got, want, 1e-5, 1e-6, std::string(isa_name(isa)) + " axpby n=" + std::to_string(n));
      std::vector<float> inplace = b;  // y == b
      t.f32.f32_axpby(inplace.data(), a.data(), 0.75f, inplace.data(), -1.5f, n);
      check_close(inplace, want, 1e-5, 1e-6, std::string(isa_name(isa)) + " axpby aliased");
    }
  }
}

TEST_CASE("f32_sum and f32_max: every path matches ref") {
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (int64_t n : kSizes) {
      auto x = uniform(n, -1.0f, 3.0f, 41);
      double abs_sum = 0.0;
      for (float v : x) abs_sum += std::fabs(v);
      const double want = ref::f32_sum(x.data(), n), got = t.f32.f32_sum(x.data(), n);
      INFO(isa_name(isa) << " n=" << n << " got " << got << " want " << want);
      // Condition-scaled: a float-lane sum errs relative to Σ|x|, not to the (cancelled) sum.
      CHECK(std::fabs(got - want) <= 1e-6 * abs_sum);
      CHECK(t.f32.f32_max(x.data(), n) == ref::f32_max(x.data(), n));
    }
    std::vector<float> x = uniform(1007, -1.0f, 1.0f, 42);
    x[500] = std::numeric_limits<float>::quiet_NaN();
    CHECK(std::isnan(t.f32.f32_max(x.data(), 1007)));
    x[500] = 7.0f;
    CHECK(t.f32.f32_max(x.data(), 1007) == 7.0f);
    CHECK(t.f32.f32_max(x.data(), 0) == -std::numeric_limits<float>::infinity());
    CHECK(t.f32.f32_sum(x.data(), 0) == 0.0);
  }
}

TEST_CASE("f32_sum: result does not depend on the thread count") {
  const int saved = num_threads();
  auto x = uniform(300007, -1.0f, 1.0f, 51);
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    set_num_threads(1);
    const double one = t.f32.f32_sum(x.data(), (int64_t)x.size());
    set_num_threads(2);
    const double two = t.f32.f32_sum(x.data(), (int64_t)x.size());
    set_num_threads(3);
    const double three = t.f32.f32_sum(x.data(), (int64_t)x.size());
    INFO(isa_name(isa));
    CHECK(one == two);
    CHECK(one == three);
  }
  set_num_threads(saved);
}

TEST_CASE("f32_channel_moments and f32_channel_affine: every path matches ref") {
  struct Dims {
    int64_t n, c, hw;
  };
  const Dims dims[] = {{1, 1, 1}, {2, 3, 13}, {3, 13, 17}, {1, 5, 1007}, {4, 16, 1024}, {2, 1, 40000}};
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (const Dims& d : dims) {
      // Offset far from zero: a one-pass E[x²]−E[x]² in float would lose the variance.
      auto x = uniform(d.n * d.c * d.hw, 99.0f, 101.0f, 61);
      std::vector<float> mg(d.c), vg(d.c), mw(d.c), vw(d.c);
      t.f32.f32_channel_moments(mg.data(), vg.data(), x.data(), d.n, d.c, d.hw);
      ref::f32_channel_moments(mw.data(), vw.data(), x.data(), d.n, d.c, d.hw);
      const std::string what = std::string(isa_name(isa)) + " n=" + std::to_string(d.n) +
                               " c=" + std::to_string(d.c) + " hw=" + std::to_string(d.hw);
      check_close(mg, mw, 1e-6, 0.0, what + " mean");
      check_close(vg, vw, 1e-4, 1e-6, what + " var");

      // Affine and backward on the centred copy (x − 100 and mean − 100 are exact), so the
      // affine's x·scale + shift does not cancel and a relative tolerance holds.
      std::vector<float> xa(x.size()), ma(d.c);
      for (size_t i = 0; i < x.size(); ++i) xa[i] = x[i] - 100.0f;
      for (int64_t i = 0; i < d.c; ++i) ma[i] = mw[i] - 100.0f;
      auto scale = uniform(d.c, -2.0f, 2.0f, 62), shift = uniform(d.c, -1.0f, 1.0f, 63);
      auto g = uniform(xa.size(), -1.0f, 1.0f, 64);
      std::vector<float> invstd(d.c), bn_scale(d.c), bn_shift(d.c);
      // eps 0.1 keeps invstd small for the one-element channels (variance 0), where
      // x·scale + shift would otherwise cancel.
      for (int64_t i = 0; i < d.c; ++i) invstd[i] = 1.0f / std::sqrt(vw[i] + 0.1f);
      // Batch-norm's scale/shift: outputs spread over about [-9, 15], so relu and relu6 gate on both edges.
      for (int64_t i = 0; i < d.c; ++i) {
        bn_scale[i] = 3.0f * scale[i] * invstd[i];
        bn_shift[i] = 3.0f * shift[i] + 3.0f - ma[i] * bn_scale[i];
      }
      for (Act act : {Act::none, Act::relu, Act::relu6}) {
        const std::string wa = what + " act " + std::to_string(int(act));
        std::vector<float> yg(xa.size()), yw(xa.size());
        t.f32.f32_channel_affine(yg.data(), xa.data(), bn_scale.data(), bn_shift.data(), act, d.n, d.c, d.hw);
        ref::f32_channel_affine(yw.data(), xa.data(), bn_scale.data(), bn_shift.data(), act, d.n, d.c, d.hw);
        check_close(yg, yw, 1e-5, 1e-5, wa + " affine");
        // The fused activation is the unfused one applied afterwards, bit for bit.
        if (act != Act::none) {
          std::vector<float> plain(xa.size()), applied(xa.size());
          t.f32.f32_channel_affine(plain.data(), xa.data(), bn_scale.data(), bn_shift.data(), Act::none, d.n, d.c, d.hw);
          t.f32.f32_unary(applied.data(), plain.data(), act == Act::relu ? Unary::relu : Unary::relu6,
                          (int64_t)plain.size());
          CHECK_MESSAGE(std::memcmp(applied.data(), yg.data(), sizeof(float) * yg.size()) == 0, wa);
        }

        // Batch-norm backward (x̂ from the moments above), training and eval, with and without weight;
        // with an activation, g is gated by the fused output yg (both paths read the same yg).
        for (int mode = 0; mode < 3; ++mode) {
          const bool training = mode != 2;
          const float* w = mode == 1 ? nullptr : scale.data();
          const float* y = act == Act::none ? nullptr : yg.data();
          std::vector<float> dg(xa.size(), NAN), dw(xa.size(), NAN), sgg(d.c), sgw(d.c), sxg(d.c), sxw(d.c);
          t.f32.f32_bn_backward(dg.data(), sgg.data(), sxg.data(), xa.data(), g.data(), y, act, ma.data(),
                                invstd.data(), w, training, d.n, d.c, d.hw);
          ref::f32_bn_backward(dw.data(), sgw.data(), sxw.data(), xa.data(), g.data(), y, act, ma.data(),
                               invstd.data(), w, training, d.n, d.c, d.hw);
          const std::string m = wa + " bn_backward mode " + std::to_string(mode);
          check_close(sgg, sgw, 1e-4, 1e-4, m + " sum_g");
          check_close(sxg, sxw, 1e-4, 1e-4, m + " sum_gxhat");
          check_close(dg, dw, 1e-4, 1e-5, m + " dx");
          // Sums only (dx null) leave the same sums.
          std::vector<float> sg2(d.c), sx2(d.c);
          t.f32.f32_bn_backward(nullptr, sg2.data(), sx2.data(), xa.data(), g.data(), y, act, ma.data(),
                                invstd.data(), w, training, d.n, d.c, d.hw);
          CHECK(sg2 == sgg);
          CHECK(sx2 == sxg);
          // Gating inside the kernel equals gating g beforehand, bit for bit.
          if (act != Act::none) {
            std::vector<float> gated(g.size()), d2(xa.size()), sg3(d.c), sx3(d.c);
            for (size_t i = 0; i < g.size(); ++i) gated[i] = act_passes(act, yg[i]) ? g[i] : 0.0f;
            t.f32.f32_bn_backward(d2.data(), sg3.data(), sx3.data(), xa.data(), gated.data(), nullptr, Act::none,
                                  ma.data(), invstd.data(), w, training, d.n, d.c, d.hw);
            CHECK_MESSAGE(std::memcmp(d2.data(), dg.data(), sizeof(float) * dg.size()) == 0, m);
            CHECK(sg3 == sgg);
            CHECK(sx3 == sxg);
          }
        }
      }
    }
  }
}

// ---- GEMM ---------------------------------------------------------------------

namespace {

// C = op(A)·op(B) + beta·C with leading dims larger than the widths; the
// padding columns of C must stay untouched. With beta == 0, C starts as NaN
// (the contract says it is write-only).
void check_gemm(const KernelTable& t, bool ta, bool tb, float beta, int64_t m, int64_t n, int64_t k, int64_t pad) {
  const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
  auto a = uniform(a_rows * lda, -1.0f, 1.0f, 71);
  auto b = uniform(b_rows * ldb, -1.0f, 1.0f, 72);
  auto c0 = uniform(m * ldc, -1.0f, 1.0f, 73);
  if (beta == 0.0f)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c0[i * ldc + j] = std::numeric_limits<float>::quiet_NaN();
  auto got = c0, want = c0;
  t.f32.f32_gemm(got.data(), ldc, a.data(), lda, b.data(), ldb, ta, tb, beta, m, n, k);
  ref::f32_gemm(want.data(), ldc, a.data(), lda, b.data(), ldb, ta, tb, beta, m, n, k);
  // Error grows with the dot-product length: scale the tolerance by k.
  const double tol = 1e-6 * double(k + 1);
  check_close(got, want, tol, tol,
              std::string(isa_name(t.isa)) + " gemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) +
                  " beta=" + std::to_string(beta) + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
                  " k=" + std::to_string(k) + " pad=" + std::to_string(pad));
}

}  // namespace

TEST_CASE("f32_gemm: every path matches ref over transposes, beta and edge sizes") {
  const int64_t sizes[] = {1, 5, 6, 7, 13, 16, 17, 33, 100};
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 0.5f})
          for (int64_t m : sizes)
            for (int64_t n : sizes)
              for (int64_t k : sizes) check_gemm(t, ta, tb, beta, m, n, k, (m + n + k) % 2 ? 3 : 0);
  }
}

TEST_CASE("f32_gemm: large shapes cross every cache block and the thread split") {
  struct Mnk {
    int64_t m, n, k;
  };
  // k above any KC, m above MC, n above NC for common blockings; odd everywhere.
  const Mnk shapes[] = {{197, 301, 613}, {517, 67, 129}, {31, 4099, 37}, {1, 2000, 300}, {300, 1, 700}};
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (const Mnk& s : shapes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) check_gemm(t, ta, tb, ta ? 1.0f : 0.0f, s.m, s.n, s.k, 5);
  }
}

TEST_CASE("f32_gemm: k == 0 gives beta·C") {
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    std::vector<float> c = {1, 2, 3, 4, 5, 6};
    float dummy = 0.0f;
    t.f32.f32_gemm(c.data(), 3, &dummy, 1, &dummy, 3, false, false, 0.5f, 2, 3, 0);
    CHECK(c == std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3});
    t.f32.f32_gemm(c.data(), 3, &dummy, 1, &dummy, 3, false, false, 0.0f, 2, 3, 0);
    CHECK(c == std::vector<float>(6, 0.0f));
  }
}

// ---- convolution ------------------------------------------------------------

namespace {

Conv2dShape conv(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r, int64_t s, int64_t stride,
                 int64_t pad, int64_t dil, int64_t groups) {
  Conv2dShape sh{n, c, h, w, k, r, s};
  sh.stride_h = sh.stride_w = stride;
  sh.pad_h = sh.pad_w = pad;
  sh.dil_h = sh.dil_w = dil;
  sh.groups = groups;
  return sh;
}

std::vector<Conv2dShape> conv_shapes() {
  std::vector<Conv2dShape> v = {
      conv(2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1),     // plain 3×3, pad 1
      conv(1, 4, 10, 7, 6, 3, 3, 2, 1, 1, 1),     // stride 2
      conv(1, 3, 11, 12, 4, 3, 3, 1, 2, 2, 1),    // dilation 2
      conv(2, 13, 8, 9, 13, 3, 3, 1, 1, 1, 13),   // depthwise, 13 channels
      conv(1, 13, 9, 9, 13, 3, 3, 2, 1, 1, 13),   // depthwise stride 2
      conv(2, 6, 7, 8, 4, 3, 3, 1, 1, 1, 2),      // 2 groups
      conv(2, 16, 7, 7, 24, 1, 1, 1, 0, 1, 1),    // pointwise (no im2col on fast paths)
      conv(1, 12, 5, 6, 8, 1, 1, 1, 0, 1, 4),     // grouped pointwise
      conv(1, 8, 9, 9, 5, 1, 1, 2, 0, 1, 1),      // 1×1 stride 2
      conv(2, 3, 12, 12, 8, 5, 5, 1, 2, 1, 1),    // 5×5
      conv(1, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1),  // big enough for threads and blocking
  };
  Conv2dShape asym = conv(1, 3, 10, 9, 4, 3, 1, 1, 0, 1, 1);  // R≠S, per-axis stride/pad
  asym.pad_h = 1;
  asym.stride_w = 2;
  v.push_back(asym);
  return v;
}

std::string conv_name(const Conv2dShape& s) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "n%lld c%lld %lldx%lld k%lld %lldx%lld stride %lld,%lld pad %lld,%lld dil %lld g%lld",
                (long long)s.n, (long long)s.c, (long long)s.h, (long long)s.w, (long long)s.k, (long long)s.r,
                (long long)s.s, (long long)s.stride_h, (long long)s.stride_w, (long long)s.pad_h,
                (long long)s.pad_w, (long long)s.dil_h, (long long)s.groups);
  return buf;
}

}  // namespace

TEST_CASE("f32_conv2d forward/backward: every path matches ref") {
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (const Conv2dShape& sh : conv_shapes()) {
      const int64_t xs = sh.n * sh.c * sh.h * sh.w, ws = sh.k * (sh.c / sh.groups) * sh.r * sh.s;
      const int64_t ys = sh.n * sh.k * sh.p() * sh.q();
      auto x = uniform(xs, -1.0f, 1.0f, 81), w = uniform(ws, -1.0f, 1.0f, 82);
      auto bias = uniform(sh.k, -1.0f, 1.0f, 83), dy = uniform(ys, -1.0f, 1.0f, 84);
      const std::string what = std::string(isa_name(isa)) + " (" + t.f32.conv_path + ") " + conv_name(sh);
      const double crs = double(sh.c / sh.groups * sh.r * sh.s);

      std::vector<float> yg(ys, NAN), yw(ys, NAN);
      t.f32.f32_conv2d_forward(yg.data(), x.data(), w.data(), bias.data(), sh);
      ref::f32_conv2d_forward(yw.data(), x.data(), w.data(), bias.data(), sh);
      check_close(yg, yw, 1e-6 * crs, 1e-6 * crs, what + " forward");
      t.f32.f32_conv2d_forward(yg.data(), x.data(), w.data(), nullptr, sh);
      ref::f32_conv2d_forward(yw.data(), x.data(), w.data(), nullptr, sh);
      check_close(yg, yw, 1e-6 * crs, 1e-6 * crs, what + " forward no bias");
      // Same shape again with new data and buffers: a cached primitive must
      // not keep the previous call's pointers.
      auto x2 = uniform(xs, -2.0f, 2.0f, 85);
      std::vector<float> y2g(ys, NAN), y2w(ys, NAN);
      t.f32.f32_conv2d_forward(y2g.data(), x2.data(), w.data(), bias.data(), sh);
      ref::f32_conv2d_forward(y2w.data(), x2.data(), w.data(), bias.data(), sh);
      check_close(y2g, y2w, 2e-6 * crs, 2e-6 * crs, what + " forward, second call");

      const double kg_rs = double(sh.k / sh.groups * sh.r * sh.s);
      std::vector<float> dxg(xs, NAN), dxw(xs, NAN);
      t.f32.f32_conv2d_backward_input(dxg.data(), dy.data(), w.data(), sh);
      ref::f32_conv2d_backward_input(dxw.data(), dy.data(), w.data(), sh);
      check_close(dxg, dxw, 1e-6 * kg_rs, 1e-6 * kg_rs, what + " backward input");

      const double npq = double(sh.n * sh.p() * sh.q());
      std::vector<float> dwg(ws, NAN), dww(ws, NAN), dbg(sh.k, NAN), dbw(sh.k, NAN);
      t.f32.f32_conv2d_backward_weight(dwg.data(), dbg.data(), dy.data(), x.data(), sh);
      ref::f32_conv2d_backward_weight(dww.data(), dbw.data(), dy.data(), x.data(), sh);
      check_close(dwg, dww, 1e-6 * npq, 1e-6 * npq, what + " backward weight");
      check_close(dbg, dbw, 1e-6 * npq, 1e-6 * npq, what + " backward bias");
      t.f32.f32_conv2d_backward_weight(dwg.data(), nullptr, dy.data(), x.data(), sh);
      check_close(dwg, dww, 1e-6 * npq, 1e-6 * npq, what + " backward weight, no db");

      // The im2col lowering over this path's GEMM: the conv of a build without
      // oneDNN, and the 1×1 case that skips im2col.
      const std::string low = std::string(isa_name(isa)) + " im2col+" + t.f32.gemm_path + " " + conv_name(sh);
      ref::f32_conv2d_forward_im2col(yg.data(), x.data(), w.data(), bias.data(), sh, t.f32.f32_gemm);
      ref::f32_conv2d_forward(yw.data(), x.data(), w.data(), bias.data(), sh);
      check_close(yg, yw, 1e-6 * crs, 1e-6 * crs, low + " forward");
      std::fill(dxg.begin(), dxg.end(), NAN);
      ref::f32_conv2d_backward_input_im2col(dxg.data(), dy.data(), w.data(), sh, t.f32.f32_gemm);
      check_close(dxg, dxw, 1e-6 * kg_rs, 1e-6 * kg_rs, low + " backward input");
      std::fill(dwg.begin(), dwg.end(), NAN);
      ref::f32_conv2d_backward_weight_im2col(dwg.data(), dbg.data(), dy.data(), x.data(), sh, t.f32.f32_gemm);
      check_close(dwg, dww, 1e-6 * npq, 1e-6 * npq, low + " backward weight");
      check_close(dbg, dbw, 1e-6 * npq, 1e-6 * npq, low + " backward bias");
    }
  }
}
