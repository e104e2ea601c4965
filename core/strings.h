// Small string helpers shared by the layers above core.
#pragma once
#include <algorithm>
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

// Text from a file (a tensor name, a dtype, a class name) made safe to print
// on one terminal line: control bytes (escape sequences, newlines) as \xHH,
// and cut after `max` bytes with the length said ("…(20971520 bytes)").
inline std::string printable(const std::string& s, size_t max = 120) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  const size_t n = std::min(s.size(), max);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
    else out += (char)c;
  }
  if (s.size() > max) out += "…(" + std::to_string(s.size()) + " bytes)";
  return out;
}

}  // namespace lowbit
