// Fake quantization and min/max kernels (quant/'s simulation): every fast
// path equals ref bit for bit, ties and NaN included; ref is checked against
// quant_math.h directly.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>

#include "kernels/kernels.h"
#include "kernels/quant_math.h"
#include "tests/kernels/kernel_test_util.h"

using namespace lowbit::kernels;
using namespace lowbit::kernels::testing;

namespace {
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("fake_quantize_f32: ref is quant_math's quantize then dequantize, with PyTorch's mask") {
  const KernelTable r = table_for(Isa::ref);
  const std::vector<float> x{-3.0f, -0.125f, 0.125f, 0.375f, 1.0f, 100.0f, std::nanf("")};
  std::vector<float> y(x.size());
  std::vector<uint8_t> m(x.size());
  const float scale = 0.25f;
  const int32_t zp = 2;
  r.q8.fake_quantize_f32(y.data(), m.data(), x.data(), &scale, &zp, 0, 15, 1, 1, (int64_t)x.size());
  // −3/0.25 + 2 = −10 → clamped to 0 → (0−2)·0.25; ties −0.5 → −0 and 0.5 → 0, 1.5 → 2
  const std::vector<float> want{-0.5f, 0.0f, 0.0f, 0.5f, 1.0f, 3.25f, -0.5f};
  CHECK(y == want);
  CHECK(m == std::vector<uint8_t>{0, 1, 1, 1, 1, 0, 0});
}

TEST_CASE("fake_quantize_f32 and f32_minmax: every path matches ref exactly") {
  const KernelTable r = table_for(Isa::ref);
  for (Isa isa : fast_isas()) {
    INFO(isa_name(isa));
    const KernelTable t = table_for(isa);
    REQUIRE((t.q8.fake_quantize_f32 != nullptr));
    REQUIRE((t.q8.f32_minmax != nullptr));
    struct Shape {
      int64_t outer, channels, inner;
    };
    for (const Shape& s : {Shape{1, 1, 1}, Shape{1, 1, 7}, Shape{1, 1, 40000}, Shape{3, 5, 13}, Shape{2, 13, 1},
                           Shape{4, 3, 16391}}) {
      const int64_t n = s.outer * s.channels * s.inner;
      CAPTURE(n);
      auto x = uniform(n, -3.0f, 3.0f, (uint32_t)n);
      // exact ties, the clamp limits, NaN and ±Inf
      for (int64_t i = 0; i < n; i += 11) x[(size_t)i] = 0.125f * (float)((i % 64) - 32) + 0.0625f;
      if (n > 5) {
        x[1] = std::nanf("");
        x[2] = std::numeric_limits<float>::infinity();
        x[3] = -std::numeric_limits<float>::infinity();
        x[4] = 1e30f;
      }
      std::vector<float> scale((size_t)s.channels), y(n), y_ref(n);
      std::vector<int32_t> zp((size_t)s.channels);
      for (int64_t c = 0; c < s.channels; ++c) scale[(size_t)c] = 0.125f * (float)(c + 1), zp[(size_t)c] = (int32_t)(c * 37 % 256);
      std::vector<uint8_t> m(n), m_ref(n);
      for (auto [qmin, qmax] : {std::pair{0, 255}, std::pair{-128, 127}, std::pair{-2, 1}, std::pair{0, 15}}) {
        t.q8.fake_quantize_f32(y.data(), m.data(), x.data(), scale.data(), zp.data(), qmin, qmax, s.outer, s.channels,
                               s.inner);
        r.q8.fake_quantize_f32(y_ref.data(), m_ref.data(), x.data(), scale.data(), zp.data(), qmin, qmax, s.outer,
                               s.channels, s.inner);
        CHECK(same_bits(y, y_ref));
        CHECK(m == m_ref);
        t.q8.fake_quantize_f32(y.data(), nullptr, x.data(), scale.data(), zp.data(), qmin, qmax, s.outer, s.channels,
                               s.inner);
        CHECK(same_bits(y, y_ref));
      }
      float lo, hi, lo_r, hi_r;
      auto finite_x = uniform(n, -5.0f, 7.0f, (uint32_t)n + 1);
      CHECK(t.q8.f32_minmax(&lo, &hi, finite_x.data(), n) == r.q8.f32_minmax(&lo_r, &hi_r, finite_x.data(), n));
      CHECK(lo == lo_r);
      CHECK(hi == hi_r);
      if (n > 5) {
        CHECK_FALSE(t.q8.f32_minmax(&lo, &hi, x.data(), n));
        CHECK_FALSE(r.q8.f32_minmax(&lo, &hi, x.data(), n));
        finite_x[(size_t)n - 1] = std::nanf("");  // in the scalar tail or the last vector
        CHECK_FALSE(t.q8.f32_minmax(&lo, &hi, finite_x.data(), n));
      }
    }
  }
}

TEST_CASE("lsq_backward_f32: dx exact on every path, step and offset sums within 1e-5") {
  const KernelTable r = table_for(Isa::ref);
  // ref against the formula: one inside, one below, one above
  {
    const float x[3] = {0.3f, -5.0f, 9.0f}, g[3] = {2.0f, 3.0f, 5.0f};
    float dx[3];
    double ds, db;
    r.q8.lsq_backward_f32(dx, &ds, &db, g, x, 1.0f, 0.0f, 0, -2, 1, 3);
    CHECK(dx[0] == 2.0f);
    CHECK(dx[1] == 0.0f);
    CHECK(dx[2] == 0.0f);
    CHECK(ds == doctest::Approx(2.0 * (0.0 - 0.3) + 3.0 * -2 + 5.0 * 1).epsilon(1e-7));
    CHECK(db == 8.0);
  }
  for (Isa isa : fast_isas()) {
    INFO(isa_name(isa));
    const KernelTable t = table_for(isa);
    REQUIRE((t.q8.lsq_backward_f32 != nullptr));
    for (int64_t n : {1, 7, 8, 9, 4095, 4096, 50001}) {
      CAPTURE(n);
      auto x = uniform(n, -2.0f, 2.0f, (uint32_t)n), g = uniform(n, -1.0f, 1.0f, (uint32_t)n + 7);
      for (int64_t i = 0; i < n; i += 13) x[(size_t)i] = 0.25f * (float)((i % 32) - 16) + 0.125f;  // ties
      std::vector<float> dx(n), dx_ref(n);
      for (auto [off, zp, qmin, qmax] : {std::tuple{0.0f, 0, -8, 7}, std::tuple{-0.7f, 0, 0, 15}, std::tuple{0.1f, 3, 0, 3}}) {
        double ds, db, ds_r, db_r;
        t.q8.lsq_backward_f32(dx.data(), &ds, &db, g.data(), x.data(), 1.0f / 0.25f, off, zp, qmin, qmax, n);
        r.q8.lsq_backward_f32(dx_ref.data(), &ds_r, &db_r, g.data(), x.data(), 1.0f / 0.25f, off, zp, qmin, qmax, n);
        CHECK(same_bits(dx, dx_ref));
        double gabs = 0;
        for (float v : g) gabs += std::fabs(v);
        CHECK(std::fabs(ds - ds_r) <= 1e-5 * gabs * (qmax - qmin));
        CHECK(std::fabs(db - db_r) <= 1e-5 * gabs);
      }
    }
  }
}
