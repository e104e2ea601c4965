// libFuzzer target: the IDX path (gzip detection/inflate, then the IDX
// header and size checks) exactly as load_idx runs it. Any input must give
// either an array that lies inside the buffer or a lowbit::Error.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "data/formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit::data;
  try {
    // The output cap keeps a gzip bomb within the fuzzer's memory limit.
    const std::vector<uint8_t> plain = gunzip_if_gzip(std::vector<uint8_t>(data, data + size), "fuzz.idx", 64 << 20);
    const IdxArray a = parse_idx(plain, "fuzz.idx");
    size_t n = 1;
    for (int64_t d : a.dims) n *= (size_t)d;
    // parse_idx promises exactly n bytes after the header: read them all (ASan checks the bounds).
    if (a.data_offset + n != plain.size()) __builtin_trap();
    unsigned sum = 0;
    for (size_t i = 0; i < n; ++i) sum += plain[a.data_offset + i];
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const lowbit::Error&) {
  }
  return 0;
}
