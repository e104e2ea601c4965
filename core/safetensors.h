// safetensors: the checkpoint format of lowbit (and of Hugging Face / PyTorch
// users), read and written without any dependency.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {"k": "v", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// then the raw little-endian tensor bytes; offsets are relative to the byte
// after the header.
//
// dtypes: F32, I32, I8, U8 load as f32, s32, s8, u8. I64 loads as s32 (an
// error if a value does not fit; PyTorch's BatchNorm `num_batches_tracked` is
// int64) and F64 loads as f32. Anything else is rejected. Quantization
// parameters of s8/u8 tensors are not stored by this layer (the quant code
// saves scales and zero-points as tensors of their own).
//
// Every failure throws lowbit::Error with one line that names the file and
// the reason.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace lowbit {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in header order
  std::map<std::string, std::string> metadata;
  std::string path;

  // Throws Error naming the file and the missing key.
  const Tensor& get(const std::string& name) const;
  bool has(const std::string& name) const;
};

SafetensorsFile load_safetensors(const std::string& path);
// The same from a file's bytes held in memory (`name` stands for the path in
// errors): what the fuzz targets call.
SafetensorsFile load_safetensors_bytes(const std::string& bytes, const std::string& name);

// Writes the tensors in the given order (each made contiguous), the header
// padded with spaces to a multiple of 8 bytes as the reference implementation
// does. Atomic: the bytes go to "<path>.tmp.<pid>", are fsync'ed, then renamed
// over `path`; on any failure the temporary file is removed, `path` is left
// untouched, and Error is thrown.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace lowbit
