// libFuzzer target: the safetensors reader (core/safetensors.cpp: header
// length, the JSON parser, dtypes, shapes, offsets, overlap, I64/F64
// conversion) on bytes in memory. Any input must give tensors that lie inside
// the file or a lowbit::Error.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  try {
    const SafetensorsFile f = load_safetensors_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    // Every tensor's bytes come from the file: a loaded tensor never holds more
    // bytes than the input. Read them all (ASan checks the bounds).
    size_t total = 0;
    unsigned sum = 0;
    for (const auto& [name, t] : f.tensors) {
      if (shape_numel(t.shape()) != t.numel() || t.numel() < 0) __builtin_trap();
      const size_t n = (size_t)t.numel() * dtype_size(t.dtype());
      total += n;
      const unsigned char* p = nullptr;
      switch (t.dtype()) {
        case DType::f32: p = reinterpret_cast<const unsigned char*>(t.data<float>()); break;
        case DType::s32: p = reinterpret_cast<const unsigned char*>(t.data<int32_t>()); break;
        case DType::s8: p = reinterpret_cast<const unsigned char*>(t.data<int8_t>()); break;
        case DType::u8: p = reinterpret_cast<const unsigned char*>(t.data<uint8_t>()); break;
      }
      for (size_t i = 0; i < n; ++i) sum += p[i];
      if (!f.has(name)) __builtin_trap();
    }
    if (total > size) __builtin_trap();  // I64 / F64 shrink to 4 bytes; nothing grows
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}
