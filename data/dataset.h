// Datasets: indexable collections of (image, label) samples, as
// torch.utils.data.Dataset. Images come out as u8 C×H×W tensors, exactly as
// stored (transforms.h turns them into normalised f32); labels are class
// indices into class_names().
//
// Formats (every reader rejects bad input with one lowbit::Error line that
// names the file and the reason; nothing is skipped silently):
//   IDX    MNIST, Fashion-MNIST, KMNIST…: <split>-images-idx3-ubyte and
//          <split>-labels-idx1-ubyte, plain or gzip; split "train" or "t10k".
//   CIFAR  binary version: CIFAR-10 data_batch_*.bin / test_batch.bin
//          (1 label byte + 3072 pixel bytes per record), CIFAR-100
//          train.bin / test.bin (coarse byte, fine byte, 3072 pixel bytes).
//   Folder root/<class>/<image> as torchvision's ImageFolder: classes are the
//          sub-folders sorted by name (byte order, as Python's sorted()),
//          images found recursively and sorted the way ImageFolder's
//          sorted(os.walk()) does; decoded with stb_image at get() time.
//
// get(i) must be safe to call from several threads at once (the loader's
// workers do); every dataset here is immutable after construction.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace lowbit::data {

struct Sample {
  Tensor image;  // C×H×W, u8 as stored (f32 once a ToTensor transform ran)
  int label = 0;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t index) const = 0;  // Error if index is out of range
  virtual const std::vector<std::string>& class_names() const = 0;
  // Where sample `index` comes from, for error messages ("<file> image 17").
  virtual std::string describe(int64_t index) const;
  // Label of sample `index` without decoding the image (splits, class counts).
  virtual int label(int64_t index) const { return get(index).label; }
  int64_t num_classes() const { return (int64_t)class_names().size(); }
};
using DatasetPtr = std::shared_ptr<const Dataset>;

// ---- IDX (MNIST family) -------------------------------------------------------

// images: N×H×W u8 IDX file, labels: N u8 IDX file; either may be gzip.
// class_names empty → "0".."K-1" with K = largest label + 1.
DatasetPtr load_idx(const std::string& images_path, const std::string& labels_path,
                    std::vector<std::string> class_names = {});
// The standard file names in `dir`: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
DatasetPtr load_idx_dir(const std::string& dir, bool train, std::vector<std::string> class_names = {});

// ---- CIFAR binary ---------------------------------------------------------------

enum class CifarLabels { fine, coarse };  // CIFAR-100 only
// `dir` is the folder holding the .bin files (or its parent holding
// cifar-10-batches-bin/ or cifar-100-binary/). Class names come from
// batches.meta.txt / fine_label_names.txt / coarse_label_names.txt when present.
DatasetPtr load_cifar10(const std::string& dir, bool train);
DatasetPtr load_cifar100(const std::string& dir, bool train, CifarLabels labels = CifarLabels::fine);

// ---- image folders --------------------------------------------------------------

enum class ColorMode { rgb, grayscale };
// Extensions (case-insensitive): .png .jpg .jpeg .bmp .gif .tga .ppm .pgm .pnm
// (stb_image's PSD, HDR and PIC decoders are compiled out). Grayscale uses
// PIL's convert("L") weights (ITU-R 601-2, rounded), so a gray image read
// back as grayscale is unchanged; RGB drops alpha and repeats a gray channel
// three times (PIL's convert("RGB")).
DatasetPtr load_image_folder(const std::string& root, ColorMode mode = ColorMode::rgb);

// ---- subsets --------------------------------------------------------------------

// The samples base[indices[k]] (a view: nothing is copied).
DatasetPtr subset(DatasetPtr base, std::vector<int64_t> indices);
// --limit N: N samples chosen by a permutation seeded with `seed`, kept in
// ascending index order (so a class-sorted folder still gives every class).
// N >= size gives the dataset itself.
DatasetPtr limit(DatasetPtr base, int64_t n, uint64_t seed = 0);
// Deterministic train/validation split: a seeded permutation; the first
// round(val_fraction * size) indices (sorted) are validation, the rest
// (sorted) train. Same seed → same split on every machine.
std::pair<DatasetPtr, DatasetPtr> split_train_val(DatasetPtr base, double val_fraction, uint64_t seed = 0);
// The seeded permutation used by limit, split and the loader's shuffle.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

// ---- names, defaults ----------------------------------------------------------------

struct Normalization {
  std::vector<float> mean, std;
};
// PyTorch users' constants (DESIGN.md): "fashion-mnist", "mnist", "kmnist",
// "cifar10", "cifar100", "imagefolder" (ImageNet's). Error for another name.
Normalization default_normalization(const std::string& dataset_name);
// Default data location of a dataset name ("" when there is none):
// fashion-mnist → /usr/share/datasets/fashion-mnist (Debian dataset-fashion-mnist).
std::string default_data_dir(const std::string& dataset_name);

struct DatasetSpec {
  DatasetSpec(std::string name_ = "fashion-mnist", std::string dir_ = "") : name(std::move(name_)), dir(std::move(dir_)) {}
  std::string name;                    // fashion-mnist|mnist|kmnist|cifar10|cifar100|imagefolder
  std::string dir;                     // empty → default_data_dir(name)
  bool train = true;
  CifarLabels cifar100_labels = CifarLabels::fine;
  ColorMode color = ColorMode::rgb;    // imagefolder only
};
// The --dataset/--data front door. imagefolder: root/train for train and
// root/val (or root/test) otherwise.
DatasetPtr open_dataset(const DatasetSpec& spec);

}  // namespace lowbit::data
