// doctest main for every lowbit test executable. Besides doctest's own
// summary it prints one machine-readable line that tools/run sums:
//   lowbit-tests: <name> N passed, M failed, K skipped
// N and M count test cases (a case fails if any of its checks fails); K
// counts the checks reported with testing::skip() plus the cases that made
// no assertion at all, which therefore never count as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels/kernels.h"
#include "tests/skip.h"

namespace {
int g_passed = 0, g_failed = 0, g_skipped = 0, g_empty = 0;

struct CountingListener : doctest::IReporter {
  explicit CountingListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& st) override {
    g_failed = (int)st.numTestCasesFailed;
    g_passed = (int)st.numTestCasesPassingFilters - g_failed - g_empty;
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& st) override {
    if (st.numAssertsCurrentTest == 0 && st.testCaseSuccess) ++g_empty;
  }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
}  // namespace

REGISTER_LISTENER("lowbit_counter", 1, CountingListener);

void lowbit::testing::skip(const std::string& what) {
  ++g_skipped;
  MESSAGE("SKIPPED: " << what);
}

// In every suite: the process's kernel table is the path LOWBIT_ISA names (the
// best available one without it), so tools/run's LOWBIT_ISA=ref rerun really
// runs ref and not the native path again.
TEST_CASE("the kernel table is the path LOWBIT_ISA names") {
  using namespace lowbit::kernels;
  const char* env = std::getenv("LOWBIT_ISA");
  const Isa want = env && *env ? isa_from_name(env) : best_isa();
  const KernelTable& t = table();
  INFO("LOWBIT_ISA=", env ? env : "(unset)", ", table ", isa_name(t.isa), ", int8 gemm ", t.q8.gemm_path);
  CHECK(t.isa == want);
  const std::string gemm = t.q8.gemm_path, tag = std::string("-") + isa_name(want);
  CHECK((gemm.find(tag + "-") != std::string::npos || gemm.compare(gemm.size() - tag.size(), tag.size(), tag) == 0));
}

int main(int argc, char** argv) {
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  int rc = ctx.run();
  if (ctx.shouldExit()) return rc;
  std::string name = argc > 0 ? argv[0] : "tests";
  auto slash = name.find_last_of('/');
  if (slash != std::string::npos) name = name.substr(slash + 1);
  std::printf("lowbit-tests: %s %d passed, %d failed, %d skipped\n", name.c_str(), g_passed, g_failed,
              g_skipped + g_empty);
  return rc;
}
