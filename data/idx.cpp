// IDX files (LeCun's MNIST format, also Fashion-MNIST and KMNIST): a 4-byte
// magic 00 00 <type> <ndim>, ndim big-endian u32 sizes, then the array. Only
// type 0x08 (unsigned byte) occurs in these datasets and only it is read.
#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data/dataset.h"
#include "data/formats.h"

namespace fs = std::filesystem;

namespace lowbit::data {

static const char* idx_type_name(uint8_t t) {
  switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return nullptr;
  }
}

IdxArray parse_idx(const std::vector<uint8_t>& b, const std::string& name) {
  if (b.empty()) fail(name, ": empty file (0 bytes), not an IDX file");
  if (b.size() < 4) fail(name, ": truncated IDX header (", b.size(), " bytes, the magic number alone is 4)");
  const uint32_t magic = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08X", magic);
  if (b[0] != 0 || b[1] != 0 || idx_type_name(b[2]) == nullptr || b[3] == 0)
    fail(name, ": bad magic number ", hex, " (an IDX file starts 0x00000801 for labels, 0x00000803 for images)");
  if (b[2] != 0x08)
    fail(name, ": IDX element type ", idx_type_name(b[2]), " (magic ", hex, ") is not supported, only unsigned byte");
  const int ndim = b[3];
  const size_t header = 4 + 4 * (size_t)ndim;
  if (b.size() < header)
    fail(name, ": truncated IDX header (", b.size(), " bytes, ", ndim, " dimensions need ", header, ")");
  IdxArray a;
  a.data_offset = header;
  unsigned __int128 total = 1;
  for (int d = 0; d < ndim; ++d) {
    const uint8_t* p = b.data() + 4 + 4 * d;
    const uint32_t s = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    a.dims.push_back(s);
    total *= s;
    if (total > ((unsigned __int128)1 << 62)) total = (unsigned __int128)1 << 62;  // saturate: far beyond any file
  }
  std::string dims;
  for (size_t d = 0; d < a.dims.size(); ++d) {
    if (d) dims += 'x';
    dims += std::to_string(a.dims[d]);
  }
  const size_t have = b.size() - header;
  if ((unsigned __int128)have < total)
    fail(name, ": truncated: the header promises ", dims, " = ", (unsigned long long)total, " bytes of data, the file holds ",
         have);
  if ((unsigned __int128)have > total)
    fail(name, ": ", have - (size_t)total, " bytes after the ", dims, " array the header describes");
  return a;
}

namespace {

class IdxDataset final : public Dataset {
 public:
  IdxDataset(const std::string& images_path, const std::string& labels_path, std::vector<std::string> names)
      : images_path_(images_path), classes_(std::move(names)) {
    std::vector<uint8_t> img = gunzip_if_gzip(read_file(images_path), images_path);
    IdxArray ia = parse_idx(img, images_path);
    if (ia.dims.size() != 3)
      fail(images_path, ": an images file has 3 dimensions (count, rows, columns), this one has ", ia.dims.size(),
           ia.dims.size() == 1 ? " (is it a labels file?)" : "");
    if (ia.dims[1] == 0 || ia.dims[2] == 0) fail(images_path, ": zero-size images (", ia.dims[1], "x", ia.dims[2], ")");
    std::vector<uint8_t> lab = gunzip_if_gzip(read_file(labels_path), labels_path);
    IdxArray la = parse_idx(lab, labels_path);
    if (la.dims.size() != 1)
      fail(labels_path, ": a labels file has 1 dimension (count), this one has ", la.dims.size(),
           la.dims.size() == 3 ? " (is it an images file?)" : "");
    n_ = ia.dims[0];
    h_ = ia.dims[1];
    w_ = ia.dims[2];
    if (la.dims[0] != n_)
      fail(images_path, ": holds ", n_, " images but ", labels_path, " holds ", la.dims[0], " labels");
    if (n_ == 0) fail(images_path, ": holds no images");
    pixels_.assign(img.begin() + (std::ptrdiff_t)ia.data_offset, img.end());
    labels_.assign(lab.begin() + (std::ptrdiff_t)la.data_offset, lab.end());
    const int max_label = *std::max_element(labels_.begin(), labels_.end());
    if (classes_.empty()) {
      for (int c = 0; c <= max_label; ++c) classes_.push_back(std::to_string(c));
    } else if (max_label >= (int)classes_.size()) {
      const auto at = std::find(labels_.begin(), labels_.end(), (uint8_t)max_label) - labels_.begin();
      fail(labels_path, ": label ", max_label, " at index ", at, " is out of range for ", classes_.size(), " classes");
    }
  }
  int64_t size() const override { return n_; }
  Sample get(int64_t i) const override {
    check(i);
    Tensor t = Tensor::empty({1, h_, w_}, DType::u8);
    std::memcpy(t.data<uint8_t>(), pixels_.data() + (size_t)(i * h_ * w_), (size_t)(h_ * w_));
    return {t, labels_[(size_t)i]};
  }
  int label(int64_t i) const override {
    check(i);
    return labels_[(size_t)i];
  }
  const std::vector<std::string>& class_names() const override { return classes_; }
  std::string describe(int64_t i) const override { return images_path_ + " image " + std::to_string(i); }

 private:
  void check(int64_t i) const {
    LOWBIT_CHECK(i >= 0 && i < n_, images_path_, ": index ", i, " out of range [0, ", n_, ")");
  }
  std::string images_path_;
  std::vector<std::string> classes_;
  int64_t n_ = 0, h_ = 0, w_ = 0;
  std::vector<uint8_t> pixels_;  // n×h×w
  std::vector<uint8_t> labels_;  // n
};

}  // namespace

DatasetPtr load_idx(const std::string& images_path, const std::string& labels_path, std::vector<std::string> names) {
  return std::make_shared<IdxDataset>(images_path, labels_path, std::move(names));
}

DatasetPtr load_idx_dir(const std::string& dir, bool train, std::vector<std::string> names) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": no such directory (expected IDX files)");
  const std::string split = train ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    for (const char* ext : {".gz", ""}) {
      fs::path p = fs::path(dir) / (stem + ext);
      if (fs::exists(p, ec)) return p.string();
    }
    fail(dir, ": no ", stem, " or ", stem, ".gz (IDX ", split, " split)");
  };
  const std::string images = find(split + "-images-idx3-ubyte");
  const std::string labels = find(split + "-labels-idx1-ubyte");
  return load_idx(images, labels, std::move(names));
}

}  // namespace lowbit::data
