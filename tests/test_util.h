// Small helpers shared by the doctest suites.
#pragma once
#include <sstream>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/error.h"
#include "core/generator.h"

namespace lowbit::testing {

// The message of the lowbit::Error that f() throws, or "" if it throws none.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// "a,b,c" → {"a", "b", "c"} (fixture metadata lists).
inline std::vector<std::string> split(const std::string& s, char sep = ',') {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

// Four classes of 1×4×4 images: class c is +4 at pixel c plus N(0, 1) noise
// from its own generator (the default generator stays the model's and
// Dropout's). `batches` batches of 16.
inline BatchList Blobs(uint64_t seed, int64_t batches = 8) {
  Generator g(seed);
  std::vector<Batch> out;
  for (int64_t k = 0; k < batches; ++k) {
    Tensor x = randn({16, 1, 4, 4}, &g);
    std::vector<int32_t> y(16);
    for (int64_t i = 0; i < 16; ++i) {
      y[(size_t)i] = (int32_t)((i + k) % 4);
      x.data<float>()[i * 16 + y[(size_t)i]] += 4.0f;
    }
    out.push_back({x, Tensor::from_vector_s32(y, {16}), {}});
  }
  return BatchList(std::move(out), 4);
}

}  // namespace lowbit::testing
