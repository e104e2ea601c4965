// IDX datasets: the real Fashion-MNIST files from Debian's
// dataset-fashion-mnist, generated plain and gzip files, and one corrupted
// file per failure the reader must report (each message checked for the file
// name and the reason).
#include <doctest/doctest.h>

#include "data/dataset.h"
#include "data/formats.h"
#include "tests/data/helpers.h"

using namespace lowbit;
using namespace lowbit::data;
using namespace lowbit_test;

namespace {
const char* const kFashionDir = "/usr/share/datasets/fashion-mnist";

int64_t pixel_sum(const Tensor& t) {
  int64_t s = 0;
  const uint8_t* p = t.data<uint8_t>();
  for (int64_t i = 0; i < t.numel(); ++i) s += p[i];
  return s;
}

std::vector<uint8_t> ramp(size_t n, int mul = 7) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (uint8_t)(i * mul + 3);
  return v;
}
}  // namespace

TEST_CASE("idx: real Fashion-MNIST train split (Debian dataset-fashion-mnist)") {
  if (!fs::exists(std::string(kFashionDir) + "/train-images-idx3-ubyte.gz")) {
    FAIL("Fashion-MNIST not found at ", kFashionDir, ": apt-get install dataset-fashion-mnist (tools/run does)");
  }
  DatasetPtr ds = open_dataset({});  // the defaults: fashion-mnist, train, default location
  REQUIRE(ds->size() == 60000);
  REQUIRE(ds->num_classes() == 10);
  CHECK(ds->class_names()[9] == "Ankle boot");
  CHECK(ds->class_names()[0] == "T-shirt/top");
  Sample s = ds->get(0);
  CHECK(s.image.shape() == Shape{1, 28, 28});
  CHECK(s.image.dtype() == DType::u8);
  CHECK(s.label == 9);  // the first training image is an ankle boot
  CHECK(pixel_sum(s.image) == 76247);  // sum of its 784 bytes, read from the file with Python's gzip
  const int first[] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9};
  for (int i = 0; i < 12; ++i) CHECK(ds->label(i) == first[i]);
  CHECK(ds->get(59999).label == ds->label(59999));
  // Every class occurs 6000 times in the training split.
  std::vector<int> count(10, 0);
  for (int64_t i = 0; i < ds->size(); ++i) ++count[(size_t)ds->label(i)];
  for (int c = 0; c < 10; ++c) CHECK(count[(size_t)c] == 6000);
  CHECK(ds->describe(5).find("train-images-idx3-ubyte.gz image 5") != std::string::npos);
  check_error([&] { ds->get(60000); }, {"train-images-idx3-ubyte.gz", "out of range"});
}

TEST_CASE("idx: real Fashion-MNIST test split") {
  DatasetPtr ds = load_idx_dir(kFashionDir, /*train=*/false);
  REQUIRE(ds->size() == 10000);
  const int first[] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5};  // t10k-labels-idx1-ubyte.gz, bytes 8..19
  for (int i = 0; i < 12; ++i) CHECK(ds->label(i) == first[i]);
  CHECK(pixel_sum(ds->get(0).image) == 33456);
  // Without class names the classes are "0".."9".
  CHECK(ds->class_names().front() == "0");
  CHECK(ds->class_names().back() == "9");
}

TEST_CASE("idx: generated files, plain and gzip, give the same samples") {
  TempDir dir;
  const std::vector<uint8_t> px = ramp(4 * 3 * 5);
  const std::vector<uint8_t> lab = {2, 0, 1, 2};
  write_bytes(dir / "plain/train-images-idx3-ubyte", idx_bytes({4, 3, 5}, px));
  write_bytes(dir / "plain/train-labels-idx1-ubyte", idx_bytes({4}, lab));
  write_bytes(dir / "gz/train-images-idx3-ubyte.gz", gzip(idx_bytes({4, 3, 5}, px)));
  write_bytes(dir / "gz/train-labels-idx1-ubyte.gz", gzip(idx_bytes({4}, lab)));
  DatasetPtr a = load_idx_dir(dir / "plain", true, {"a", "b", "c"});
  DatasetPtr b = load_idx_dir(dir / "gz", true, {"a", "b", "c"});
  REQUIRE(a->size() == 4);
  REQUIRE(b->size() == 4);
  for (int64_t i = 0; i < 4; ++i) {
    Sample sa = a->get(i), sb = b->get(i);
    CHECK(sa.label == lab[(size_t)i]);
    CHECK(sb.label == lab[(size_t)i]);
    REQUIRE(sa.image.shape() == Shape{1, 3, 5});
    for (int64_t k = 0; k < 15; ++k) {
      CHECK(sa.image.data<uint8_t>()[k] == px[(size_t)(i * 15 + k)]);
      CHECK(sb.image.data<uint8_t>()[k] == px[(size_t)(i * 15 + k)]);
    }
  }
  // A gzip file made of two members decompresses to their concatenation (as gzip -d).
  std::vector<uint8_t> whole = idx_bytes({4, 3, 5}, px);
  std::vector<uint8_t> two = gzip(std::vector<uint8_t>(whole.begin(), whole.begin() + 20));
  std::vector<uint8_t> rest = gzip(std::vector<uint8_t>(whole.begin() + 20, whole.end()));
  two.insert(two.end(), rest.begin(), rest.end());
  CHECK(gunzip_if_gzip(two, "two.gz") == whole);
}

TEST_CASE("idx: every corruption is an error naming the file and the reason") {
  TempDir dir;
  const std::vector<uint8_t> px = ramp(3 * 2 * 2);
  const std::vector<uint8_t> lab = {0, 1, 1};
  const std::string labels = dir / "labels";
  write_bytes(labels, idx_bytes({3}, lab));
  auto images_with = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string p = dir / name;
    write_bytes(p, bytes);
    return p;
  };

  SUBCASE("wrong magic number") {
    std::vector<uint8_t> b = idx_bytes({3, 2, 2}, px);
    b[0] = 0x1f;  // not gzip either (the second byte is 0)
    const std::string p = images_with("bad_magic", b);
    check_error([&] { load_idx(p, labels); }, {p, "bad magic number", "0x1F000803"});
  }
  SUBCASE("unsupported element type") {
    std::vector<uint8_t> b = idx_bytes({3, 2, 2}, px);
    b[2] = 0x0D;
    const std::string p = images_with("float_idx", b);
    check_error([&] { load_idx(p, labels); }, {p, "float32", "not supported"});
  }
  SUBCASE("truncated header") {
    const std::string p = images_with("short_header", {0, 0, 8, 3, 0, 0, 0, 3, 0, 0});
    check_error([&] { load_idx(p, labels); }, {p, "truncated IDX header", "need 16"});
  }
  SUBCASE("truncated data") {
    std::vector<uint8_t> b = idx_bytes({3, 2, 2}, px);
    b.resize(b.size() - 5);
    const std::string p = images_with("truncated", b);
    check_error([&] { load_idx(p, labels); }, {p, "truncated", "promises 3x2x2 = 12 bytes", "holds 7"});
  }
  SUBCASE("header claims far more data than the file holds") {
    const std::string p = images_with("liar", idx_bytes({0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, px));
    check_error([&] { load_idx(p, labels); }, {p, "truncated", "4294967295x4294967295x4294967295"});
  }
  SUBCASE("trailing bytes after the array") {
    std::vector<uint8_t> b = idx_bytes({3, 2, 2}, px);
    b.push_back(0);
    b.push_back(0);
    const std::string p = images_with("trailing", b);
    check_error([&] { load_idx(p, labels); }, {p, "2 bytes after the 3x2x2 array"});
  }
  SUBCASE("image/label count mismatch") {
    const std::string p = images_with("four_images", idx_bytes({4, 2, 2}, ramp(16)));
    check_error([&] { load_idx(p, labels); }, {p, labels, "holds 4 images", "3 labels"});
  }
  SUBCASE("labels file given as images") {
    check_error([&] { load_idx(labels, labels); }, {labels, "3 dimensions", "labels file?"});
  }
  SUBCASE("images file given as labels") {
    const std::string p = images_with("images", idx_bytes({3, 2, 2}, px));
    check_error([&] { load_idx(p, p); }, {p, "1 dimension", "images file?"});
  }
  SUBCASE("label out of range for the class names") {
    const std::string p = images_with("images", idx_bytes({3, 2, 2}, px));
    write_bytes(dir / "labels7", idx_bytes({3}, {0, 7, 1}));
    check_error([&] { load_idx(p, dir / "labels7", {"x", "y"}); }, {dir / "labels7", "label 7 at index 1", "2 classes"});
  }
  SUBCASE("empty file") {
    const std::string p = images_with("empty", {});
    check_error([&] { load_idx(p, labels); }, {p, "empty file"});
  }
  SUBCASE("truncated gzip stream") {
    std::vector<uint8_t> gz = gzip(idx_bytes({3, 2, 2}, px));
    gz.resize(gz.size() / 2);
    const std::string p = images_with("cut.gz", gz);
    check_error([&] { load_idx(p, labels); }, {p, "truncated gzip stream"});
  }
  SUBCASE("corrupt gzip data") {
    std::vector<uint8_t> gz = gzip(idx_bytes({3, 2, 2}, px));
    for (size_t i = 10; i < gz.size() - 8; ++i) gz[i] ^= 0xA5;
    const std::string p = images_with("corrupt.gz", gz);
    check_error([&] { load_idx(p, labels); }, {p, "gzip"});
  }
  SUBCASE("garbage after the gzip stream") {
    std::vector<uint8_t> gz = gzip(idx_bytes({3, 2, 2}, px));
    gz.push_back('x');
    const std::string p = images_with("tail.gz", gz);
    check_error([&] { load_idx(p, labels); }, {p, "1 bytes of trailing garbage"});
  }
  SUBCASE("missing file") {
    check_error([&] { load_idx(dir / "nope", labels); }, {dir / "nope", "cannot open", "No such file"});
  }
  SUBCASE("a directory instead of a file") {
    check_error([&] { load_idx(dir.path.string(), labels); }, {dir.path.string(), "is a directory"});
  }
  SUBCASE("missing directory") {
    check_error([&] { load_idx_dir(dir / "missing", true); }, {dir / "missing", "no such directory"});
    check_error([&] { open_dataset({"mnist", dir / "missing"}); }, {dir / "missing", "no such directory"});
  }
  SUBCASE("directory without the split's files") {
    check_error([&] { load_idx_dir(dir.path.string(), false); }, {dir.path.string(), "t10k-images-idx3-ubyte"});
  }
}

TEST_CASE("idx: parse_idx on memory buffers") {
  IdxArray a = parse_idx(idx_bytes({2, 3}, ramp(6)), "mem");
  CHECK(a.dims == std::vector<int64_t>{2, 3});
  CHECK(a.data_offset == 12);
  check_error([] { parse_idx({0, 0, 8}, "mem3"); }, {"mem3", "truncated IDX header"});
  check_error([] { parse_idx({0, 0, 8, 0}, "mem0"); }, {"mem0", "bad magic"});
  check_error([] { gunzip_if_gzip({0x1f, 0x8b}, "tiny.gz"); }, {"tiny.gz", "gzip"});
  // The output cap the fuzzers use.
  std::vector<uint8_t> big(1 << 20, 0);
  check_error([&] { gunzip_if_gzip(gzip(big), "big.gz", 1000); }, {"big.gz", "exceeds 1000 bytes"});
  CHECK(gunzip_if_gzip(gzip(big), "big.gz", big.size()).size() == big.size());
}
