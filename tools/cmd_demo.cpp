#include "tools/cli.h"

namespace lowbit::cli {
int cmd_demo(const Args&) { throw UsageError("demo: not built yet"); }
}  // namespace lowbit::cli
