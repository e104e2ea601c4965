// Peak probes (PeakProbes in kernels.h) on every available path: they do the
// work they count. Speed itself is measured by `lowbit bench peak`, never here.
#include <doctest/doctest.h>

#include <cmath>

#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

using namespace lowbit::kernels;
using namespace lowbit::kernels::testing;

TEST_CASE("peak probes: operation count is linear in iterations, results are live") {
  for (Isa isa : available_isas()) {
    const KernelTable t = table_for(isa);
    INFO("path " << isa_name(isa) << " (" << t.peak.name << ")");
    REQUIRE((t.peak.f32_fma != nullptr && t.peak.s8_dot != nullptr));

    float fs0 = 0, fs1 = 0;
    const int64_t f1 = t.peak.f32_fma(&fs0, 1), f100 = t.peak.f32_fma(&fs1, 100);
    CHECK(f1 > 0);
    CHECK(f1 % 2 == 0);  // multiply-adds count 2 each
    CHECK(f100 == 100 * f1);
    CHECK(std::isfinite(fs0));
    CHECK(std::isfinite(fs1));
    CHECK(fs1 != fs0);  // the chains moved (toward their fixed point 1 per lane)
    CHECK(t.peak.f32_fma(&fs0, 0) == 0);

    int32_t is0 = 0, is1 = 0, is2 = 0;
    const int64_t s1 = t.peak.s8_dot(&is1, 1), s2 = t.peak.s8_dot(&is2, 2);
    CHECK(s1 > 0);
    CHECK(s2 == 2 * s1);
    CHECK(t.peak.s8_dot(&is0, 0) == 0);
    // Every iteration adds the same nonzero sum of products: the result is linear in iters.
    CHECK(is1 != is0);
    CHECK(static_cast<uint32_t>(is2) - static_cast<uint32_t>(is1) ==
          static_cast<uint32_t>(is1) - static_cast<uint32_t>(is0));
  }
}

TEST_CASE("avx512vnni path takes the avx2 float kernels") {
  if (!isa_available(Isa::avx512vnni) || !isa_available(Isa::avx2)) return;
  const KernelTable v = table_for(Isa::avx512vnni), a = table_for(Isa::avx2);
  // (bools: doctest cannot print function pointers)
  CHECK((v.f32.f32_gemm == a.f32.f32_gemm));
  CHECK((v.f32.f32_unary == a.f32.f32_unary));
  CHECK((v.f32.f32_conv2d_forward == a.f32.f32_conv2d_forward));
  CHECK((v.peak.s8_dot != a.peak.s8_dot));  // but its own int8 peak probe
}
