// Small helpers shared by the doctest suites.
#pragma once
#include <string>

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

}  // namespace lowbit::testing
