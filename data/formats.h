// The byte-level parsers behind the datasets, on memory buffers so that the
// libFuzzer targets in tests/fuzz/ drive exactly the code the datasets run.
// `name` is the file name put in front of every error message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace lowbit::data {

// Whole file into memory. Error names the file: missing, a directory, unreadable.
std::vector<uint8_t> read_file(const std::string& path);

// If `bytes` is gzip (1f 8b), the inflated content (concatenated members
// allowed, as gzip -d does); otherwise `bytes` unchanged. Corrupt or truncated
// streams, trailing garbage, or more than `max_output` bytes are errors.
std::vector<uint8_t> gunzip_if_gzip(std::vector<uint8_t> bytes, const std::string& name,
                                    size_t max_output = SIZE_MAX);

// An unsigned-byte IDX array: magic 00 00 08 <ndim>, ndim big-endian u32
// sizes, then exactly prod(sizes) bytes. Other element types, a short header,
// a header that claims more data than present, and trailing bytes are errors.
struct IdxArray {
  std::vector<int64_t> dims;
  size_t data_offset = 0;  // into the buffer passed to parse_idx
};
IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& name);

// CIFAR binary records: `label_bytes` (1 for CIFAR-10, 2 for CIFAR-100)
// followed by 3×32×32 pixels, planar RGB. Appends the pixels to `pixels` and
// label byte `label_index` to `labels`; a label >= num_classes, an empty file
// or a size that is not a whole number of records is an error.
void parse_cifar(const std::vector<uint8_t>& bytes, const std::string& name, int label_bytes, int label_index,
                 int num_classes, std::vector<uint8_t>& pixels, std::vector<uint8_t>& labels);

// Decodes PNG/JPEG/BMP/GIF (first frame)/TGA/PNM with stb_image into a u8
// C×H×W tensor, C = 1 (grayscale) or 3 (RGB). An empty buffer, undecodable
// data, or an image of more than `max_pixels` pixels is an error.
Tensor decode_image(const uint8_t* bytes, size_t size, const std::string& name, int channels,
                    int64_t max_pixels = int64_t(1) << 28);
// The channels an image file stores, as decode_image would give them without
// conversion: 1 (gray, gray + alpha) or 3 (RGB, RGBA). Error if undecodable.
int image_channels(const uint8_t* bytes, size_t size, const std::string& name);

}  // namespace lowbit::data
