// Helpers shared by the kernel tests: deterministic data, every available
// path, and tolerance checks that report the first mismatch.
#pragma once
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "tests/skip.h"

namespace lowbit::kernels::testing {

inline std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa i : {Isa::ref, Isa::avx2, Isa::avxvnni, Isa::avx512vnni, Isa::neon, Isa::neondot})
    if (isa_available(i)) out.push_back(i);
  return out;
}

// The paths compared with ref: every available one but ref itself (ref
// against ref tests nothing). Built paths this CPU lacks are reported as
// skipped; no fast path at all fails the test case.
inline std::vector<Isa> fast_isas() {
  std::vector<Isa> out;
  for (Isa i : {Isa::avx2, Isa::avxvnni, Isa::avx512vnni, Isa::neon, Isa::neondot}) {
    if (isa_available(i))
      out.push_back(i);
    else if (isa_built(i))
      lowbit::testing::skip(std::string("path '") + isa_name(i) + "' is built but this CPU lacks it");
  }
  REQUIRE_MESSAGE(!out.empty(), "no fast kernel path is available here: nothing to compare with ref");
  return out;
}

// The table for one path, checked to be that path: its Isa and its int8 GEMM
// and convolution names carry the path's name ("…-avx2-…"), so a loop over
// the paths cannot silently run one path several times. (Other kernels may be
// shared: avxvnni's float and elementwise kernels are avx2's.)
inline KernelTable table_for(Isa isa) {
  KernelTable t = make_table(isa);
  const std::string tag = std::string("-") + isa_name(isa);
  INFO("path ", isa_name(isa));
  CHECK(t.isa == isa);
  for (const char* name : {t.q8.gemm_path, t.q8.conv_path}) {
    const std::string n = name;
    CHECK_MESSAGE((n.size() >= tag.size() && (n.find(tag + "-") != std::string::npos || n.compare(n.size() - tag.size(), tag.size(), tag) == 0)),
                  "kernel ", n, " is not on path ", isa_name(isa));
  }
  return t;
}

// Uniform values in [lo, hi), fixed seed per call site so failures reproduce.
inline std::vector<float> uniform(int64_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(gen);
  return v;
}

inline bool same_nan_aware(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// |got − want| ≤ rel·|want| + abs_tol for every element (NaN must match NaN).
// Returns the index of the first failure, or −1.
inline int64_t first_mismatch(const float* got, const float* want, int64_t n, double rel, double abs_tol) {
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(want[i]) || std::isnan(got[i])) {
      if (!(std::isnan(want[i]) && std::isnan(got[i]))) return i;
      continue;
    }
    if (std::isinf(want[i]) || std::isinf(got[i])) {
      if (got[i] != want[i]) return i;
      continue;
    }
    const double d = std::fabs(double(got[i]) - double(want[i]));
    if (d > rel * std::fabs(double(want[i])) + abs_tol) return i;
  }
  return -1;
}

// CHECKs all elements close, printing the first mismatch and the context.
inline void check_close(const std::vector<float>& got, const std::vector<float>& want, double rel,
                        double abs_tol, const std::string& what) {
  REQUIRE(got.size() == want.size());
  const int64_t bad = first_mismatch(got.data(), want.data(), static_cast<int64_t>(got.size()), rel, abs_tol);
  INFO(what);
  if (bad >= 0) INFO("at " << bad << ": got " << got[bad] << " want " << want[bad]);
  CHECK(bad == -1);
}

}  // namespace lowbit::kernels::testing
