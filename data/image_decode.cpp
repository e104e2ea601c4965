// Image decoding with stb_image (the one translation unit that compiles its
// implementation, with internal linkage so it never clashes with another
// copy of stb in the same program).
#include <climits>
#include <cstring>

#include "core/error.h"
#include "data/formats.h"

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_NO_STDIO  // lowbit reads files itself, so every error names the file
// Formats an image folder has no use for stay out of the attack surface.
#define STBI_NO_PSD
#define STBI_NO_HDR
#define STBI_NO_PIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#if defined(__clang__)
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace lowbit::data {

namespace {

// stb_image 2.27 (Debian 12's libstb) builds a JPEG Huffman table from a DHT
// segment without checking that its 16 code counts sum to at most 256, and
// writes past the table when they do (stbi__build_huffman; fixed upstream in
// 2.28). This walks the markers exactly where stb would read a DHT — header
// segments by their length, entropy-coded data up to the next marker that is
// not a stuffed 0xFF00 or a restart — and refuses such a table before stb
// sees it. It runs before stbi_info too: stb parses DHT segments there.
const char* bad_jpeg_huffman_table(const uint8_t* b, size_t n) {
  size_t p = 0;
  while (p < n && b[p] == 0xFF) ++p;  // stb's marker reader skips fill bytes
  if (p == 0 || p >= n || b[p] != 0xD8) return nullptr;  // not JPEG: stb will not run its JPEG decoder
  ++p;
  auto at = [&](size_t i) -> unsigned { return i < n ? b[i] : 0u; };  // stb reads 0 past the end
  while (p < n) {
    if (b[p] != 0xFF) {  // stray byte between segments: stb skips it too
      ++p;
      continue;
    }
    while (p < n && b[p] == 0xFF) ++p;
    if (p >= n) break;
    const unsigned m = b[p++];
    if (m == 0xD9) break;                                   // EOI
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // no length field
    const size_t len = (at(p) << 8) | at(p + 1);
    if (m == 0xC4) {
      // DHT: tables of (class/id byte, 16 counts, sum(counts) symbols).
      size_t q = p + 2;
      long left = (long)len - 2;
      while (left > 0 && q < n) {
        unsigned total = 0;
        for (int i = 1; i <= 16; ++i) total += at(q + i);
        if (total > 256) return "JPEG Huffman table with more than 256 codes";
        q += 17 + total;
        left -= 17 + (long)total;
      }
    }
    p += len;
    if (m == 0xDA) {  // SOS: entropy-coded data runs to the next real marker
      while (p + 1 < n && !(b[p] == 0xFF && b[p + 1] != 0x00 && (b[p + 1] < 0xD0 || b[p + 1] > 0xD7))) ++p;
    }
  }
  return nullptr;
}

// stb_image 2.27 reads the width, height and maximum value of a PGM/PPM
// header with int arithmetic and no overflow check (stbi__pnm_getinteger:
// signed overflow, undefined behaviour, on a number of 10 or more digits).
// This reads the header as stb does and refuses such a number first.
const char* bad_pnm_header(const uint8_t* b, size_t n) {
  if (n < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return nullptr;
  size_t p = 2;
  auto space = [](uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  for (int field = 0; field < 3; ++field) {
    for (;;) {  // whitespace and '#' comments, as stbi__pnm_skip_whitespace
      while (p < n && space(b[p])) ++p;
      if (p >= n || b[p] != '#') break;
      while (p < n && b[p] != '\n' && b[p] != '\r') ++p;
    }
    size_t digits = 0;
    while (p < n && b[p] >= '0' && b[p] <= '9') ++p, ++digits;
    if (digits > 9) return "PGM/PPM header number with more than 9 digits";
  }
  return nullptr;
}

}  // namespace

Tensor decode_image(const uint8_t* bytes, size_t size, const std::string& name, int channels, int64_t max_pixels) {
  LOWBIT_CHECK(channels == 1 || channels == 3, name, ": decode_image: channels must be 1 or 3, got ", channels);
  if (size == 0) fail(name, ": empty file (0 bytes), not an image");
  if (size > (size_t)INT_MAX) fail(name, ": ", size, " bytes is too large for the image decoder");
  if (const char* why = bad_jpeg_huffman_table(bytes, size)) fail(name, ": cannot decode image (", why, ")");
  if (const char* why = bad_pnm_header(bytes, size)) fail(name, ": cannot decode image (", why, ")");
  int w = 0, h = 0, comp = 0;
  // Dimensions first, so a header claiming a gigantic image is refused before
  // the decoder allocates for it.
  if (!stbi_info_from_memory(bytes, (int)size, &w, &h, &comp))
    fail(name, ": cannot decode image (", stbi_failure_reason(), ")");
  if (w <= 0 || h <= 0) fail(name, ": zero-size image (", w, "x", h, ")");
  if ((int64_t)w * h > max_pixels)
    fail(name, ": image of ", w, "x", h, " pixels exceeds the limit of ", max_pixels, " pixels");
  unsigned char* px = stbi_load_from_memory(bytes, (int)size, &w, &h, &comp, 0);
  if (!px) fail(name, ": cannot decode image (", stbi_failure_reason(), ")");
  if (w <= 0 || h <= 0 || comp < 1 || comp > 4 || (int64_t)w * h > max_pixels) {
    stbi_image_free(px);
    fail(name, ": decoder returned an inconsistent image (", w, "x", h, ", ", comp, " channels)");
  }
  const int64_t hw = (int64_t)w * h;
  Tensor t = Tensor::empty({channels, h, w}, DType::u8);
  uint8_t* out = t.data<uint8_t>();
  // As PIL's convert(): "L" from RGB(A) is ITU-R 601-2 luma, rounded
  // (L = (19595 R + 38470 G + 7471 B + 2^15) >> 16); alpha is dropped; a
  // gray source gives R = G = B.
  for (int64_t p = 0; p < hw; ++p) {
    const uint8_t* s = px + p * comp;
    if (comp <= 2) {
      for (int c = 0; c < channels; ++c) out[c * hw + p] = s[0];
    } else if (channels == 3) {
      out[p] = s[0];
      out[hw + p] = s[1];
      out[2 * hw + p] = s[2];
    } else {
      out[p] = (uint8_t)((19595u * s[0] + 38470u * s[1] + 7471u * s[2] + 0x8000u) >> 16);
    }
  }
  stbi_image_free(px);
  return t;
}

int image_channels(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size == 0) fail(name, ": empty file (0 bytes), not an image");
  if (size > (size_t)INT_MAX) fail(name, ": ", size, " bytes is too large for the image decoder");
  for (const char* why : {bad_jpeg_huffman_table(bytes, size), bad_pnm_header(bytes, size)})
    if (why) fail(name, ": cannot decode image (", why, ")");
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(bytes, (int)size, &w, &h, &comp))
    fail(name, ": cannot decode image (", stbi_failure_reason(), ")");
  return comp <= 2 ? 1 : 3;
}

}  // namespace lowbit::data
