// safetensors reader/writer: round trips, the committed PyTorch-written
// fixture, every rejection path of the reader (each checked for the file name
// and the reason in the message), and the atomic-write guarantees.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "tests/test_util.h"

using namespace lowbit;
namespace fs = std::filesystem;

#ifndef LOWBIT_FIXTURES_DIR
#error "LOWBIT_FIXTURES_DIR must be defined by the build (tests/meson.build)"
#endif

namespace {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/lowbit_st_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE_MESSAGE(::mkdtemp(buf.data()) != nullptr, "mkdtemp failed: ", std::strerror(errno));
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    return out;
  }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), (std::streamsize)bytes.size());
  REQUIRE(f.good());
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[(size_t)i] = (char)((v >> (8 * i)) & 0xFF);
  return s;
}

// A safetensors file from a header text and a data section, as a corrupt
// writer might produce it.
std::string st_bytes(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

std::string floats_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// load_safetensors(path) must throw Error naming the file and containing `reason`.
void check_load_error(const std::string& path, const std::string& reason) {
  std::string msg;
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO("expected reason: ", reason);
  REQUIRE_MESSAGE(!msg.empty(), "load_safetensors('", path, "') did not throw");
  CHECK_MESSAGE(msg.find(path) != std::string::npos, "message does not name the file: ", msg);
  CHECK_MESSAGE(msg.find(reason) != std::string::npos, "message lacks the reason: ", msg);
  CHECK_MESSAGE(msg.find('\n') == std::string::npos, "message is not one line: ", msg);
}

std::vector<int32_t> s32_values(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::vector<int32_t>(c.data<int32_t>(), c.data<int32_t>() + c.numel());
}
template <class T>
std::vector<int> small_int_values(const Tensor& t) {
  Tensor c = t.contiguous();
  std::vector<int> out;
  for (int64_t i = 0; i < c.numel(); ++i) out.push_back((int)c.data<T>()[i]);
  return out;
}

}  // namespace

TEST_CASE("safetensors: round trip of every dtype, scalars and empty tensors") {
  TempDir dir;
  const std::string path = dir.file("all.safetensors");

  Tensor f = Tensor::from_vector({1.5f, -2.25f, 3.0e-8f, 0.0f, -0.0f, 1e30f}, {2, 3});
  Tensor i = Tensor::from_vector_s32({INT32_MIN, -1, 0, 7, INT32_MAX}, {5});
  Tensor s8 = Tensor::empty({2, 2}, DType::s8);
  int8_t s8v[] = {-128, -1, 0, 127};
  std::memcpy(s8.data<int8_t>(), s8v, 4);
  Tensor u8 = Tensor::empty({1, 3, 1}, DType::u8);
  uint8_t u8v[] = {0, 128, 255};
  std::memcpy(u8.data<uint8_t>(), u8v, 3);
  Tensor scalar = Tensor::scalar(-4.5f);
  Tensor empty = Tensor::empty({0, 5});

  // Deliberately not alphabetical: the writer keeps the given order.
  save_safetensors(path, {{"z.float", f}, {"int", i}, {"s8", s8}, {"u8", u8}, {"scalar", scalar}, {"empty", empty}});
  SafetensorsFile st = load_safetensors(path);
  CHECK(st.path == path);
  REQUIRE(st.tensors.size() == 6);
  const char* order[] = {"z.float", "int", "s8", "u8", "scalar", "empty"};
  for (size_t k = 0; k < 6; ++k) CHECK(st.tensors[k].first == order[k]);

  CHECK(st.get("z.float").dtype() == DType::f32);
  CHECK(st.get("z.float").shape() == Shape{2, 3});
  CHECK(st.get("z.float").to_vector() == f.to_vector());
  CHECK(std::signbit(st.get("z.float").to_vector()[4]));  // -0.0 survives bit-exactly
  CHECK(st.get("int").dtype() == DType::s32);
  CHECK(s32_values(st.get("int")) == std::vector<int32_t>{INT32_MIN, -1, 0, 7, INT32_MAX});
  CHECK(st.get("s8").dtype() == DType::s8);
  CHECK(st.get("s8").shape() == Shape{2, 2});
  CHECK(small_int_values<int8_t>(st.get("s8")) == std::vector<int>{-128, -1, 0, 127});
  CHECK(st.get("u8").dtype() == DType::u8);
  CHECK(st.get("u8").shape() == Shape{1, 3, 1});
  CHECK(small_int_values<uint8_t>(st.get("u8")) == std::vector<int>{0, 128, 255});
  CHECK(st.get("scalar").dim() == 0);
  CHECK(st.get("scalar").item() == -4.5f);
  CHECK(st.get("empty").shape() == Shape{0, 5});
  CHECK(st.has("int"));
  CHECK_FALSE(st.has("missing"));

  // The header is padded with spaces so the data section is 8-byte aligned.
  std::string bytes = read_bytes(path);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | (unsigned char)bytes[(size_t)k];
  CHECK(n % 8 == 0);
  CHECK(bytes[0] != 0);
  std::string header = bytes.substr(8, n);
  CHECK(header.front() == '{');
  CHECK(header.find_last_not_of(' ') == header.rfind('}'));
  CHECK(bytes.size() == 8 + n + 6 * 4 + 5 * 4 + 4 + 3 + 4);
}

TEST_CASE("safetensors: non-contiguous tensors are saved in logical order") {
  TempDir dir;
  const std::string path = dir.file("views.safetensors");
  Tensor base = Tensor::arange(12).view({3, 4});
  Tensor t = base.transpose(0, 1);                  // [4, 3], strides (1, 4)
  Tensor s = base.slice(1, 0, 4, 2);                // [3, 2], step 2
  Tensor e = Tensor::arange(3).view({3, 1}).expand({3, 4});  // stride-0 broadcast
  REQUIRE_FALSE(t.is_contiguous());
  REQUIRE_FALSE(s.is_contiguous());
  save_safetensors(path, {{"t", t}, {"s", s}, {"e", e}});
  SafetensorsFile st = load_safetensors(path);
  CHECK(st.get("t").shape() == Shape{4, 3});
  CHECK(st.get("t").to_vector() == std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK(st.get("s").to_vector() == std::vector<float>{0, 2, 4, 6, 8, 10});
  CHECK(st.get("e").to_vector() == std::vector<float>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
}

TEST_CASE("safetensors: metadata round trip, including characters JSON must escape") {
  TempDir dir;
  const std::string path = dir.file("meta.safetensors");
  std::map<std::string, std::string> meta = {
      {"format", "pt"},
      {"quote\"back\\slash", "line1\nline2\ttab\r"},
      {"control", std::string("a\x01" "b\x1f", 4)},
      {"unicode", "\xc2\xb5m \xe2\x86\x92 \xf0\x9f\x99\x82"},  // µm → 🙂
      {"empty", ""},
      {"graph", "{\"layers\": [1, 2, 3]}"},
  };
  save_safetensors(path, {{"w", Tensor::ones({2})}}, meta);
  SafetensorsFile st = load_safetensors(path);
  CHECK(st.metadata == meta);

  // A value that is not UTF-8 is refused at save (no reader would take it
  // back), naming the file; the old file stays.
  const std::string before = read_bytes(path);
  const std::string e = lowbit::testing::error_of([&] { save_safetensors(path, {{"w", Tensor::ones({2})}}, {{"k", "a\xff"}}); });
  CHECK(e.find("is not valid UTF-8") != std::string::npos);
  CHECK(e.find(path) != std::string::npos);
  CHECK(read_bytes(path) == before);

  // No metadata: the header has no __metadata__ entry and loads as empty.
  save_safetensors(path, {{"w", Tensor::ones({2})}});
  CHECK(read_bytes(path).find("__metadata__") == std::string::npos);
  CHECK(load_safetensors(path).metadata.empty());

  // Escapes other writers use (\u with a surrogate pair, \/) decode to UTF-8.
  const std::string p2 = dir.file("escapes.safetensors");
  write_bytes(p2, st_bytes(R"({"__metadata__":{"k":"\u00b5\/\ud83d\ude42\"x"}})", ""));
  CHECK(load_safetensors(p2).metadata.at("k") == "\xc2\xb5/\xf0\x9f\x99\x82\"x");
  // __metadata__ may be null (the reference writer's "no metadata").
  write_bytes(p2, st_bytes(R"({"__metadata__":null,"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                           floats_bytes({2.5f})));
  CHECK(load_safetensors(p2).get("a").item() == 2.5f);
}

TEST_CASE("safetensors: the committed PyTorch fixture loads with the right dtypes and values") {
  const std::string path = std::string(LOWBIT_FIXTURES_DIR) + "/ops.safetensors";
  SafetensorsFile st = load_safetensors(path);
  CHECK(st.tensors.size() > 100);
  CHECK(st.metadata.at("generator") == "tools/make_fixtures.py");
  CHECK(st.metadata.at("cases").find("conv_depthwise") != std::string::npos);

  CHECK(st.get("io.f32").dtype() == DType::f32);
  CHECK(st.get("io.f32").shape() == Shape{2, 3});
  CHECK(st.get("io.f32").to_vector() == std::vector<float>{1.5f, -2.25f, 3.0f, 0.0f, 1e-3f, -7.0f});
  // F64 loads as f32, I64 as s32 (0-d, as PyTorch's num_batches_tracked).
  CHECK(st.get("io.f64").dtype() == DType::f32);
  CHECK(st.get("io.f64").to_vector() == std::vector<float>{0.1f, -1.0e10f, 3.5f});
  CHECK(st.get("io.i64").dtype() == DType::s32);
  CHECK(st.get("io.i64").dim() == 0);
  CHECK(s32_values(st.get("io.i64")) == std::vector<int32_t>{12345});
  CHECK(s32_values(st.get("io.i32")) == std::vector<int32_t>{INT32_MIN, 0, INT32_MAX});
  CHECK(small_int_values<int8_t>(st.get("io.i8")) == std::vector<int>{-128, -1, 0, 127});
  CHECK(small_int_values<uint8_t>(st.get("io.u8")) == std::vector<int>{0, 1, 128, 255});
  CHECK(st.get("io.empty").shape() == Shape{0, 3});
  CHECK(st.get("ce.t").dtype() == DType::s32);

  // get() of a missing key names the file and the key.
  std::string msg;
  try {
    st.get("no.such.tensor");
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find(path) != std::string::npos);
  CHECK(msg.find("no.such.tensor") != std::string::npos);
}

TEST_CASE("safetensors: corrupt files are rejected with the file name and the reason") {
  TempDir dir;
  const std::string p = dir.file("bad.safetensors");
  const std::string one_f32 = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";

  SUBCASE("missing file") { check_load_error(dir.file("nope.safetensors"), "no such file"); }
  SUBCASE("path is a directory") { check_load_error(dir.path.string(), "is a directory"); }
  SUBCASE("empty file") {
    write_bytes(p, "");
    check_load_error(p, "file is 0 bytes, shorter than the 8-byte header length");
  }
  SUBCASE("shorter than 8 bytes") {
    write_bytes(p, std::string("\x05\0\0", 3));
    check_load_error(p, "file is 3 bytes, shorter than the 8-byte header length");
  }
  SUBCASE("header length larger than the file") {
    write_bytes(p, le64(1000) + "{}");
    check_load_error(p, "not a safetensors file: its first 8 bytes, the header length, say 1000 but the file has 10 bytes");
  }
  SUBCASE("another kind of file is named as such") {
    write_bytes(p, std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
    check_load_error(p, "is a PNG image, not a safetensors file");
    write_bytes(p, std::string("PK\x03\x04\x14\0\0\0\0\0", 10));
    check_load_error(p, "is a zip archive (PyTorch's torch.save writes these");
    write_bytes(p, std::string("\x80\x02\x8a\x0a" "lZ\xfc\x9c" "F\xf9", 10));
    check_load_error(p, "is a Python pickle");
  }
  SUBCASE("header length near 2^64 does not wrap") {
    write_bytes(p, le64(~uint64_t(0) - 3) + "{}");
    check_load_error(p, "say 18446744073709551612 but the file has 10 bytes");
  }
  SUBCASE("header length zero") {
    write_bytes(p, le64(0));
    check_load_error(p, "header length is 0");
  }
  SUBCASE("invalid JSON, with the byte offset") {
    // '{"a" 1}': the parser expects ':' at header byte 5, file byte 13.
    write_bytes(p, st_bytes(R"({"a" 1})", ""));
    check_load_error(p, "invalid JSON header at file byte 13: object separator - unexpected number literal; expected ':'");
  }
  SUBCASE("truncated JSON") {
    // 24 header bytes: the string "sha... runs into the end of the header, file byte 8 + 24.
    write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","sha)", ""));
    check_load_error(p, "invalid JSON header at file byte 32: object key - invalid string: missing closing quote");
  }
  SUBCASE("trailing garbage after the JSON object") {
    write_bytes(p, st_bytes(one_f32 + "  x", floats_bytes({1})));
    check_load_error(p, "unexpected data after the JSON object");
  }
  SUBCASE("bad escape") {
    write_bytes(p, st_bytes(R"({"__metadata__":{"k":"\q"}})", ""));
    check_load_error(p, "invalid JSON header at file byte 31: value - invalid string: forbidden character after backslash");
  }
  SUBCASE("raw control character in a string") {
    write_bytes(p, st_bytes("{\"__metadata__\":{\"k\":\"a\x01\"}}", ""));
    check_load_error(p, "invalid JSON header at file byte 31: value - invalid string: control character U+0001 (SOH) must be escaped");
  }
  SUBCASE("a string that is not UTF-8") {
    write_bytes(p, st_bytes("{\"__metadata__\":{\"k\":\"a\xff\"}}", ""));
    check_load_error(p, "invalid JSON header at file byte 31: value - invalid string: ill-formed UTF-8 byte");
  }
  SUBCASE("the token a hostile file ends on is not repeated (a message stays short)") {
    write_bytes(p, st_bytes("{\"__metadata__\":{\"k\":\"" + std::string(100000, 'x'), ""));
    std::string msg;
    try {
      load_safetensors(p);
    } catch (const Error& e) {
      msg = e.what();
    }
    CHECK(msg.find("missing closing quote") != std::string::npos);
    CHECK(msg.size() < 400);
  }
  SUBCASE("nesting too deep") {
    write_bytes(p, st_bytes(R"({"__metadata__":)" + std::string(200, '[') + std::string(200, ']') + "}", ""));
    check_load_error(p, "invalid JSON header: nesting deeper than 64");
  }
  SUBCASE("header is not an object") {
    write_bytes(p, st_bytes("[1, 2]", ""));
    check_load_error(p, "header is an array, not a JSON object");
  }
  SUBCASE("unknown dtype") {
    write_bytes(p, st_bytes(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0')));
    check_load_error(p, "tensor 'a': unknown dtype 'BF16'");
  }
  SUBCASE("missing field") {
    write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", floats_bytes({1})));
    check_load_error(p, "tensor 'a': missing \"shape\"");
  }
  SUBCASE("negative shape entry") {
    write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", floats_bytes({1})));
    check_load_error(p, "shape entry must be a non-negative integer, found -1");
  }
  SUBCASE("fractional offset") {
    write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}})", floats_bytes({1})));
    check_load_error(p, "data_offsets end must be a non-negative integer, found 4.0");
  }
  SUBCASE("data_offsets out of range") {
    write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", floats_bytes({1})));
    check_load_error(p, "tensor 'a': data_offsets [0, 8] out of range (the data section is 4 bytes)");
  }
  SUBCASE("data_offsets begin after end") {
    write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", floats_bytes({1})));
    check_load_error(p, "data_offsets [4, 0] has begin > end");
  }
  SUBCASE("data_offsets do not match shape x dtype") {
    write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})",
                            floats_bytes({1, 2, 3, 4, 5, 6})));
    check_load_error(p, "tensor 'a': data_offsets [0, 20] hold 20 bytes but shape [2, 3] of F32 needs 24 bytes");
  }
  SUBCASE("shape overflows") {
    write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                            floats_bytes({1})));
    check_load_error(p, "is too large");
  }
  SUBCASE("overlapping tensors") {
    write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                            floats_bytes({1, 2, 3})));
    check_load_error(p, "tensors 'a' [0, 8] and 'b' [4, 12] overlap in the data section");
  }
  SUBCASE("duplicate names") {
    write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            floats_bytes({1, 2})));
    check_load_error(p, "duplicate name 'a' in the header");
  }
  SUBCASE("metadata value not a string") {
    write_bytes(p, st_bytes(R"({"__metadata__":{"epochs":3}})", ""));
    check_load_error(p, "__metadata__ value of 'epochs' is a number, not a string");
  }
  SUBCASE("I64 value out of s32 range") {
    std::string data = le64(5) + le64(uint64_t(1) << 40);
    write_bytes(p, st_bytes(R"({"n":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data));
    check_load_error(p, "tensor 'n': I64 value 1099511627776 at index 1 does not fit in s32");
  }
  SUBCASE("I64 negative values convert") {
    std::string data = le64(uint64_t(-5)) + le64(uint64_t(INT32_MIN));
    write_bytes(p, st_bytes(R"({"n":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data));
    CHECK(s32_values(load_safetensors(p).get("n")) == std::vector<int32_t>{-5, INT32_MIN});
  }
  SUBCASE("valid hand-written file still loads (the helpers are not the failure)") {
    write_bytes(p, st_bytes(one_f32, floats_bytes({42.0f})));
    CHECK(load_safetensors(p).get("a").item() == 42.0f);
  }
}

// Found while adding fuzz_safetensors (tests/fuzz/): a tensor with a 0 extent
// holds no bytes, so the byte-count checks passed, but its other extents went
// into Tensor's element count and strides and overflowed int64 there (UBSan:
// signed overflow in shape_numel / contiguous_strides).
TEST_CASE("safetensors: an empty tensor whose other extents overflow int64 is refused") {
  auto load = [](const std::string& shape) {
    return lowbit::testing::error_of([&] {
      load_safetensors_bytes(st_bytes(R"({"t":{"dtype":"I8","shape":)" + shape + R"(,"data_offsets":[0,0]}})", ""),
                             "empty.safetensors");
    });
  };
  // The strides of [0, 2^40, 2^40] reach 2^80.
  CHECK(load("[0,1099511627776,1099511627776]").find("shape [0, 1099511627776, 1099511627776] is too large") !=
        std::string::npos);
  // shape_numel multiplies 2^62 · 2 before the 0.
  CHECK(load("[4611686018427387904,2,0]").find("is too large") != std::string::npos);
  CHECK(load("[9223372036854775807,9223372036854775807,0]").find("empty.safetensors") != std::string::npos);
  // Empty tensors whose extents fit still load.
  const SafetensorsFile f = load_safetensors_bytes(
      st_bytes(R"({"t":{"dtype":"F32","shape":[0,2147483648,2147483648],"data_offsets":[0,0]}})", ""), "ok");
  CHECK(f.get("t").numel() == 0);
  CHECK(f.get("t").shape() == Shape{0, int64_t(1) << 31, int64_t(1) << 31});
}

// The seed corpus of fuzz_safetensors (tests/fuzz/make_seeds.py) is valid:
// fuzzing starts inside the format.
TEST_CASE("safetensors: the fuzz seeds load") {
  const fs::path dir = fs::path(LOWBIT_FIXTURES_DIR) / ".." / "fuzz" / "seeds" / "safetensors";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    INFO(e.path().string());
    const SafetensorsFile f = load_safetensors_bytes(read_bytes(e.path().string()), e.path().filename().string());
    CHECK(!f.tensors.empty());
    ++n;
  }
  CHECK(n >= 3);
  const SafetensorsFile f = load_safetensors((dir / "plain.safetensors").string());
  CHECK(s32_values(f.get("bn.num_batches_tracked")) == std::vector<int32_t>{42});
  CHECK(f.get("double").to_vector() == std::vector<float>{1.5f, -2.25f});
  CHECK(f.get("empty").shape() == Shape{0, 4});
  CHECK(f.has("caf\xc3\xa9 \"q\"\n"));
  CHECK(f.metadata.at("note") == "\xc3\xbc\xf0\x9f\x98\x80");
}

TEST_CASE("safetensors: save is atomic and leaves no temporary file behind") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  Tensor old_value = Tensor::from_vector({1, 2, 3}, {3});
  save_safetensors(path, {{"w", old_value}});
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
  const std::string old_bytes = read_bytes(path);

  // Overwriting an existing file replaces it whole.
  save_safetensors(path, {{"w", Tensor::from_vector({4, 5}, {2})}});
  CHECK(load_safetensors(path).get("w").to_vector() == std::vector<float>{4, 5});
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
  write_bytes(path, old_bytes);

  auto check_fails_cleanly = [&](const std::string& target, const std::vector<std::pair<std::string, Tensor>>& ts,
                                 const std::string& reason) {
    std::string msg;
    try {
      save_safetensors(target, ts);
    } catch (const Error& e) {
      msg = e.what();
    }
    INFO("expected reason: ", reason);
    REQUIRE_MESSAGE(!msg.empty(), "save_safetensors('", target, "') did not throw");
    CHECK_MESSAGE(msg.find(target) != std::string::npos, "message does not name the file: ", msg);
    CHECK_MESSAGE(msg.find(reason) != std::string::npos, "message lacks the reason: ", msg);
    // The old checkpoint is untouched and no temporary file is left.
    CHECK(read_bytes(path) == old_bytes);
    for (const auto& e : dir.entries()) CHECK_MESSAGE(e.find(".tmp.") == std::string::npos, "left behind: ", e);
  };

  SUBCASE("invalid input is rejected before the disk is touched") {
    check_fails_cleanly(path, {{"w", Tensor()}}, "tensor 'w' is undefined");
    check_fails_cleanly(path, {{"w", old_value}, {"w", old_value}}, "duplicate tensor name 'w'");
    check_fails_cleanly(path, {{"__metadata__", old_value}}, "reserved");
  }
  SUBCASE("destination is a directory") {
    fs::create_directory(dir.path / "adir");
    check_fails_cleanly(dir.file("adir"), {{"w", old_value}}, "is a directory");
    CHECK(fs::is_directory(dir.path / "adir"));
  }
  SUBCASE("destination is not a regular file (a FIFO stands in for /dev/full): it is not replaced") {
    const std::string fifo = dir.file("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    check_fails_cleanly(fifo, {{"w", old_value}}, "is not a regular file");
    CHECK(fs::is_fifo(fifo));
  }
  SUBCASE("parent directory does not exist") {
    check_fails_cleanly(dir.file("missing/ckpt.safetensors"), {{"w", old_value}}, "cannot create");
  }
  SUBCASE("write fails half-way (file size limit): the old file survives") {
    // RLIMIT_FSIZE makes write() fail with EFBIG part-way through the data,
    // the closest a test gets to a full disk.
    struct rlimit saved {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    struct rlimit small = saved;
    small.rlim_cur = 64 * 1024;
    auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string msg;
    try {
      save_safetensors(path, {{"big", Tensor::zeros({1 << 16})}});  // 256 KiB
    } catch (const Error& e) {
      msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, old_handler);
    CHECK_MESSAGE(msg.find("cannot write") != std::string::npos, msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(read_bytes(path) == old_bytes);
    CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
    CHECK(load_safetensors(path).get("w").to_vector() == std::vector<float>{1, 2, 3});
  }
  SUBCASE("directory not writable, even for root: the 'directory' is a regular file") {
    check_fails_cleanly(dir.file("ckpt.safetensors/inner.safetensors"), {{"w", Tensor::from_vector({9}, {1})}},
                        "cannot create");
  }
}

TEST_CASE("safetensors: a write killed at any point leaves the previous file whole; the next write removes the stale temporary") {
  // A child process writes a 24 MB checkpoint over a small one and is killed
  // with SIGKILL at points spread over the write (measured first): the file is
  // then exactly the old one or exactly the new one, never a mix, and the
  // killed writer's PATH.tmp.<pid> is removed by the next save of PATH.
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  save_safetensors(path, {{"w", Tensor::from_vector({1, 2, 3}, {3})}});
  const std::string old_bytes = read_bytes(path);
  std::vector<float> big((size_t)6 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = (float)(i % 977);
  const Tensor big_t = Tensor::from_vector(big, {(int64_t)big.size()});
  const auto t0 = std::chrono::steady_clock::now();
  save_safetensors(dir.file("timing.safetensors"), {{"w", big_t}});
  const double write_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  const std::string new_bytes = read_bytes(dir.file("timing.safetensors"));
  fs::remove(dir.file("timing.safetensors"));
  int killed_mid_write = 0, old_kept = 0, new_complete = 0;
  for (int trial = 0; trial < 8; ++trial) {
    write_bytes(path, old_bytes);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        save_safetensors(path, {{"w", big_t}});
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(0);
    }
    ::usleep((useconds_t)(write_us * (trial + 0.5) / 8));
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    const bool was_killed = WIFSIGNALED(status);
    const std::string now = read_bytes(path);
    CHECK((now == old_bytes || now == new_bytes));
    old_kept += now == old_bytes;
    new_complete += now == new_bytes;
    bool tmp_left = false;
    for (const auto& e : dir.entries()) tmp_left |= e.find(".tmp.") != std::string::npos;
    killed_mid_write += was_killed && tmp_left;
  }
  MESSAGE("8 writes killed: ", killed_mid_write, " left a temporary, the old file kept ", old_kept,
          " times, the new one complete ", new_complete, " times");
  CHECK(killed_mid_write > 0);  // some kills landed inside the write
  save_safetensors(path, {{"w", Tensor::from_vector({7}, {1})}});
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});  // every stale temporary removed
  CHECK(load_safetensors(path).get("w").to_vector() == std::vector<float>{7});
}
