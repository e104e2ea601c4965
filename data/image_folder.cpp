// Image folders, as torchvision.datasets.ImageFolder: root/<class>/…/<image>.
// The file list is built once (so class indices and sample order are fixed
// and match ImageFolder's); images are decoded on get(), in the loader's
// worker threads.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "data/dataset.h"
#include "data/formats.h"

namespace fs = std::filesystem;

namespace lowbit::data {

namespace {

// What stb_image decodes; compared lower-cased, as ImageFolder does.
const char* const kExtensions[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".ppm", ".pgm", ".pnm"};

bool has_image_extension(const std::string& fname) {
  std::string lower = fname;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return (char)std::tolower(c); });
  for (const char* e : kExtensions) {
    const size_t n = std::char_traits<char>::length(e);
    if (lower.size() > n && lower.compare(lower.size() - n, n, e) == 0) return true;
  }
  return false;
}

std::string extension_list() {
  std::string s;
  for (const char* e : kExtensions) {
    if (!s.empty()) s += ' ';
    s += e;
  }
  return s;
}

class ImageFolderDataset final : public Dataset {
 public:
  ImageFolderDataset(const std::string& root, ColorMode mode) : root_(root), channels_(mode == ColorMode::rgb ? 3 : 1) {
    std::error_code ec;
    if (!fs::exists(root, ec)) fail(root, ": no such directory (image folder root)");
    if (!fs::is_directory(root, ec)) fail(root, ": not a directory (image folder root)");
    for (const auto& e : fs::directory_iterator(root, fs::directory_options::follow_directory_symlink)) {
      if (fs::is_directory(e.path(), ec)) classes_.push_back(e.path().filename().string());
    }
    // Python's sorted() on str: code-point order, which is byte order in UTF-8
    // (char_traits<char> compares as unsigned char).
    std::sort(classes_.begin(), classes_.end());
    if (classes_.empty()) fail(root, ": no class folders (expected ", root, "/<class>/<image>)");
    for (size_t c = 0; c < classes_.size(); ++c) add_class(fs::path(root) / classes_[c], (int)c);
  }
  int64_t size() const override { return (int64_t)files_.size(); }
  Sample get(int64_t i) const override {
    check(i);
    const std::string& path = files_[(size_t)i];
    const std::vector<uint8_t> bytes = read_file(path);
    return {decode_image(bytes.data(), bytes.size(), path, channels_), labels_[(size_t)i]};
  }
  int label(int64_t i) const override {
    check(i);
    return labels_[(size_t)i];
  }
  const std::vector<std::string>& class_names() const override { return classes_; }
  std::string describe(int64_t i) const override {
    check(i);
    return files_[(size_t)i];
  }

 private:
  void check(int64_t i) const {
    LOWBIT_CHECK(i >= 0 && i < size(), root_, ": index ", i, " out of range [0, ", size(), ")");
  }

  // ImageFolder walks sorted(os.walk(class_dir, followlinks=True)) and, in
  // each directory, sorted(file names): directories ordered by their path
  // string, then files by name within each.
  void add_class(const fs::path& dir, int label) {
    std::map<std::string, std::vector<std::string>> by_dir;  // sorted by path string
    by_dir[dir.string()];
    std::error_code ec;
    // Symbolic links are followed (as torchvision's followlinks=True), but one
    // that leads back into a folder already walked (a loop: class0/up -> ..)
    // or into another part of the data set (another class's images, which
    // would be labelled as this class) is refused.
    const fs::path root_real = fs::weakly_canonical(fs::path(root_)), class_real = fs::weakly_canonical(dir);
    auto inside = [](const fs::path& p, const fs::path& base) {
      const auto [b, p_it] = std::mismatch(base.begin(), base.end(), p.begin(), p.end());
      return b == base.end();
    };
    std::set<std::string> walked{class_real.string()};
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::path& p = it->path();
      if (fs::is_directory(p, ec)) {
        if (fs::is_symlink(p, ec)) {
          const fs::path target = fs::canonical(p, ec);
          if (ec) break;
          LOWBIT_CHECK(!walked.count(target.string()) && !inside(class_real, target), p.string(),
                       ": a symbolic link to ", target.string(), ", a folder this class already lists (a loop); remove it");
          LOWBIT_CHECK(!inside(target, root_real) || inside(target, class_real), p.string(), ": a symbolic link to ",
                       target.string(), ", elsewhere in the data set (its images would be labelled ",
                       dir.filename().string(), "); remove it");
        }
        walked.insert(fs::weakly_canonical(p, ec).string());
        by_dir[p.string()];
      } else if (has_image_extension(p.filename().string())) {
        by_dir[p.parent_path().string()].push_back(p.filename().string());
      }
    }
    if (ec) fail(dir.string(), ": cannot list (", ec.message(), ")");
    size_t found = 0;
    for (auto& [d, names] : by_dir) {
      std::sort(names.begin(), names.end());
      for (const std::string& n : names) {
        const std::string path = (fs::path(d) / n).string();
        if (fs::file_size(path, ec) == 0 && !ec) fail(path, ": empty file (0 bytes), not an image");
        files_.push_back(path);
        labels_.push_back(label);
        ++found;
      }
    }
    if (found == 0) fail(dir.string(), ": empty class folder (no files with extension ", extension_list(), ")");
  }

  std::string root_;
  int channels_;
  std::vector<std::string> classes_;
  std::vector<std::string> files_;
  std::vector<int> labels_;
};

}  // namespace

DatasetPtr load_image_folder(const std::string& root, ColorMode mode) {
  return std::make_shared<ImageFolderDataset>(root, mode);
}

}  // namespace lowbit::data
