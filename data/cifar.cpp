// CIFAR-10 / CIFAR-100, "binary version" (cs.toronto.edu/~kriz/cifar.html):
// fixed-size records, no header, no magic. A record is the label byte(s)
// then 3072 pixels: 1024 red, 1024 green, 1024 blue, each 32×32 row-major —
// already C×H×W. Validation is therefore by size (whole records only) and
// label range.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/dataset.h"
#include "data/formats.h"

namespace fs = std::filesystem;

namespace lowbit::data {

namespace {
constexpr int64_t kSide = 32;
constexpr size_t kPixels = 3 * kSide * kSide;

const std::vector<std::string> kCifar10Names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};
const std::vector<std::string> kCifar100Coarse = {
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables", "household_electrical_devices",
    "household_furniture", "insects", "large_carnivores", "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes", "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
    "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2"};
const std::vector<std::string> kCifar100Fine = {
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm"};

// Non-empty lines of a names file, or `fallback` when the file is absent.
std::vector<std::string> read_names(const fs::path& p, const std::vector<std::string>& fallback) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return fallback;
  std::vector<uint8_t> bytes = read_file(p.string());
  std::vector<std::string> names;
  std::string line;
  for (uint8_t c : bytes) {
    if (c == '\n') {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) names.push_back(line);
      line.clear();
    } else {
      line += (char)c;
    }
  }
  if (!line.empty()) names.push_back(line);
  if (names.size() != fallback.size())
    fail(p.string(), ": lists ", names.size(), " class names, expected ", fallback.size());
  return names;
}

class CifarDataset final : public Dataset {
 public:
  CifarDataset(std::vector<std::string> files, int label_bytes, int label_index, std::vector<std::string> names)
      : classes_(std::move(names)) {
    for (const std::string& f : files) {
      const size_t before = labels_.size();
      parse_cifar(read_file(f), f, label_bytes, label_index, (int)classes_.size(), pixels_, labels_);
      file_start_.push_back((int64_t)before);
      files_.push_back(f);
    }
  }
  int64_t size() const override { return (int64_t)labels_.size(); }
  Sample get(int64_t i) const override {
    check(i);
    Tensor t = Tensor::empty({3, kSide, kSide}, DType::u8);
    std::memcpy(t.data<uint8_t>(), pixels_.data() + (size_t)i * kPixels, kPixels);
    return {t, labels_[(size_t)i]};
  }
  int label(int64_t i) const override {
    check(i);
    return labels_[(size_t)i];
  }
  const std::vector<std::string>& class_names() const override { return classes_; }
  std::string describe(int64_t i) const override {
    const size_t f = (size_t)(std::upper_bound(file_start_.begin(), file_start_.end(), i) - file_start_.begin()) - 1;
    return files_[f] + " record " + std::to_string(i - file_start_[f]);
  }

 private:
  void check(int64_t i) const {
    LOWBIT_CHECK(i >= 0 && i < size(), "CIFAR dataset (", files_.front(), "...): index ", i, " out of range [0, ",
                 size(), ")");
  }
  std::vector<std::string> classes_;
  std::vector<std::string> files_;
  std::vector<int64_t> file_start_;  // first sample index of each file
  std::vector<uint8_t> pixels_;      // n×3×32×32
  std::vector<uint8_t> labels_;
};

// `dir` itself if it holds `probe`, else dir/<sub> if that does.
fs::path locate(const std::string& dir, const char* sub, const std::string& probe, const char* what) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": no such directory (expected ", what, " binary files)");
  if (fs::exists(fs::path(dir) / probe, ec)) return dir;
  if (fs::exists(fs::path(dir) / sub / probe, ec)) return fs::path(dir) / sub;
  fail(dir, ": no ", probe, " here or in ", sub, "/ (", what, " binary version)");
}

}  // namespace

void parse_cifar(const std::vector<uint8_t>& b, const std::string& name, int label_bytes, int label_index,
                 int num_classes, std::vector<uint8_t>& pixels, std::vector<uint8_t>& labels) {
  LOWBIT_CHECK(label_bytes >= 1 && label_index >= 0 && label_index < label_bytes, name,
               ": parse_cifar: bad label layout");
  const size_t rec = (size_t)label_bytes + kPixels;
  if (b.empty()) fail(name, ": empty file (0 bytes), not a CIFAR batch");
  if (b.size() % rec != 0)
    fail(name, ": truncated or not CIFAR: ", b.size(), " bytes is not a whole number of ", rec, "-byte records (",
         b.size() / rec, " records and ", b.size() % rec, " bytes left over)");
  const size_t n = b.size() / rec;
  const char* kind = label_bytes == 1 ? "CIFAR-10" : "CIFAR-100";
  for (size_t r = 0; r < n; ++r) {
    const int lab = b[r * rec + (size_t)label_index];
    if (lab >= num_classes)
      fail(name, ": record ", r, " has label ", lab, ", out of range for ", num_classes, " classes (is this a ", kind,
           " file?)");
  }
  pixels.reserve(pixels.size() + n * kPixels);
  labels.reserve(labels.size() + n);
  for (size_t r = 0; r < n; ++r) {
    const uint8_t* p = b.data() + r * rec;
    labels.push_back(p[label_index]);
    pixels.insert(pixels.end(), p + label_bytes, p + rec);
  }
}

DatasetPtr load_cifar10(const std::string& dir, bool train) {
  std::vector<std::string> files;
  fs::path root;
  if (train) {
    root = locate(dir, "cifar-10-batches-bin", "data_batch_1.bin", "CIFAR-10");
    // data_batch_<k>.bin in numeric order; a gap in 1..N is an error, not a skip.
    std::vector<int> ks;
    for (const auto& e : fs::directory_iterator(root)) {
      const std::string f = e.path().filename().string();
      const std::string pre = "data_batch_", suf = ".bin";
      if (f.size() <= pre.size() + suf.size() || f.compare(0, pre.size(), pre) != 0 ||
          f.compare(f.size() - suf.size(), suf.size(), suf) != 0)
        continue;
      const std::string num = f.substr(pre.size(), f.size() - pre.size() - suf.size());
      if (num.size() > 6 || num.find_first_not_of("0123456789") != std::string::npos) continue;
      ks.push_back(std::stoi(num));
    }
    std::sort(ks.begin(), ks.end());
    for (size_t k = 0; k < ks.size(); ++k) {
      if (ks[k] != (int)k + 1)
        fail((root / ("data_batch_" + std::to_string(k + 1) + ".bin")).string(),
             ": missing, but data_batch_", ks.back(), ".bin exists (CIFAR-10 batches are numbered from 1)");
      files.push_back((root / ("data_batch_" + std::to_string(ks[k]) + ".bin")).string());
    }
  } else {
    root = locate(dir, "cifar-10-batches-bin", "test_batch.bin", "CIFAR-10");
    files.push_back((root / "test_batch.bin").string());
  }
  return std::make_shared<CifarDataset>(files, 1, 0, read_names(root / "batches.meta.txt", kCifar10Names));
}

DatasetPtr load_cifar100(const std::string& dir, bool train, CifarLabels labels) {
  const std::string file = train ? "train.bin" : "test.bin";
  const fs::path root = locate(dir, "cifar-100-binary", file, "CIFAR-100");
  // Record layout: <coarse label> <fine label> <pixels>.
  if (labels == CifarLabels::coarse)
    return std::make_shared<CifarDataset>(std::vector<std::string>{(root / file).string()}, 2, 0,
                                          read_names(root / "coarse_label_names.txt", kCifar100Coarse));
  return std::make_shared<CifarDataset>(std::vector<std::string>{(root / file).string()}, 2, 1,
                                        read_names(root / "fine_label_names.txt", kCifar100Fine));
}

}  // namespace lowbit::data
