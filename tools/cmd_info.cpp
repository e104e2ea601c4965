// `lowbit info`: version, CPU features, chosen kernel paths, threads.
#include <cstdio>

#include "kernels/kernels.h"
#include "tools/cli.h"
#include "core/json.h"

namespace lowbit::cli {

int cmd_info(const Args& a) {
  a.reject_unknown();
  namespace k = lowbit::kernels;
  const k::CpuFeatures& f = k::cpu_features();
  const k::KernelTable& t = k::table();
  const bool json = a.has("--json");
  struct Feat { const char* name; bool on; };
  const Feat feats[] = {{"avx2", f.avx2},       {"fma", f.fma},         {"avx512f", f.avx512f},
                        {"avx512vnni", f.avx512vnni}, {"avxvnni", f.avxvnni}, {"amx-int8", f.amx_int8},
                        {"neon", f.neon},       {"dotprod", f.dotprod}};
  const k::Isa all[] = {k::Isa::ref, k::Isa::avx2, k::Isa::avxvnni, k::Isa::avx512vnni, k::Isa::neon, k::Isa::neondot};
  if (json) {
    Json features = Json::object();
    for (const Feat& x : feats) features[x.name] = x.on;
    const Json j = {{"version", LOWBIT_VERSION},
                    {"features", features},
                    {"isa", k::isa_name(t.isa)},
                    {"threads", k::num_threads()},
                    {"paths",
                     {{"f32_elementwise", t.f32.elementwise_path},
                      {"f32_gemm", t.f32.gemm_path},
                      {"f32_conv", t.f32.conv_path},
                      {"int8_gemm", t.q8.gemm_path},
                      {"int8_conv", t.q8.conv_path},
                      {"int8_depthwise", t.q8.depthwise_path},
                      {"int8_elementwise", t.q8.elementwise_path}}}};
    std::printf("%s\n", json_line(j).c_str());
    return 0;
  }
  std::printf("lowbit %s\n", LOWBIT_VERSION);
  std::printf("cpu features:");
  for (const Feat& x : feats) std::printf(" %s%s", x.on ? "+" : "-", x.name);
  std::printf("\nisa paths (built/available):");
  for (k::Isa i : all)
    std::printf(" %s(%s)", k::isa_name(i), k::isa_available(i) ? "yes" : (k::isa_built(i) ? "built, cpu lacks" : "not built"));
  std::printf("\nchosen: %s%s\n", k::isa_name(t.isa), std::getenv("LOWBIT_ISA") ? " (forced by LOWBIT_ISA)" : "");
  std::printf("  f32 elementwise: %s\n  f32 gemm:        %s\n  f32 conv:        %s\n", t.f32.elementwise_path,
              t.f32.gemm_path, t.f32.conv_path);
  std::printf("  int8 gemm:       %s\n  int8 conv:       %s\n  int8 depthwise:  %s\n  int8 helpers:    %s\n",
              t.q8.gemm_path, t.q8.conv_path, t.q8.depthwise_path, t.q8.elementwise_path);
  std::printf("threads: %d\n", k::num_threads());
  return 0;
}

}  // namespace lowbit::cli
