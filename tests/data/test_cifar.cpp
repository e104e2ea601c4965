// CIFAR-10 / CIFAR-100 binary files written by the test (the real archives
// are not packaged by Debian): layout, class names, file order, fine/coarse
// labels, and every corruption the reader must report.
#include <doctest/doctest.h>

#include "data/dataset.h"
#include "data/formats.h"
#include "tests/data/helpers.h"

using namespace lowbit;
using namespace lowbit::data;
using namespace lowbit_test;

namespace {
// `n` records; record r has labels `labels(r)` and pixel p = (r * 31 + p) & 255.
std::vector<uint8_t> cifar_records(int n, const std::vector<std::vector<uint8_t>>& labels, int first = 0) {
  std::vector<uint8_t> b;
  for (int r = 0; r < n; ++r) {
    for (uint8_t l : labels[(size_t)r]) b.push_back(l);
    for (int p = 0; p < 3072; ++p) b.push_back((uint8_t)(((first + r) * 31 + p) & 255));
  }
  return b;
}

void check_pixels(const Tensor& img, int record) {
  REQUIRE(img.shape() == Shape{3, 32, 32});
  REQUIRE(img.dtype() == DType::u8);
  const uint8_t* p = img.data<uint8_t>();
  // Planar R, G, B: channel c, row y, column x is byte c*1024 + y*32 + x of the record.
  for (int k : {0, 31, 32, 1023, 1024, 2047, 2048, 3071}) CHECK(p[k] == (uint8_t)((record * 31 + k) & 255));
}
}  // namespace

TEST_CASE("cifar10: batches in numeric order, test batch, class names") {
  TempDir dir;
  const std::string root = dir / "cifar-10-batches-bin";
  // Ten batches so that numeric order (1, 2, …, 10) differs from name order (1, 10, 2, …).
  int first = 0;
  for (int k = 1; k <= 10; ++k) {
    write_bytes(root + "/data_batch_" + std::to_string(k) + ".bin", cifar_records(2, {{(uint8_t)(k - 1)}, {3}}, first));
    first += 2;
  }
  write_bytes(root + "/test_batch.bin", cifar_records(3, {{9}, {8}, {7}}));
  // The parent folder works too (the archive unpacks into cifar-10-batches-bin/).
  DatasetPtr train = load_cifar10(dir.path.string(), true);
  REQUIRE(train->size() == 20);
  for (int k = 0; k < 10; ++k) {
    CHECK(train->label(2 * k) == k);
    CHECK(train->label(2 * k + 1) == 3);
  }
  check_pixels(train->get(0).image, 0);
  check_pixels(train->get(19).image, 19);
  CHECK(train->describe(19).find("data_batch_10.bin record 1") != std::string::npos);
  CHECK(train->class_names()[0] == "airplane");
  CHECK(train->class_names()[9] == "truck");

  DatasetPtr test = load_cifar10(root, false);
  REQUIRE(test->size() == 3);
  CHECK(test->get(1).label == 8);
  check_pixels(test->get(2).image, 2);

  // batches.meta.txt, when present, names the classes (its trailing blank line ignored).
  write_text(root + "/batches.meta.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n");
  CHECK(load_cifar10(root, false)->class_names()[9] == "j");
  write_text(root + "/batches.meta.txt", "a\nb\n");
  check_error([&] { load_cifar10(root, false); }, {"batches.meta.txt", "lists 2 class names, expected 10"});
}

TEST_CASE("cifar100: fine and coarse labels") {
  TempDir dir;
  const std::string root = dir / "cifar-100-binary";
  write_bytes(root + "/train.bin", cifar_records(4, {{0, 99}, {19, 5}, {3, 0}, {7, 42}}));
  write_bytes(root + "/test.bin", cifar_records(1, {{11, 12}}));
  DatasetPtr fine = load_cifar100(dir.path.string(), true);
  DatasetPtr coarse = load_cifar100(root, true, CifarLabels::coarse);
  REQUIRE(fine->size() == 4);
  REQUIRE(coarse->size() == 4);
  CHECK(fine->num_classes() == 100);
  CHECK(coarse->num_classes() == 20);
  const int f[] = {99, 5, 0, 42}, c[] = {0, 19, 3, 7};
  for (int i = 0; i < 4; ++i) {
    CHECK(fine->get(i).label == f[i]);
    CHECK(coarse->get(i).label == c[i]);
    check_pixels(fine->get(i).image, i);
  }
  CHECK(fine->class_names()[99] == "worm");
  CHECK(fine->class_names()[0] == "apple");
  CHECK(coarse->class_names()[19] == "vehicles_2");
  CHECK(load_cifar100(root, false)->get(0).label == 12);
  DatasetSpec spec("cifar100", root);
  spec.train = false;
  spec.cifar100_labels = CifarLabels::coarse;
  CHECK(open_dataset(spec)->get(0).label == 11);
}

TEST_CASE("cifar: every corruption is an error naming the file and the reason") {
  TempDir dir;
  const std::string root = dir / "c10";
  SUBCASE("truncated record") {
    std::vector<uint8_t> b = cifar_records(3, {{1}, {2}, {3}});
    b.resize(b.size() - 100);
    write_bytes(root + "/data_batch_1.bin", b);
    check_error([&] { load_cifar10(root, true); },
                {"data_batch_1.bin", "not a whole number of 3073-byte records", "2 records and 2973 bytes left over"});
  }
  SUBCASE("label out of range") {
    write_bytes(root + "/test_batch.bin", cifar_records(2, {{1}, {10}}));
    check_error([&] { load_cifar10(root, false); }, {"test_batch.bin", "record 1 has label 10", "10 classes"});
  }
  SUBCASE("a CIFAR-100 file read as CIFAR-10") {
    write_bytes(root + "/test_batch.bin", cifar_records(3073, std::vector<std::vector<uint8_t>>(3073, {1, 1})));
    // 3073 records of 3074 bytes = 3074 records of 3073 bytes: only the labels tell.
    check_error([&] { load_cifar10(root, false); }, {"test_batch.bin", "out of range", "CIFAR-10 file?"});
  }
  SUBCASE("empty file") {
    write_bytes(root + "/test.bin", {});
    check_error([&] { load_cifar100(root, false); }, {"test.bin", "empty file"});
  }
  SUBCASE("a gap in the numbered batches") {
    write_bytes(root + "/data_batch_1.bin", cifar_records(1, {{1}}));
    write_bytes(root + "/data_batch_3.bin", cifar_records(1, {{1}}));
    check_error([&] { load_cifar10(root, true); }, {"data_batch_2.bin", "missing"});
  }
  SUBCASE("missing files") {
    fs::create_directories(root);
    check_error([&] { load_cifar10(root, true); }, {root, "no data_batch_1.bin"});
    check_error([&] { load_cifar100(root, true); }, {root, "no train.bin"});
  }
  SUBCASE("missing directory") {
    check_error([&] { load_cifar10(dir / "absent", false); }, {dir / "absent", "no such directory"});
    check_error([&] { open_dataset({"cifar10", dir / "absent"}); }, {dir / "absent", "no such directory"});
  }
}
