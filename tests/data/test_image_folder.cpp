// Image folders: PNG, JPEG, BMP and TGA files written with stb_image_write,
// ImageFolder's class and file order, RGB and grayscale decoding, and the
// failures (undecodable or zero-size image, empty class folder, missing root).
#include <doctest/doctest.h>

#include <cmath>

#include "data/dataset.h"
#include "data/formats.h"
#include "tests/data/helpers.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

using namespace lowbit;
using namespace lowbit::data;
using namespace lowbit_test;

namespace {

// An H×W RGB image (interleaved, as the writers take it) with a smooth
// pattern, so JPEG keeps it within a few levels.
std::vector<uint8_t> pattern(int h, int w, int seed) {
  std::vector<uint8_t> px((size_t)h * w * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &px[((size_t)y * w + x) * 3];
      p[0] = (uint8_t)(40 + 6 * x + seed);
      p[1] = (uint8_t)(60 + 5 * y);
      p[2] = (uint8_t)(200 - 3 * x - 2 * y);
    }
  return px;
}

enum class Fmt { png, jpg, bmp, tga };

void write_image(const std::string& path, const std::vector<uint8_t>& rgb, int h, int w, Fmt f, int comp = 3) {
  fs::create_directories(fs::path(path).parent_path());
  int ok = 0;
  switch (f) {
    case Fmt::png: ok = stbi_write_png(path.c_str(), w, h, comp, rgb.data(), w * comp); break;
    case Fmt::jpg: ok = stbi_write_jpg(path.c_str(), w, h, comp, rgb.data(), 95); break;
    case Fmt::bmp: ok = stbi_write_bmp(path.c_str(), w, h, comp, rgb.data()); break;
    case Fmt::tga: ok = stbi_write_tga(path.c_str(), w, h, comp, rgb.data()); break;
  }
  REQUIRE_MESSAGE(ok != 0, "stb_image_write failed for ", path);
}

// Largest |decoded - source| over the image (decoded is C×H×W, source interleaved RGB).
int max_diff_rgb(const Tensor& img, const std::vector<uint8_t>& rgb, int h, int w) {
  REQUIRE(img.shape() == Shape{3, h, w});
  const uint8_t* p = img.data<uint8_t>();
  int d = 0;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < h * w; ++i) d = std::max(d, std::abs((int)p[c * h * w + i] - (int)rgb[(size_t)i * 3 + c]));
  return d;
}

}  // namespace

TEST_CASE("image folder: classes sorted as ImageFolder, PNG/JPEG/BMP/TGA decoded") {
  TempDir dir;
  const std::string root = dir / "root";
  const int h = 6, w = 9;
  // Class folders in an order that name-sorting changes ("Zebra" < "cat" < "dog" in byte order).
  write_image(root + "/dog/b.png", pattern(h, w, 0), h, w, Fmt::png);
  write_image(root + "/dog/a.jpg", pattern(h, w, 1), h, w, Fmt::jpg);
  write_image(root + "/cat/x.BMP", pattern(h, w, 2), h, w, Fmt::bmp);  // extension case does not matter
  write_image(root + "/Zebra/z.tga", pattern(h, w, 3), h, w, Fmt::tga);
  // ImageFolder's walk: a directory's own files before those of "sub/",
  // because "root/cat" sorts before "root/cat/sub"; inside one directory by name.
  write_image(root + "/cat/sub/a.png", pattern(h, w, 4), h, w, Fmt::png);
  write_image(root + "/cat/y.png", pattern(h, w, 5), h, w, Fmt::png);
  write_text(root + "/cat/notes.txt", "not an image: ignored, as ImageFolder ignores it");

  DatasetPtr ds = load_image_folder(root);
  REQUIRE(ds->class_names() == std::vector<std::string>{"Zebra", "cat", "dog"});
  REQUIRE(ds->size() == 6);
  const std::vector<std::string> order = {"Zebra/z.tga", "cat/x.BMP", "cat/y.png", "cat/sub/a.png", "dog/a.jpg",
                                          "dog/b.png"};
  const int labels[] = {0, 1, 1, 1, 2, 2};
  const int seeds[] = {3, 2, 5, 4, 1, 0};
  for (int i = 0; i < 6; ++i) {
    CAPTURE(i);
    CHECK(ds->describe(i) == (fs::path(root) / order[(size_t)i]).string());
    Sample s = ds->get(i);
    CHECK(s.label == labels[i]);
    const int diff = max_diff_rgb(s.image, pattern(h, w, seeds[i]), h, w);
    if (order[(size_t)i].find(".jpg") != std::string::npos)
      CHECK(diff <= 12);  // lossy, quality 95
    else
      CHECK(diff == 0);  // PNG, BMP, TGA are lossless
  }
}

TEST_CASE("image folder: grayscale on request, PIL convert('L') weights") {
  TempDir dir;
  const std::string root = dir / "g";
  std::vector<uint8_t> rgb = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30};  // 1×4: red, green, blue, mixed
  write_image(root + "/c/rgb.png", rgb, 1, 4, Fmt::png);
  std::vector<uint8_t> gray = {0, 17, 128, 255};
  write_image(root + "/c/gray.png", gray, 1, 4, Fmt::png, 1);
  std::vector<uint8_t> rgba = {255, 0, 0, 7, 0, 255, 0, 99, 0, 0, 255, 255, 10, 200, 30, 0};
  write_image(root + "/c/rgba.png", rgba, 1, 4, Fmt::png, 4);

  DatasetPtr g = load_image_folder(root, ColorMode::grayscale);
  DatasetPtr c = load_image_folder(root, ColorMode::rgb);
  // Sorted: gray.png, rgb.png, rgba.png.
  Tensor g0 = g->get(0).image, g1 = g->get(1).image, g2 = g->get(2).image;
  REQUIRE(g1.shape() == Shape{1, 1, 4});
  // (19595 R + 38470 G + 7471 B + 32768) >> 16: 76, 150, 29, and 10/200/30 → 124.
  const uint8_t expect[] = {76, 150, 29, 124};
  for (int i = 0; i < 4; ++i) {
    CHECK(g1.data<uint8_t>()[i] == expect[i]);
    CHECK(g2.data<uint8_t>()[i] == expect[i]);  // alpha is dropped
    CHECK(g0.data<uint8_t>()[i] == gray[(size_t)i]);  // gray stays gray
  }
  // A gray image read as RGB repeats its channel.
  Tensor c0 = c->get(0).image;
  REQUIRE(c0.shape() == Shape{3, 1, 4});
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 4; ++i) CHECK(c0.data<uint8_t>()[ch * 4 + i] == gray[(size_t)i]);
  // RGBA read as RGB keeps the colour.
  CHECK(max_diff_rgb(c->get(2).image, rgb, 1, 4) == 0);
}

TEST_CASE("image folder: every failure is an error naming the file or folder") {
  TempDir dir;
  const std::string root = dir / "r";
  write_image(root + "/a/ok.png", pattern(4, 4, 0), 4, 4, Fmt::png);

  SUBCASE("undecodable image: the error comes from get() and names the file") {
    write_text(root + "/b/broken.png", "this is not a PNG file at all");
    DatasetPtr ds = load_image_folder(root);
    REQUIRE(ds->size() == 2);
    CHECK(ds->get(0).label == 0);
    check_error([&] { ds->get(1); }, {root + "/b/broken.png", "cannot decode image"});
  }
  SUBCASE("truncated PNG") {
    write_image(root + "/b/cut.png", pattern(16, 16, 0), 16, 16, Fmt::png);
    std::vector<uint8_t> bytes = read_file(root + "/b/cut.png");
    bytes.resize(bytes.size() / 2);
    write_bytes(root + "/b/cut.png", bytes);
    DatasetPtr ds = load_image_folder(root);
    check_error([&] { ds->get(1); }, {root + "/b/cut.png", "cannot decode image"});
  }
  SUBCASE("a symbolic link back up the tree (a loop) is refused, naming it") {
    write_image(root + "/b/x.png", pattern(4, 4, 1), 4, 4, Fmt::png);
    fs::create_directory_symlink("..", root + "/a/up");
    check_error([&] { load_image_folder(root); }, {root + "/a/up", "a symbolic link to", "(a loop); remove it"});
  }
  SUBCASE("a symbolic link into another class is refused (its images would get this label)") {
    write_image(root + "/b/x.png", pattern(4, 4, 1), 4, 4, Fmt::png);
    fs::create_directory_symlink("../b", root + "/a/more");
    check_error([&] { load_image_folder(root); }, {root + "/a/more", "elsewhere in the data set (its images would be labelled a)"});
  }
  SUBCASE("a symbolic link to a folder outside the data set is followed") {
    write_image(dir / "outside/y.png", pattern(4, 4, 2), 4, 4, Fmt::png);
    write_image(root + "/b/x.png", pattern(4, 4, 1), 4, 4, Fmt::png);
    fs::create_directory_symlink(fs::absolute(dir / "outside"), root + "/a/ext");
    DatasetPtr ds = load_image_folder(root);
    CHECK(ds->size() == 3);
  }
  SUBCASE("zero-size file: refused when the folder is listed") {
    write_bytes(root + "/b/empty.jpg", {});
    check_error([&] { load_image_folder(root); }, {root + "/b/empty.jpg", "empty file (0 bytes)"});
  }
  SUBCASE("zero-size image in the header (a 0-pixel-wide BMP)") {
    write_image(root + "/b/zero.bmp", pattern(4, 4, 0), 4, 4, Fmt::bmp);
    std::vector<uint8_t> bytes = read_file(root + "/b/zero.bmp");
    for (int k = 18; k < 22; ++k) bytes[(size_t)k] = 0;  // biWidth = 0
    write_bytes(root + "/b/zero.bmp", bytes);
    DatasetPtr ds = load_image_folder(root);
    check_error([&] { ds->get(1); }, {root + "/b/zero.bmp"});
  }
  SUBCASE("empty class folder") {
    fs::create_directories(root + "/b");
    write_text(root + "/b/readme.txt", "no images here");
    check_error([&] { load_image_folder(root); }, {root + "/b", "empty class folder"});
  }
  SUBCASE("missing root") {
    check_error([&] { load_image_folder(dir / "nothing"); }, {dir / "nothing", "no such directory"});
    check_error([&] { open_dataset({"imagefolder", dir / "nothing"}); }, {dir / "nothing", "no such directory"});
  }
  SUBCASE("root with no class folders") {
    write_image(dir / "flat/img.png", pattern(4, 4, 0), 4, 4, Fmt::png);
    check_error([&] { load_image_folder(dir / "flat"); }, {dir / "flat", "no class folders"});
  }
  SUBCASE("JPEG Huffman table with more than 256 codes (stb_image 2.27 would overflow its table)") {
    write_image(root + "/b/huff.jpg", pattern(8, 8, 0), 8, 8, Fmt::jpg);
    std::vector<uint8_t> bytes = read_file(root + "/b/huff.jpg");
    size_t dht = 0;
    for (size_t i = 2; i + 1 < bytes.size() && !dht; ++i)
      if (bytes[i] == 0xFF && bytes[i + 1] == 0xC4) dht = i;
    REQUIRE(dht != 0);
    for (size_t k = 0; k < 16; ++k) bytes[dht + 5 + k] = 0xF0;  // the first table's 16 code counts
    write_bytes(root + "/b/huff.jpg", bytes);
    DatasetPtr ds = load_image_folder(root);
    check_error([&] { ds->get(1); }, {root + "/b/huff.jpg", "more than 256 codes"});
  }
  SUBCASE("PPM header number of 10+ digits (stb_image 2.27 would overflow an int; found by fuzz_image)") {
    const std::string ppm = "P6\n\t\t\t222222222222222222222222222222222222\t\t6\n\t\t9\n";
    const std::vector<uint8_t> bytes(ppm.begin(), ppm.end());
    check_error([&] { decode_image(bytes.data(), bytes.size(), "big.ppm", 3); }, {"big.ppm", "more than 9 digits"});
    check_error([&] { image_channels(bytes.data(), bytes.size(), "big.ppm"); }, {"big.ppm", "more than 9 digits"});
    const std::string ok = "P5\n# a comment\n2 1\n255\n\x01\x02";
    const std::vector<uint8_t> okb(ok.begin(), ok.end());
    CHECK(decode_image(okb.data(), okb.size(), "ok.pgm", 1).shape() == Shape{1, 1, 2});
  }
  SUBCASE("image larger than the decoder limit") {
    std::vector<uint8_t> bytes = read_file(root + "/a/ok.png");
    check_error([&] { decode_image(bytes.data(), bytes.size(), "ok.png", 3, 15); }, {"ok.png", "4x4", "limit of 15"});
  }
}

TEST_CASE("image folder: open_dataset uses root/train and root/val") {
  TempDir dir;
  write_image(dir / "d/train/x/1.png", pattern(4, 4, 0), 4, 4, Fmt::png);
  write_image(dir / "d/train/y/1.png", pattern(4, 4, 1), 4, 4, Fmt::png);
  write_image(dir / "d/val/x/1.png", pattern(4, 4, 2), 4, 4, Fmt::png);
  DatasetSpec spec("imagefolder", dir / "d");
  CHECK(open_dataset(spec)->size() == 2);
  spec.train = false;
  CHECK(open_dataset(spec)->size() == 1);
  spec.dir = dir / "d/train";
  check_error([&] { open_dataset(spec); }, {"no val/ or test/ folder"});
}
