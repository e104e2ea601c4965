// Transforms: the deterministic ones against goldens computed the way
// torchvision's tensor path computes them (tests/fixtures/transforms.safetensors,
// made by tools/make_fixtures.py --transforms), the random ones by their
// defining properties and their reproducibility from a seed.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <sstream>

#include "core/safetensors.h"
#include "data/transforms.h"
#include "tests/data/helpers.h"
#include "tests/test_util.h"

using namespace lowbit;
using namespace lowbit::data;
using namespace lowbit_test;

#ifndef LOWBIT_FIXTURES_DIR
#error "LOWBIT_FIXTURES_DIR must be defined by the build (tests/meson.build)"
#endif

namespace {

const SafetensorsFile& fixture() {
  static const SafetensorsFile f = load_safetensors(std::string(LOWBIT_FIXTURES_DIR) + "/transforms.safetensors");
  return f;
}

using testing::split;
std::vector<float> floats(const std::string& s) {
  std::vector<float> v;
  for (const std::string& x : split(s)) v.push_back(std::stof(x));
  return v;
}
int64_t param(const std::string& c, const std::string& k) { return std::stoll(fixture().metadata.at(c + "." + k)); }

// f32: relative error ≤ 1e-6 (Resize differs from PyTorch by at most one
// ulp, where PyTorch's compiled kernel contracted a*w0 + b*w1 to an fma
// differently; the other transforms are exact); u8: identical.
void check_close(const Tensor& got, const Tensor& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == want.dtype());
  const std::vector<float> a = got.to_vector(), b = want.to_vector();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs((double)a[i] - b[i]) / std::max(1.0, std::abs((double)b[i]));
    worst = std::max(worst, err);
  }
  if (got.dtype() == DType::u8)
    CHECK(worst == 0.0);
  else
    CHECK(worst <= 1e-6);
}

Tensor image_f32(int64_t c, int64_t h, int64_t w) {
  Tensor t = Tensor::empty({c, h, w});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = (float)i;
  return t;
}

}  // namespace

TEST_CASE("transforms: goldens (Normalize, Resize, CenterCrop, ToTensor, Grayscale) match torchvision's tensor path") {
  const std::vector<std::string> cases = split(fixture().metadata.at("cases"));
  REQUIRE(cases.size() >= 15);
  std::set<std::string> ops_seen;
  Generator rng(0);
  for (const std::string& c : cases) {
    const std::string op = fixture().metadata.at(c + ".op");
    ops_seen.insert(op);
    const Tensor& x = fixture().get(c + ".x");
    const Tensor& y = fixture().get(c + ".y");
    TransformPtr t;
    if (op == "to_tensor") {
      t = to_tensor();
    } else if (op == "normalize") {
      t = normalize(floats(fixture().metadata.at(c + ".mean")), floats(fixture().metadata.at(c + ".std")));
    } else if (op == "resize") {
      t = resize(param(c, "height"), param(c, "width"));
    } else if (op == "resize_shorter") {
      t = resize(param(c, "size"));
    } else if (op == "center_crop") {
      t = center_crop(param(c, "height"), param(c, "width"));
    } else if (op == "grayscale") {
      t = grayscale((int)param(c, "channels"));
    } else {
      FAIL("unknown op '", op, "' in case ", c);
    }
    check_close(t->apply(x, rng), y, c + " (" + t->repr() + ")");
    // Non-contiguous input: the same image through a transposed-back view.
    Tensor strided = x.transpose(1, 2).contiguous().transpose(1, 2);
    REQUIRE(!strided.is_contiguous());
    check_close(t->apply(strided, rng), y, c + " non-contiguous");
  }
  CHECK(ops_seen == std::set<std::string>{"to_tensor", "normalize", "resize", "resize_shorter", "center_crop",
                                          "grayscale"});
}

TEST_CASE("transforms: ToTensor then Normalize in compose() is bit-identical to the two steps") {
  Generator rng(0);
  Tensor x = Tensor::empty({3, 16, 16}, DType::u8);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = (uint8_t)(i * 37);
  TransformPtr n = normalize({0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f});
  Tensor two = n->apply(to_tensor()->apply(x, rng), rng);
  Tensor fused = compose({to_tensor(), n})->apply(x, rng);
  REQUIRE(fused.shape() == two.shape());
  CHECK(std::memcmp(fused.data<float>(), two.data<float>(), (size_t)two.numel() * 4) == 0);
  CHECK(compose({to_tensor(), n})->repr().find("Normalize(mean=[0.4914") != std::string::npos);
  check_error([&] { compose({to_tensor(), normalize({0.5f, 0.5f}, {1, 1})})->apply(x, rng); },
              {"Normalize", "3 channels", "2"});
}

TEST_CASE("transforms: RandomCrop with padding is a shifted window with zero borders") {
  Tensor x = image_f32(2, 5, 6);
  std::set<std::pair<int64_t, int64_t>> offsets;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    Generator rng(seed);
    Tensor y = random_crop(5, 6, {{2, 2, 2, 2}})->apply(x, rng);
    REQUIRE(y.shape() == Shape{2, 5, 6});
    // Recover the offset (dy, dx) from the position of pixel (0,0,0) == 0 or by search.
    bool found = false;
    for (int64_t dy = -2; dy <= 2 && !found; ++dy)
      for (int64_t dx = -2; dx <= 2 && !found; ++dx) {
        bool match = true;
        for (int64_t c = 0; c < 2 && match; ++c)
          for (int64_t r = 0; r < 5 && match; ++r)
            for (int64_t q = 0; q < 6 && match; ++q) {
              const int64_t sr = r + dy, sq = q + dx;
              const float want = (sr < 0 || sr >= 5 || sq < 0 || sq >= 6) ? 0.0f : (float)((c * 5 + sr) * 6 + sq);
              match = y.data<float>()[(c * 5 + r) * 6 + q] == want;
            }
        if (match) {
          found = true;
          offsets.insert({dy, dx});
        }
      }
    CHECK(found);
  }
  CHECK(offsets.size() == 25);  // every one of the 5×5 placements occurs
  // Same seed, same crop.
  Generator a(7), b(7);
  Tensor ya = random_crop(4, 4, {{1, 1, 1, 1}})->apply(x, a), yb = random_crop(4, 4, {{1, 1, 1, 1}})->apply(x, b);
  CHECK(ya.to_vector() == yb.to_vector());
  // u8 images keep their dtype; fill is honoured; too large a crop is an error.
  Tensor u = Tensor::full({1, 2, 2}, 9, DType::u8);
  Generator r(1);
  Tensor yu = random_crop(6, 6, {{2, 2, 2, 2}, 200.0f})->apply(u, r);
  CHECK(yu.dtype() == DType::u8);
  CHECK(yu.data<uint8_t>()[0] == 200);
  check_error([&] { random_crop(9, 9, {{1, 1, 1, 1}})->apply(x, r); }, {"RandomCrop", "larger than"});
  // pad_if_needed pads the shortfall on both sides, as torchvision.
  CHECK(random_crop(9, 9, {.pad_if_needed = true})->apply(x, r).shape() == Shape{2, 9, 9});
}

TEST_CASE("transforms: RandomHorizontalFlip") {
  Tensor x = image_f32(1, 2, 3);
  Generator rng(3);
  CHECK(random_horizontal_flip(1.0f)->apply(x, rng).to_vector() == std::vector<float>{2, 1, 0, 5, 4, 3});
  CHECK(random_horizontal_flip(0.0f)->apply(x, rng).to_vector() == x.to_vector());
  int flipped = 0;
  for (uint64_t s = 0; s < 1000; ++s) {
    Generator g(s);
    flipped += random_horizontal_flip(0.5f)->apply(x, g).to_vector()[0] == 2.0f;
  }
  CHECK(flipped > 430);
  CHECK(flipped < 570);
}

TEST_CASE("transforms: Resize by the shorter side keeps torchvision's output size") {
  CHECK(resize_output_size(20, 30, 16) == std::array<int64_t, 2>{16, 24});
  CHECK(resize_output_size(33, 14, 10) == std::array<int64_t, 2>{23, 10});  // int(10 * 33 / 14) = 23
  CHECK(resize_output_size(7, 7, 5) == std::array<int64_t, 2>{5, 5});
  // Upsampling then resizing back to the same size is the identity only at
  // equal size; an equal-size resize returns the image unchanged.
  Tensor x = image_f32(1, 4, 4);
  Generator rng(0);
  CHECK(resize(4, 4)->apply(x, rng).to_vector() == x.to_vector());
  // Constant images stay constant (weights sum to 1), u8 too.
  Tensor c = Tensor::full({3, 5, 7}, 77, DType::u8);
  Tensor r = resize(11, 3)->apply(c, rng);
  for (int64_t i = 0; i < r.numel(); ++i) CHECK(r.data<uint8_t>()[i] == 77);
}

TEST_CASE("transforms: RandomResizedCrop samples scale and ratio as torchvision") {
  const std::array<double, 2> scale = {0.08, 1.0}, ratio = {3.0 / 4.0, 4.0 / 3.0};
  double min_area = 1, max_area = 0;
  for (uint64_t s = 0; s < 2000; ++s) {
    Generator rng(s);
    const auto p = random_resized_crop_params(100, 120, scale, ratio, rng);
    const int64_t i = p[0], j = p[1], h = p[2], w = p[3];
    REQUIRE(h > 0);
    REQUIRE(w > 0);
    REQUIRE(i >= 0);
    REQUIRE(j >= 0);
    REQUIRE(i + h <= 100);
    REQUIRE(j + w <= 120);
    const double area = (double)h * w / (100.0 * 120.0);
    min_area = std::min(min_area, area);
    max_area = std::max(max_area, area);
    // Rounding h and w moves the aspect ratio and area a little beyond the bounds.
    CHECK((double)w / h >= ratio[0] * 0.9);
    CHECK((double)w / h <= ratio[1] * 1.1);
    CHECK(area >= 0.08 * 0.85);
  }
  CHECK(min_area < 0.12);  // the whole range is sampled
  CHECK(max_area > 0.8);
  // A 1×50 strip never fits the ratio: the central fallback clamps it into range
  // (in_ratio 50 > 4/3: h = 1, w = round(1 · 4/3) = 1, centred).
  Generator rng(5);
  CHECK(random_resized_crop_params(1, 50, scale, ratio, rng) == std::array<int64_t, 4>{0, 24, 1, 1});
  // scale = ratio = 1 on a square image: the whole image, resized — the Resize golden path.
  Tensor x = image_f32(2, 8, 8);
  Tensor whole = random_resized_crop(5, 5, {1.0, 1.0}, {1.0, 1.0})->apply(x, rng);
  CHECK(whole.to_vector() == resize_bilinear(x, 5, 5).to_vector());
  Tensor y = random_resized_crop(12, 10)->apply(x, rng);
  CHECK(y.shape() == Shape{2, 12, 10});
}

TEST_CASE("transforms: errors name the transform and the problem") {
  Generator rng(0);
  Tensor u = Tensor::zeros({1, 4, 4}, DType::u8);
  Tensor f = Tensor::zeros({1, 4, 4});
  check_error([&] { normalize({0.5f}, {0.5f})->apply(u, rng); }, {"Normalize", "u8", "to_tensor"});
  check_error([&] { to_tensor()->apply(f, rng); }, {"ToTensor", "f32"});
  check_error([&] { normalize({0.5f}, {0.0f}); }, {"Normalize", "std"});
  check_error([&] { resize(0); }, {"Resize", "positive"});
  check_error([&] { center_crop(0, 3); }, {"CenterCrop", "positive"});
  check_error([&] { to_tensor()->apply(Tensor::zeros({4, 4}, DType::u8), rng); }, {"ToTensor", "CxHxW", "[4, 4]"});
  check_error([&] { grayscale(2); }, {"Grayscale", "1 or 3"});
  check_error([&] { grayscale()->apply(Tensor::zeros({2, 3, 3}), rng); }, {"Grayscale", "2"});
  check_error([&] { random_resized_crop(4, 4, {0.5, 0.1}); }, {"RandomResizedCrop", "scale"});
}
