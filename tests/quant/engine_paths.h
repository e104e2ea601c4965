// The int8 engine on every kernel path this build and CPU have, against an
// expected output (the frozen simulation, or a dynamic model's module): bit
// for bit. A built path the CPU lacks is recorded as skipped.
#pragma once
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "quant/engine/runner.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/skip.h"

namespace lowbit::testing {

inline void check_engine_on_every_path(const quant::engine::Model& m, const Tensor& x, const std::vector<float>& want,
                                       const std::string& what) {
  for (kernels::Isa isa : {kernels::Isa::ref, kernels::Isa::avx2, kernels::Isa::avxvnni, kernels::Isa::avx512vnni,
                           kernels::Isa::neon, kernels::Isa::neondot}) {
    if (!kernels::isa_available(isa)) {
      if (kernels::isa_built(isa)) skip(what + ": engine on '" + kernels::isa_name(isa) + "': this CPU lacks it");
      continue;
    }
    const kernels::KernelTable table = kernels::testing::table_for(isa);
    quant::engine::Runner r(m, &table);
    const std::vector<float> got = r.run(x).to_vector();
    REQUIRE(got.size() == want.size());
    size_t diff = 0;
    for (size_t i = 0; i < got.size(); ++i) diff += got[i] != want[i];
    INFO(what, " on ", kernels::isa_name(isa), ": first outputs engine ", got[0], " expected ", want[0]);
    CHECK(diff == 0);
  }
}

}  // namespace lowbit::testing
