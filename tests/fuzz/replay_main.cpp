// A fuzz-like driver for builds without libFuzzer (the project's own
// compiler, g++): links a fuzz target's LLVMFuzzerTestOneInput and runs it on
// every file of the given corpus folders, then on deterministic mutations of
// each: truncations at 24 lengths, 96 single-bit flips, 64 bytes set to edge
// values (0x00, 0xff, 0x7f, 0x80) and the first 256 bytes each incremented
// (headers hold most of the structure). tools/run builds these under ASan +
// UBSan and replays the committed seeds (tests/fuzz/seeds/) in CI; a crash, a
// trap or an escaping exception fails the run.
//
//   replay_int8 tests/fuzz/seeds/int8 [more folders or files]
// prints "lowbit-tests: replay_int8 1 passed, 0 failed, 0 skipped" after a line
// with the inputs and executions.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int64_t g_runs = 0;

void run(const std::vector<uint8_t>& bytes) {
  // A copy of exactly the input's size, so ASan sees any read past its end.
  std::vector<uint8_t> copy(bytes);
  LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
  ++g_runs;
}

void replay(const std::vector<uint8_t>& seed, uint64_t rng) {
  run(seed);
  const size_t n = seed.size();
  for (size_t k = 0; k < 24; ++k) {  // truncations: the first bytes, then fractions of the file
    const size_t len = k < 8 ? k : n * (k - 7) / 17;
    if (len < n) run(std::vector<uint8_t>(seed.begin(), seed.begin() + (ptrdiff_t)len));
  }
  if (n == 0) return;
  for (int i = 0; i < 96; ++i) {
    std::vector<uint8_t> m = seed;
    const uint64_t r = splitmix64(rng);
    m[(size_t)(r % n)] ^= (uint8_t)(1u << ((r >> 32) % 8));
    run(m);
  }
  static const uint8_t kEdges[] = {0x00, 0xff, 0x7f, 0x80};
  for (int i = 0; i < 64; ++i) {
    std::vector<uint8_t> m = seed;
    const uint64_t r = splitmix64(rng);
    m[(size_t)(r % n)] = kEdges[(r >> 32) % 4];
    run(m);
  }
  for (size_t i = 0; i < std::min<size_t>(n, 256); ++i) {
    std::vector<uint8_t> m = seed;
    ++m[i];
    run(m);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string name = argv[0];
  name = name.substr(name.find_last_of('/') + 1);
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p = argv[i];
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (std::filesystem::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "%s: %s: no such file or folder\n", name.c_str(), argv[i]);
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "%s: no corpus files given (usage: %s FOLDER_OR_FILE...)\n", name.c_str(), name.c_str());
    std::printf("lowbit-tests: %s 0 passed, 1 failed, 0 skipped\n", name.c_str());
    return 1;
  }
  uint64_t rng = 1;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<uint8_t> seed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    replay(seed, splitmix64(rng));
  }
  std::printf("%s: %zu corpus files, %lld executions (the files and their mutations), no crash\n", name.c_str(),
              files.size(), (long long)g_runs);
  std::printf("lowbit-tests: %s 1 passed, 0 failed, 0 skipped\n", name.c_str());
  return 0;
}
