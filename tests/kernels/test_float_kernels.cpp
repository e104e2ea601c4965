// Float kernel tests: the reference kernels against hand-computed values,
// and every available path against the reference.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"

using namespace lowbit::kernels;

TEST_CASE("table: ref path is always available") {
  CHECK(isa_available(Isa::ref));
  KernelTable t = make_table(Isa::ref);
  CHECK(std::string(t.f32.gemm_path) == "ref");
  CHECK_THROWS_AS(isa_from_name("bogus"), std::runtime_error);
}

TEST_CASE("ref gemm: 2x2 by hand") {
  const float a[] = {1, 2, 3, 4}, b[] = {5, 6, 7, 8};
  float c[4];
  ref::f32_gemm(c, 2, a, 2, b, 2, false, false, 0.0f, 2, 2, 2);
  CHECK(c[0] == 19);
  CHECK(c[1] == 22);
  CHECK(c[2] == 43);
  CHECK(c[3] == 50);
}
