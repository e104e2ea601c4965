// The int8 engine on committed model files, on every kernel path this build
// and CPU have: the same logits, bit for bit, as the reference path gave when
// the fixture was made (tests/fixtures/engine_files.safetensors: for each
// model an input batch "NAME.x" and the ref path's logits "NAME.y").
//
// It needs only core/, kernels/ and quant/engine/, so it is also built in the
// kernels-only aarch64 configuration and run under qemu on neon and neondot:
// there it proves the engine (packing, layouts, scratch, every op) on those
// paths, against logits computed on x86.
//
// Remake the fixture (after a deliberate change to the arithmetic):
//   LOWBIT_WRITE_ENGINE_FIXTURE=tests/fixtures/engine_files.safetensors build/tests/test_engine_files
// writes the ref path's logits for the models below instead of checking them.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/generator.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "quant/engine/model.h"
#include "quant/engine/runner.h"
#include "tests/quant/engine_paths.h"

using namespace lowbit;

namespace {

// The fuzz seeds (every op: conv, depthwise, add, max and average pooling,
// linear, dynamic linear) and a trained MobileNetV2 (width 0.25).
struct ModelFile {
  const char* name;
  const char* path;
  int64_t batch;
};
const ModelFile kModels[] = {
    {"tiny", LOWBIT_SEEDS_DIR "/int8/tiny.int8.safetensors", 3},
    {"branchy", LOWBIT_SEEDS_DIR "/int8/branchy.int8.safetensors", 3},
    {"dynamic", LOWBIT_SEEDS_DIR "/int8/dynamic.int8.safetensors", 5},
    {"mobilenet_v2", LOWBIT_FIXTURES_DIR "/mobilenet_v2_w025.int8.safetensors", 2},
};

}  // namespace

TEST_CASE("int8 engine: committed model files give the fixture's logits on every path, bit for bit") {
  const char* write_to = std::getenv("LOWBIT_WRITE_ENGINE_FIXTURE");
  std::vector<std::pair<std::string, Tensor>> out;
  const SafetensorsFile fixture =
      write_to ? SafetensorsFile{} : load_safetensors(LOWBIT_FIXTURES_DIR "/engine_files.safetensors");
  for (const ModelFile& f : kModels) {
    const std::string model = f.name;
    CAPTURE(model);
    const quant::engine::Model m = quant::engine::load(f.path);
    if (write_to) {
      Generator g(7);
      const Shape in = m.input_shape;
      const Tensor x = randn({f.batch, in[0], in[1], in[2]}, &g);
      const kernels::KernelTable ref = kernels::make_table(kernels::Isa::ref);
      out.emplace_back(std::string(f.name) + ".x", x);
      out.emplace_back(std::string(f.name) + ".y", quant::engine::Runner(m, &ref).run(x));
      continue;
    }
    const Tensor& x = fixture.get(std::string(f.name) + ".x");
    testing::check_engine_on_every_path(m, x, fixture.get(std::string(f.name) + ".y").to_vector(), model);
  }
  if (write_to) {
    save_safetensors(write_to, out, {{"generator", "LOWBIT_WRITE_ENGINE_FIXTURE=... test_engine_files"}});
    MESSAGE("wrote ", write_to);
  }
}
