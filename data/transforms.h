// Image transforms with torchvision's semantics (torchvision.transforms on
// tensors, v0.14): each takes one C×H×W image and returns a new one.
//
//   to_tensor            u8 → f32 / 255 (ToTensor)
//   normalize            (x - mean[c]) / std[c]; f32 only (Normalize)
//   random_crop          pad (constant fill), then a uniformly placed crop (RandomCrop)
//   random_horizontal_flip  with probability p (RandomHorizontalFlip)
//   resize               bilinear, align_corners=False, no antialias — torchvision's
//                        tensor Resize(antialias=False) = F.interpolate(mode="bilinear");
//                        shorter side to `size` (the longer one int(size·long/short))
//                        or exact (h, w). u8 input is computed in f32 and rounded
//                        half to even, as torchvision does.
//   center_crop          top = round((H - h) / 2) half to even (Python round),
//                        zero padding first when the crop is larger (CenterCrop)
//   random_resized_crop  torchvision's get_params: 10 tries of area ∈ scale·H·W and
//                        log-uniform aspect ∈ ratio, else the central fallback;
//                        then bilinear resize to (h, w) (RandomResizedCrop)
//   grayscale            0.2989 R + 0.587 G + 0.114 B in f32; u8 truncates toward
//                        zero like torchvision's .to(uint8); 1 or 3 output channels
//   compose              in order (Compose)
//
// Geometric transforms and grayscale accept u8 and f32; the output dtype is
// the input's. Randomness comes from the Generator handed in: the loader
// gives every sample its own stream keyed by (seed, epoch, sample index)
// (loader.h), so a sample's augmentation never depends on thread timing.
// Transforms are immutable and safe to share between threads.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/generator.h"
#include "core/tensor.h"
#include "data/dataset.h"

namespace lowbit::data {

class Transform {
 public:
  virtual ~Transform() = default;
  // `image`: C×H×W, u8 or f32, any strides.
  virtual Tensor apply(const Tensor& image, Generator& rng) const = 0;
  virtual std::string repr() const = 0;  // "RandomCrop(size=(28, 28), padding=(2, 2, 2, 2))"
};
using TransformPtr = std::shared_ptr<const Transform>;

TransformPtr to_tensor();
// mean/std with one entry per channel, or one entry for every channel.
TransformPtr normalize(std::vector<float> mean, std::vector<float> std);
TransformPtr random_crop(int64_t size, int64_t padding = 0);  // square crop, the same padding on all sides
struct RandomCropOptions {
  std::array<int64_t, 4> padding = {0, 0, 0, 0};  // left, top, right, bottom (torchvision's 4-tuple order)
  float fill = 0.0f;                               // constant padding value (rounded for u8)
  bool pad_if_needed = false;
};
TransformPtr random_crop(int64_t height, int64_t width, const RandomCropOptions& options);
TransformPtr random_horizontal_flip(float p = 0.5f);
TransformPtr resize(int64_t shorter_side);          // keeps the aspect ratio
TransformPtr resize(int64_t height, int64_t width);  // exact size
TransformPtr center_crop(int64_t height, int64_t width);
TransformPtr center_crop(int64_t size);
TransformPtr random_resized_crop(int64_t height, int64_t width, std::array<double, 2> scale = {0.08, 1.0},
                                 std::array<double, 2> ratio = {3.0 / 4.0, 4.0 / 3.0});
TransformPtr grayscale(int output_channels = 1);
TransformPtr compose(std::vector<TransformPtr> transforms);

// ---- the pieces, for tests and for code that wants them without a pipeline ----

// Bilinear resize of a C×H×W u8/f32 image (see `resize` above).
Tensor resize_bilinear(const Tensor& image, int64_t out_h, int64_t out_w);
// torchvision's output size for Resize(shorter_side) of an H×W image.
std::array<int64_t, 2> resize_output_size(int64_t h, int64_t w, int64_t shorter_side);
// Crop rows [top, top+h) and columns [left, left+w); parts outside the image are `fill`.
Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t h, int64_t w, float fill = 0.0f);
// RandomResizedCrop.get_params: {top, left, h, w} of the crop in an H×W image.
std::array<int64_t, 4> random_resized_crop_params(int64_t img_h, int64_t img_w, std::array<double, 2> scale,
                                                  std::array<double, 2> ratio, Generator& rng);

// The samples of `base` with each image passed through `t`, a deterministic
// transform (resize, center_crop; it gets a fixed Generator): what --resize
// and --center-crop make of a folder of images of mixed sizes, before the
// loader stacks them.
DatasetPtr with_transform(DatasetPtr base, TransformPtr t);

}  // namespace lowbit::data
