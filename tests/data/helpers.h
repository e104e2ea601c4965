// Shared by the data tests: a temporary directory, file writers, gzip, and
// a check that a call fails with a message naming the file and the reason.
#pragma once
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace lowbit_test {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/lowbit_data_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE_MESSAGE(::mkdtemp(buf.data()) != nullptr, "mkdtemp failed: ", std::strerror(errno));
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
  REQUIRE_MESSAGE(f.good(), "cannot write ", path);
}

inline void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// gzip member (RFC 1952) of `data`, as `gzip` writes it.
inline std::vector<uint8_t> gzip(const std::vector<uint8_t>& data) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<uint8_t> out(deflateBound(&zs, (uLong)data.size()) + 64);
  zs.next_in = const_cast<Bytef*>(data.data());
  zs.avail_in = (uInt)data.size();
  zs.next_out = out.data();
  zs.avail_out = (uInt)out.size();
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// IDX file: magic 00 00 08 <ndim>, big-endian sizes, then `data`.
inline std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b = {0, 0, 0x08, (uint8_t)dims.size()};
  for (uint32_t d : dims) {
    b.push_back((uint8_t)(d >> 24));
    b.push_back((uint8_t)(d >> 16));
    b.push_back((uint8_t)(d >> 8));
    b.push_back((uint8_t)d);
  }
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// Runs f, which must throw lowbit::Error whose message contains every one of `parts`.
template <class F>
void check_error(F&& f, const std::vector<std::string>& parts) {
  std::string msg;
  try {
    f();
  } catch (const lowbit::Error& e) {
    msg = e.what();
  }
  INFO("message: ", msg);
  REQUIRE_MESSAGE(!msg.empty(), "expected a lowbit::Error containing '", parts.empty() ? "" : parts[0], "'");
  for (const std::string& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "missing '", p, "'");
  CHECK_MESSAGE(msg.find('\n') == std::string::npos, "error messages are one line");
}

}  // namespace lowbit_test
