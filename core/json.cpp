#include "core/json.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace lowbit {

namespace {

// Decimals of a number by the kind its key names, so that every --json line
// keeps one format per kind (accuracies and losses "0.721200"): what is not
// listed prints in the shortest form that reads back exactly (0.9, 4).
int decimals_of(const std::string& key) {
  auto ends = [&](const char* suffix) {
    const size_t n = std::strlen(suffix);
    return key.size() >= n && key.compare(key.size() - n, n, suffix) == 0;
  };
  for (const char* k : {"accuracy", "top5", "loss", "top1_agreement", "within_one_step", "bit_identical", "probability",
                        "epoch_progress"})
    if (key == k || ends((std::string("_") + k).c_str())) return 6;
  if (key == "ms" || ends("_mb") || ends("_ms") || key.find("_ms_") != std::string::npos) return 4;
  if (ends("_db") || key == "train_seconds") return 2;
  if (key == "max_diff_steps") return 3;
  if (key == "throughput" || ends("_per_s") || ends("gflops") || ends("_gops") || key == "gmacs") return 1;
  if (key == "speedup" || key == "overhead" || key == "teacher_share" || key == "peak_fraction") return 3;
  return -1;
}

std::string scalar(const Json& v, const std::string& key) {
  if (v.is_number_float()) {
    const double x = v.get<double>();
    const int d = decimals_of(key);
    if (!std::isfinite(x)) return "null";
    if (d >= 0 && std::fabs(x) < 1e15) {
      char b[64];
      std::snprintf(b, sizeof b, "%.*f", d, x);
      return b;
    }
    if (key == "lr") {  // a schedule's value: 8 significant digits
      char b[64];
      std::snprintf(b, sizeof b, "%.8g", x);
      return b;
    }
  }
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string line(const Json& j, const std::string& key) {
  if (j.is_object()) {
    std::string s = "{";
    for (auto it = j.begin(); it != j.end(); ++it)
      s += (it == j.begin() ? "" : ", ") + scalar(Json(it.key()), "") + ": " + line(it.value(), it.key());
    return s + "}";
  }
  if (j.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + line(j[i], key);
    return s + "]";
  }
  return scalar(j, key);
}

}  // namespace

std::string json_line(const Json& j) { return line(j, ""); }

double json_number(const std::string& text, const std::string& key) {
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::numeric_limits<double>::quiet_NaN();
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace lowbit
