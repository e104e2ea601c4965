// Small string helpers shared by the layers above core.
#pragma once
#include <string>
#include <vector>

namespace lowbit {

// Every item between separators, empty ones included: "a,,b" → {"a", "", "b"},
// "" → {""}. Callers refuse empty items with their own message.
inline std::vector<std::string> split_all(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

}  // namespace lowbit
