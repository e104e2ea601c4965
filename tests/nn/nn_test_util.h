// Helpers shared by the nn tests: the PyTorch fixtures of whole models
// (tests/fixtures/parity_<model>.safetensors) and of optimizers, schedules,
// clipping and metrics (tests/fixtures/training.safetensors), all written by
// `tools/make_fixtures.py --models` (layout in that script); the
// relative-error metric; temporary directories.
#pragma once
#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/safetensors.h"

#ifndef LOWBIT_FIXTURES_DIR
#error "LOWBIT_FIXTURES_DIR must be defined by the build (tests/meson.build)"
#endif

namespace nn_test {

// tests/fixtures/NAME, loaded once.
inline const lowbit::SafetensorsFile& fixture(const std::string& name) {
  static std::map<std::string, lowbit::SafetensorsFile> files;
  if (auto it = files.find(name); it != files.end()) return it->second;
  std::string error;
  try {
    return files.emplace(name, lowbit::load_safetensors(LOWBIT_FIXTURES_DIR "/" + name)).first->second;
  } catch (const std::exception& e) {
    error = e.what();
  }
  FAIL("cannot load the fixture ", name, ": ", error, " (regenerate with /usr/bin/python3 tools/make_fixtures.py --models)");
  std::abort();  // not reached: FAIL throws
}
// Optimizers, schedules, clipping and metrics.
inline const lowbit::SafetensorsFile& training_fixture() { return fixture("training.safetensors"); }

inline std::string meta(const lowbit::SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  REQUIRE_MESSAGE(it != f.metadata.end(), "fixture: no metadata '", key, "'");
  return it->second;
}
inline std::string meta(const std::string& key) { return meta(training_fixture(), key); }
inline double meta_double(const std::string& key) { return std::stod(meta(key)); }

inline std::vector<std::string> split(const std::string& s, char sep = ',') {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

// The metric of every float comparison against PyTorch:
//   rel_err = max_i |ours_i − ref_i| / max(max_i |ref_i|, 1e-12)
// (per tensor, normalised by the reference's largest magnitude); NaN anywhere → inf.
inline double rel_err(const lowbit::Tensor& ours, const lowbit::Tensor& ref) {
  REQUIRE_MESSAGE(ours.shape() == ref.shape(), "shape ", lowbit::shape_str(ours.shape()), " vs reference ",
                  lowbit::shape_str(ref.shape()));
  std::vector<float> a = ours.to_vector(), b = ref.to_vector();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return INFINITY;
    diff = std::max(diff, std::fabs((double)a[i] - (double)b[i]));
    scale = std::max(scale, std::fabs((double)b[i]));
  }
  return diff / std::max(scale, 1e-12);
}

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/lowbit_nn_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE_MESSAGE(::mkdtemp(buf.data()) != nullptr, "mkdtemp failed: ", std::strerror(errno));
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const lowbit::Error& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace nn_test
