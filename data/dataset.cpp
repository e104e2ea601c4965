// Dataset plumbing shared by every format: file reading, gzip, subsets,
// seeded permutations, default normalisation constants and the
// --dataset/--data front door.
#include "data/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/generator.h"
#include "data/formats.h"

namespace fs = std::filesystem;

namespace lowbit::data {

std::string Dataset::describe(int64_t index) const { return "sample " + std::to_string(index); }

// ---------------------------------------------------------------- files

std::vector<uint8_t> read_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail(path, ": is a directory, expected a file");
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, ": cannot open (", std::strerror(errno), ")");
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  const bool bad = std::ferror(f);
  const int err = errno;
  std::fclose(f);
  if (bad) fail(path, ": read error (", std::strerror(err), ")");
  return bytes;
}

std::vector<uint8_t> gunzip_if_gzip(std::vector<uint8_t> bytes, const std::string& name, size_t max_output) {
  if (bytes.size() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b) return bytes;
  z_stream zs{};
  // 15 + 16: a gzip wrapper only (the magic said gzip; no raw or zlib streams).
  if (inflateInit2(&zs, 15 + 16) != Z_OK) fail(name, ": zlib inflateInit2 failed");
  std::vector<uint8_t> out;
  // The gzip trailer's ISIZE (size mod 2^32 of the last member) is a hint
  // only, believed up to deflate's best ratio (1032:1) so that a corrupt
  // trailer cannot make a tiny file reserve gigabytes.
  if (bytes.size() >= 18) {
    const uint8_t* t = bytes.data() + bytes.size() - 4;
    size_t hint = t[0] | (t[1] << 8) | (t[2] << 16) | ((size_t)t[3] << 24);
    out.reserve(std::min({hint, max_output, bytes.size() * 1032}));
  }
  size_t in_pos = 0;
  const auto cleanup_fail = [&](auto... msg) {
    inflateEnd(&zs);
    fail(name, ": ", msg...);
  };
  for (;;) {
    zs.next_in = bytes.data() + in_pos;
    zs.avail_in = (uInt)std::min<size_t>(bytes.size() - in_pos, 1u << 30);
    int rc = Z_OK;
    while (rc == Z_OK) {
      if (out.size() == out.capacity()) out.reserve(std::max<size_t>(out.capacity() * 2, 1 << 16));
      const size_t room = std::min(out.capacity() - out.size(), max_output - std::min(max_output, out.size()));
      if (room == 0) {
        // At the cap: fine only if the stream ends without another byte.
        uint8_t probe;
        zs.next_out = &probe;
        zs.avail_out = 1;
        rc = inflate(&zs, Z_NO_FLUSH);
        if (zs.avail_out == 0) cleanup_fail("gzip content exceeds ", max_output, " bytes");
        if (rc == Z_BUF_ERROR && zs.avail_in == 0)
          cleanup_fail("truncated gzip stream (ends after ", out.size(), " decompressed bytes)");
        if (rc == Z_BUF_ERROR) rc = Z_OK;
        continue;
      }
      const size_t before = out.size();
      out.resize(out.capacity());
      zs.next_out = out.data() + before;
      zs.avail_out = (uInt)std::min<size_t>(room, 1u << 30);
      const uInt avail_before = zs.avail_out;
      rc = inflate(&zs, Z_NO_FLUSH);
      out.resize(before + (avail_before - zs.avail_out));
      if (rc == Z_BUF_ERROR && zs.avail_in == 0)
        cleanup_fail("truncated gzip stream (ends after ", out.size(), " decompressed bytes)");
      if (rc == Z_BUF_ERROR) rc = Z_OK;  // output full: grow and go on
    }
    if (rc != Z_STREAM_END)
      cleanup_fail("corrupt gzip data (zlib: ", zs.msg ? zs.msg : "error " + std::to_string(rc), ")");
    in_pos = (size_t)(zs.next_in - bytes.data());
    if (in_pos == bytes.size()) break;
    // Another member follows (gzip -d concatenates them), else garbage.
    if (bytes.size() - in_pos < 2 || bytes[in_pos] != 0x1f || bytes[in_pos + 1] != 0x8b)
      cleanup_fail(bytes.size() - in_pos, " bytes of trailing garbage after the gzip stream");
    inflateReset(&zs);
  }
  inflateEnd(&zs);
  return out;
}

// ---------------------------------------------------------------- subsets

namespace {

class SubsetDataset final : public Dataset {
 public:
  SubsetDataset(DatasetPtr base, std::vector<int64_t> indices) : base_(std::move(base)), idx_(std::move(indices)) {
    LOWBIT_CHECK(base_ != nullptr, "subset: null dataset");
    for (int64_t i : idx_)
      LOWBIT_CHECK(i >= 0 && i < base_->size(), "subset: index ", i, " out of range for a dataset of ",
                   base_->size(), " samples");
  }
  int64_t size() const override { return (int64_t)idx_.size(); }
  Sample get(int64_t i) const override { return base_->get(map(i)); }
  int label(int64_t i) const override { return base_->label(map(i)); }
  const std::vector<std::string>& class_names() const override { return base_->class_names(); }
  std::string describe(int64_t i) const override { return base_->describe(map(i)); }

 private:
  int64_t map(int64_t i) const {
    LOWBIT_CHECK(i >= 0 && i < size(), "subset: index ", i, " out of range [0, ", size(), ")");
    return idx_[(size_t)i];
  }
  DatasetPtr base_;
  std::vector<int64_t> idx_;
};

}  // namespace

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p((size_t)std::max<int64_t>(n, 0));
  for (int64_t i = 0; i < n; ++i) p[(size_t)i] = i;
  Generator g(seed);
  // Fisher–Yates; j uniform in [0, i] by a 64×64→128 multiply-high (bias < n/2^64).
  for (int64_t i = n - 1; i > 0; --i) {
    const uint64_t r = g.at((uint64_t)(n - 1 - i));
    const int64_t j = (int64_t)(((unsigned __int128)r * (uint64_t)(i + 1)) >> 64);
    std::swap(p[(size_t)i], p[(size_t)j]);
  }
  return p;
}

DatasetPtr subset(DatasetPtr base, std::vector<int64_t> indices) {
  return std::make_shared<SubsetDataset>(std::move(base), std::move(indices));
}

DatasetPtr limit(DatasetPtr base, int64_t n, uint64_t seed) {
  LOWBIT_CHECK(base != nullptr, "limit: null dataset");
  LOWBIT_CHECK(n > 0, "limit: N must be positive, got ", n);
  if (n >= base->size()) return base;
  std::vector<int64_t> p = seeded_permutation(base->size(), seed);
  p.resize((size_t)n);
  std::sort(p.begin(), p.end());
  return subset(std::move(base), std::move(p));
}

std::pair<DatasetPtr, DatasetPtr> split_train_val(DatasetPtr base, double val_fraction, uint64_t seed) {
  LOWBIT_CHECK(base != nullptr, "split_train_val: null dataset");
  LOWBIT_CHECK(val_fraction > 0.0 && val_fraction < 1.0, "split_train_val: validation fraction must be in (0, 1), got ",
               val_fraction);
  const int64_t n = base->size();
  const int64_t n_val = (int64_t)std::llround(val_fraction * (double)n);
  LOWBIT_CHECK(n_val > 0 && n_val < n, "split_train_val: fraction ", val_fraction, " of ", n,
               " samples leaves an empty side");
  std::vector<int64_t> p = seeded_permutation(n, seed);
  std::vector<int64_t> val(p.begin(), p.begin() + n_val), train(p.begin() + n_val, p.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return {subset(base, std::move(train)), subset(base, std::move(val))};
}

// ---------------------------------------------------------------- names

Normalization default_normalization(const std::string& name) {
  if (name == "fashion-mnist") return {{0.2860f}, {0.3530f}};
  if (name == "mnist") return {{0.1307f}, {0.3081f}};
  if (name == "kmnist") return {{0.1918f}, {0.3483f}};
  if (name == "cifar10") return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  if (name == "cifar100") return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}};
  if (name == "imagefolder") return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  fail("unknown dataset '", name, "' (known: fashion-mnist, mnist, kmnist, cifar10, cifar100, imagefolder)");
}

std::string default_data_dir(const std::string& name) {
  if (name == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  return "";
}

static const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> k = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return k;
}

DatasetPtr open_dataset(const DatasetSpec& spec) {
  default_normalization(spec.name);  // rejects unknown names with the list of known ones
  std::string dir = spec.dir.empty() ? default_data_dir(spec.name) : spec.dir;
  if (dir.empty()) fail("--dataset ", spec.name, ": no default location, give --data DIR");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": no such directory (data for --dataset ", spec.name, ")");
  if (spec.name == "fashion-mnist") return load_idx_dir(dir, spec.train, fashion_mnist_classes());
  if (spec.name == "mnist")
    return load_idx_dir(dir, spec.train, {"0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
                                          "6 - six", "7 - seven", "8 - eight", "9 - nine"});
  if (spec.name == "kmnist") return load_idx_dir(dir, spec.train, {"o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"});
  if (spec.name == "cifar10") return load_cifar10(dir, spec.train);
  if (spec.name == "cifar100") return load_cifar100(dir, spec.train, spec.cifar100_labels);
  // imagefolder
  if (spec.train) {
    const fs::path t = fs::path(dir) / "train";
    return load_image_folder(fs::is_directory(t, ec) ? t.string() : dir, spec.color);
  }
  for (const char* sub : {"val", "test"}) {
    const fs::path v = fs::path(dir) / sub;
    if (fs::is_directory(v, ec)) return load_image_folder(v.string(), spec.color);
  }
  fail(dir, ": no val/ or test/ folder for the evaluation split of --dataset imagefolder (a flat DIR/CLASS/IMAGE "
       "folder: train with --val-split 0.1 to validate on a held-out tenth of it)");
}

}  // namespace lowbit::data
