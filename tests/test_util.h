// Small helpers shared by the doctest suites.
#pragma once
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

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

}  // namespace lowbit::testing
