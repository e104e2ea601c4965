// `lowbit bench ...` (placeholder until the benchmark pieces land).
#include "tools/cli.h"

namespace lowbit::cli {
int cmd_bench(const Args&) { throw UsageError("bench: not built yet"); }
}  // namespace lowbit::cli
