// lowbit's JSON, through one library, nlohmann/json (Debian's
// nlohmann-json3-dev): the safetensors header (core/safetensors.cpp), the
// Trainer's metrics lines (nn/trainer.cpp), the benchmarks' and the tool's
// --json lines, and every line read back. Objects keep their keys in
// insertion order (ordered_json).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace lowbit {

using Json = nlohmann::ordered_json;

// One line as the tool prints JSON, {"key": value, "key": [1, 2]}: the
// library escapes the strings; ", " and ": " between items; a floating
// number prints with the decimals of its key's kind (json.cpp: accuracies,
// losses, probabilities and epoch progress 6, MB and ms 4, dB 2; a learning
// rate to 8 significant digits), others in the shortest form that reads back
// exactly; inf and NaN as null.
std::string json_line(const Json& j);
// A number field of one JSON object line; NaN if the line is not a JSON
// object or `key` is not a number in it.
double json_number(const std::string& line, const std::string& key);

}  // namespace lowbit
