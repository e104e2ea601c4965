// `lowbit infer --weights F.int8.safetensors IMAGE...`: the top classes of
// each image on the int8 engine. Images (PNG, JPEG, BMP, GIF, TGA, PNM) are
// decoded with the data module's decoder, resized (bilinear) to the model's
// input size when they differ, scaled to [0, 1] and normalized with the mean
// and std stored in the model file — what `lowbit eval` does to the test set.
// An image whose channel count differs from the model's is refused, not
// converted: a colour photo given to a grayscale model is a mistake worth
// hearing about.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/ops.h"
#include "data/formats.h"
#include "data/transforms.h"
#include "kernels/kernels.h"
#include "quant/engine/runner.h"
#include "core/strings.h"
#include "tools/common.h"
#include "core/json.h"

namespace lowbit::cli {

int cmd_infer(const Args& a) {
  a.reject_unknown();
  if (!a.has("--weights")) throw UsageError("--weights F.int8.safetensors is required");
  if (a.positional.empty()) throw UsageError("no images given (lowbit infer --weights F.int8.safetensors IMAGE...)");
  const int64_t top = a.get_int("--top");
  if (top < 1) throw UsageError("--top must be at least 1");
  const std::string weights = a.get("--weights", "");
  quant::engine::Runner runner(quant::engine::load(weights));
  const quant::engine::Model& m = runner.model();
  const int64_t c = m.input_shape[0], h = m.input_shape[1], w = m.input_shape[2];
  if (c != 1 && c != 3) throw UsageError(weights + " takes " + std::to_string(c) + "-channel input; images have 1 or 3");
  const Int8Classifier cls = int8_classifier(m, weights);
  const std::vector<float>& mean = cls.mean;
  const std::vector<float>& std_ = cls.std;
  const std::vector<std::string>& names = cls.names;
  // Decode, check and preprocess every image before running any.
  const data::TransformPtr prep = data::compose({data::to_tensor(), data::normalize(mean, std_)});
  Generator gen(0);
  std::vector<Tensor> batch;
  for (const std::string& path : a.positional) {
    const std::vector<uint8_t> bytes = data::read_file(path);
    // Converted to the channels the model takes, as torchvision's Grayscale /
    // PIL's convert("RGB") would, and said.
    const int have = data::image_channels(bytes.data(), bytes.size(), path);
    if (have != c)
      std::fprintf(stderr, "infer: %s is %s; %s for this %lld-channel model\n", printable(path).c_str(),
                   have == 1 ? "grayscale" : "RGB",
                   c == 1 ? "converted to grayscale (PIL's convert('L') weights)" : "its gray channel repeated as RGB",
                   (long long)c);
    Tensor img = data::decode_image(bytes.data(), bytes.size(), path, (int)c);
    if (img.shape()[1] != h || img.shape()[2] != w) img = data::resize_bilinear(img, h, w);
    batch.push_back(prep->apply(img, gen).unsqueeze(0));
  }
  const Tensor logits = runner.run(cat(batch, 0));
  const Tensor probs = softmax(logits, 1);
  const int64_t k = logits.shape()[1], shown = std::min(top, k);
  const bool json = a.has("--json");
  for (size_t i = 0; i < a.positional.size(); ++i) {
    std::vector<float> p(probs.data<float>() + (int64_t)i * k, probs.data<float>() + (int64_t)(i + 1) * k);
    std::vector<int64_t> idx((size_t)k);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) { return p[(size_t)x] > p[(size_t)y]; });
    auto name = [&](int64_t j) { return j < (int64_t)names.size() ? names[(size_t)j] : std::to_string(j); };
    if (json) {
      Json top = Json::array();
      for (int64_t j = 0; j < shown; ++j)
        top.push_back({{"class", idx[(size_t)j]},
                       {"name", name(idx[(size_t)j])},
                       {"probability", p[(size_t)idx[(size_t)j]]}});
      std::printf("%s\n", json_line({{"image", a.positional[i]}, {"top", top}}).c_str());
    } else {
      std::printf("%s\n", a.positional[i].c_str());
      for (int64_t j = 0; j < shown; ++j)
        std::printf("  %lld. %-14s %6.2f%%  (class %lld)\n", (long long)j + 1, printable(name(idx[(size_t)j]), 40).c_str(),
                    100.0 * p[(size_t)idx[(size_t)j]], (long long)idx[(size_t)j]);
    }
  }
  return 0;
}

}  // namespace lowbit::cli
