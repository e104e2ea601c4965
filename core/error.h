// One exception type for every user-reachable failure. Messages are one line
// and name the thing: the file, the layer, the op and both shapes.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace lowbit {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// LOWBIT_CHECK(cond, "conv2d: input has ", c, " channels, weight expects ", k);
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}

}  // namespace lowbit

#define LOWBIT_CHECK(cond, ...)                  \
  do {                                           \
    if (!(cond)) ::lowbit::fail(__VA_ARGS__);    \
  } while (0)
