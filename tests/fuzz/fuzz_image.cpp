// libFuzzer target: the image decode path of image folders (stb_image behind
// decode_image, with the dimension check before decoding). The input size's
// parity picks grayscale or RGB. Any input must give a consistent C×H×W u8
// tensor or a lowbit::Error.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "data/formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const int channels = size % 2 ? 1 : 3;
  try {
    // 4 Mpixel cap: far above any fuzz input, far below the fuzzer's memory limit.
    const Tensor t = data::decode_image(data, size, "fuzz.img", channels, int64_t(1) << 22);
    if (t.dim() != 3 || t.size(0) != channels || t.size(1) <= 0 || t.size(2) <= 0) __builtin_trap();
    const uint8_t* p = t.data<uint8_t>();
    unsigned sum = 0;
    for (int64_t i = 0; i < t.numel(); ++i) sum += p[i];
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}
