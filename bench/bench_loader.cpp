// Loader throughput: Fashion-MNIST train through RandomCrop(28, padding 2) +
// RandomHorizontalFlip + ToTensor + Normalize, batches of 128, shuffled,
// for each worker count. bench/compare_loader.py runs this next to PyTorch's
// DataLoader and prints the ratio.
//
// usage: bench_loader [--data DIR] [--workers 1,2] [--batch 128] [--seconds 3]
//                     [--limit N] [--json]
// Timing: whole epochs (the dataset is loaded before the clock starts; each
// epoch's worker start-up is inside it), repeated until --seconds have
// passed; images/s = images delivered / elapsed. The consumer reads one
// value of every batch so nothing is optimised away.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/json.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"

using namespace lowbit;
using namespace lowbit::data;

namespace {

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "bench_loader: %s\nusage: bench_loader [--data DIR] [--workers 1,2] [--batch 128] "
                       "[--seconds 3] [--limit N] [--json]\n", why.c_str());
  std::exit(2);
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = s.find(',', pos);
    const std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    const long x = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || x < 0) usage("--workers: expected a list like 1,2, got '" + s + "'");
    v.push_back((int)x);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  std::vector<int> workers = {1, 2};
  int64_t batch = 128, limit_n = 0;
  double seconds = 3.0;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--data") dir = value();
    else if (a == "--workers") workers = parse_list(value());
    else if (a == "--batch") batch = std::atoll(value().c_str());
    else if (a == "--seconds") seconds = std::atof(value().c_str());
    else if (a == "--limit") limit_n = std::atoll(value().c_str());
    else if (a == "--json") json = true;
    else usage("unknown argument " + a);
  }
  if (batch <= 0 || seconds < 0) usage("--batch must be positive and --seconds non-negative");
  try {
    DatasetPtr ds = open_dataset(DatasetSpec("fashion-mnist", dir));
    if (limit_n > 0) ds = limit(ds, limit_n);
    const Normalization norm = default_normalization("fashion-mnist");
    TransformPtr tf = compose({random_crop(28, 2), random_horizontal_flip(), to_tensor(), normalize(norm.mean, norm.std)});
    if (!json)
      std::printf("lowbit loader, Fashion-MNIST train (%lld images): %s, batch %lld, shuffled\n",
                  (long long)ds->size(), tf->repr().c_str(), (long long)batch);
    for (int w : workers) {
      LoaderOptions opt;
      opt.batch_size = batch;
      opt.shuffle = true;
      opt.num_workers = w;
      opt.seed = 0;
      DataLoader loader(ds, opt, tf);
      int64_t images = 0, epochs = 0;
      double checksum = 0;
      const auto t0 = std::chrono::steady_clock::now();
      double elapsed = 0;
      do {
        for (const Batch& b : loader.epoch((uint64_t)epochs)) {
          images += b.images.size(0);
          checksum += b.images.data<float>()[0];
        }
        ++epochs;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      } while (elapsed < seconds);
      const double rate = (double)images / elapsed;
      if (json)
        std::printf("%s\n", json_line(Json{{"bench", "loader"}, {"framework", "lowbit"}, {"workers", w},
                                             {"batch", batch}, {"images", images}, {"epochs", epochs},
                                             {"seconds", elapsed}, {"images_per_s", rate}})
                               .c_str());
      else
        std::printf("  workers %d: %10.0f images/s  (%lld epochs, %.2f s, checksum %.3f)\n", w, rate,
                    (long long)epochs, elapsed, checksum);
      std::fflush(stdout);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_loader: %s\n", e.what());
    return 2;
  }
  return 0;
}
