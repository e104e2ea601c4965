// libFuzzer target: the CIFAR binary record parser. The first input byte
// picks the layout (CIFAR-10, CIFAR-100 coarse, CIFAR-100 fine); the rest is
// the file. Any input must give whole records or a lowbit::Error.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "data/formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit::data;
  if (size == 0) return 0;
  const int layout = data[0] % 3;
  const int label_bytes = layout == 0 ? 1 : 2, label_index = layout == 2 ? 1 : 0;
  const int classes = layout == 0 ? 10 : layout == 1 ? 20 : 100;
  std::vector<uint8_t> pixels, labels;
  try {
    parse_cifar(std::vector<uint8_t>(data + 1, data + size), "fuzz.bin", label_bytes, label_index, classes, pixels,
                labels);
    if (pixels.size() != labels.size() * 3072) __builtin_trap();
    for (uint8_t l : labels)
      if (l >= classes) __builtin_trap();
  } catch (const lowbit::Error&) {
    if (!pixels.empty() || !labels.empty()) __builtin_trap();  // nothing appended on failure
  }
  return 0;
}
