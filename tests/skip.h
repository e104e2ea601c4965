// Reporting what a test could not run. tests/main.cpp counts it: the suite's
// summary line reads "N passed, M failed, K skipped", and a test case that
// made no assertion at all counts as skipped, never as passed.
#pragma once
#include <string>

namespace lowbit::testing {

// Records one skipped check (e.g. a kernel path this CPU lacks) and prints why.
void skip(const std::string& what);

}  // namespace lowbit::testing
