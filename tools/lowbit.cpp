// The `lowbit` command line tool. Exit codes: 0 success, 2 bad usage or bad
// input (one-line reason on stderr), 1 internal failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include <unistd.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "tools/cli.h"
#include "tools/options.h"

namespace lowbit::cli {

// ---- parser ------------------------------------------------------------------
// Every command's options go through here; what each scope accepts, which
// options are switches and which names are aliases: tools/options.cpp.

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

bool is_number(const std::string& s) {
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return !s.empty() && *end == '\0';
}

}  // namespace

Args parse_args(const std::string& command, const std::vector<std::string>& words) {
  Args a;
  a.command = command;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& s = words[i];
    if (s.rfind("--", 0) != 0) {
      // "-5" is a (bad) value for the command to refuse; "-b" is a flag lowbit does not have.
      if (s.size() > 1 && s[0] == '-' && !is_number(s))
        throw UsageError("unknown option " + s + " (options are spelled --name; see lowbit " + command + " --help)");
      a.positional.push_back(s);
      continue;
    }
    std::string key = s, val;
    const auto eq = s.find('=');
    if (eq != std::string::npos) key = s.substr(0, eq);
    key = canonical_name(key);
    if (is_switch(key)) {
      if (eq != std::string::npos) throw UsageError(key + " takes no value");
    } else if (eq != std::string::npos) {
      val = s.substr(eq + 1);
    } else if (i + 1 < words.size() && words[i + 1].rfind("--", 0) != 0) {
      val = words[++i];
    } else {
      // Refused later (reject_unknown), after an unknown-option check with a better message.
      a.missing_value.push_back(key);
    }
    if (a.has(key)) throw UsageError(key + " is given twice");
    a.flags[key] = val;
  }
  a.scopes = scopes_of(command, a.positional, a.flags);
  return a;
}

std::vector<std::string> scopes_of(const std::string& command, const std::vector<std::string>& positional,
                                   const std::map<std::string, std::string>& flags) {
  if (command == "bench") return {"bench-" + (positional.empty() ? std::string() : positional[0])};
  if (command == "quantize" && flags.count("--dynamic")) return {"quantize-dynamic"};
  if (command == "distill" && (flags.count("--qconfig") || flags.count("--quantizer"))) return {"distill-qat", "distill"};
  return {command};
}

namespace {
// The declared default of k in a's scopes; a call for an undeclared option is a bug in the tool.
const Option& declared(const Args& a, const std::string& k) {
  const Option* o = find_option(k, a.scopes);
  if (!o) throw std::logic_error("lowbit " + a.command + ": option " + k + " is not declared for this command");
  return *o;
}
}  // namespace

std::string Args::get(const std::string& k) const { return get(k, declared(*this, k).def); }

int64_t Args::get_int(const std::string& k) const {
  if (has(k)) return get_int(k, 0);
  const std::string d = declared(*this, k).def;
  char* end = nullptr;
  const long long x = std::strtoll(d.c_str(), &end, 10);
  if (d.empty() || *end) throw std::logic_error("option " + k + ": default '" + d + "' is not an integer");
  return x;
}

double Args::get_double(const std::string& k) const {
  if (has(k)) return get_double(k, 0.0);
  const std::string d = declared(*this, k).def;
  char* end = nullptr;
  const double x = std::strtod(d.c_str(), &end);
  if (d.empty() || *end) throw std::logic_error("option " + k + ": default '" + d + "' is not a number");
  return x;
}

std::string Args::get(const std::string& k, const std::string& def) const {
  auto it = flags.find(k);
  if (it == flags.end()) return def;
  if (std::find(missing_value.begin(), missing_value.end(), k) != missing_value.end())
    throw UsageError(k + " needs a value");
  return it->second;
}

int64_t Args::get_int(const std::string& k, int64_t def) const {
  if (!has(k)) return def;
  const std::string v = get(k, "");
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end) throw UsageError(k + " expects an integer, got '" + v + "'");
  return x;
}

double Args::get_double(const std::string& k, double def) const {
  if (!has(k)) return def;
  const std::string v = get(k, "");
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || !std::isfinite(x)) throw UsageError(k + " expects a finite number, got '" + v + "'");
  return x;
}

void Args::reject_unknown() const {
  const std::vector<std::string> all = option_names(scopes);
  const Command* c = find_command(command);
  const size_t max_positional = c ? c->max_positional : 0;
  const std::string help = "see lowbit " + command + " --help";
  // A flag of another mode of this command: say which flag turns that mode on.
  static const std::pair<const char*, const char*> kModes[] = {
      {"distill-qat", "--qconfig (distilling into a quantized student)"}, {"quantize-dynamic", "--dynamic"}};
  for (const auto& [k, v] : flags) {
    if (std::find(all.begin(), all.end(), k) != all.end()) continue;
    for (const auto& [mode, on] : kModes) {
      if (std::string(mode).rfind(command + "-", 0) != 0) continue;
      const std::vector<std::string> with_mode = option_names({command, mode});
      if (std::find(with_mode.begin(), with_mode.end(), k) != with_mode.end())
        throw UsageError(k + " applies only with " + on + "; " + help);
    }
    std::string best;
    size_t best_d = 3;  // suggest only near misses
    for (const auto& n : all)
      if (size_t d = edit_distance(k, n); d < best_d) best = n, best_d = d;
    throw UsageError("unknown option " + k + (best.empty() ? "" : " (did you mean " + best + "?)") + "; " + help);
  }
  for (const auto& k : missing_value)
    throw UsageError(k + " needs a value; " + help);
  if (positional.size() > max_positional)
    throw UsageError("unexpected argument '" + positional[max_positional] + "'; " + help);
}

}  // namespace lowbit::cli


// OpenMP threads that spin while waiting at a barrier steal the cores the
// other threads (data-loader workers, a build, a second process) need: on a
// busy 2-core machine training ran 8× slower with libgomp's default waiting
// (300,000 spins before sleeping) than with passive waiting. Passive waiting
// costs the other way: every parallel region then wakes sleeping threads,
// and a training step has thousands of short regions (MobileNetV2 width 0.5
// at 28×28, 2 threads: 868 img/s passive vs 1149 with a short spin). So the
// tool spins briefly, then sleeps: libgomp reads GOMP_SPINCOUNT once, before
// main, so when the user has set neither it nor OMP_WAIT_POLICY the tool
// re-executes itself with GOMP_SPINCOUNT=1000 (set either to opt out).
// Measured with a CPU hog on one of 2 cores (a 1-epoch ResNet-20 run on
// 5000 images): passive 15.2 s, 1000 spins 15.0 s, 10000 spins 20.9 s,
// 300000 spins 22.0 s.
static void prefer_short_spin_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "1000", 1);
  execv("/proc/self/exe", argv);  // only returns on failure: carry on with the default
}

static int run(int argc, char** argv) {
  using namespace lowbit::cli;
  prefer_short_spin_openmp(argv);
  Args a;
  try {
    const std::vector<std::string> words(argv + std::min(argc, 2), argv + argc);
    const std::string first = argc > 1 ? argv[1] : "";
    if (first.empty()) {
      std::fputs("usage: lowbit <command> [options] (commands: info, train, distill, eval, quantize, qat, analyze, infer, bench, demo, report; see lowbit --help)\n", stderr);
      return 2;
    }
    if (first == "--version") {
      std::printf("lowbit %s\n", LOWBIT_VERSION);
      return 0;
    }
    // lowbit --help | lowbit help [COMMAND] | lowbit COMMAND --help
    // lowbit help --markdown: the flag reference of tools/README.md.
    if (first == "--help" || first == "-h" || first == "help") {
      if (!words.empty() && words[0] == "--markdown") {
        std::fputs(markdown_reference().c_str(), stdout);
        return 0;
      }
      const Command* c = words.empty() ? nullptr : find_command(words[0]);
      if (!words.empty() && !c)
        throw UsageError("no help for '" + words[0] + "' (commands: info, train, distill, eval, quantize, qat, analyze, infer, bench, demo, report)");
      std::fputs((c ? command_help(*c) : usage_text()).c_str(), stdout);
      return 0;
    }
    a.command = first;
    for (const std::string& w : words)
      if (w == "--help" || w == "-h")
        if (const Command* c = find_command(a.command)) {
          std::fputs(command_help(*c).c_str(), stdout);
          return 0;
        }
    a = parse_args(first, words);
    // The kernel table and the thread count are chosen once; a bad
    // LOWBIT_ISA, LOWBIT_THREADS or OMP_NUM_THREADS is a usage error.
    try {
      lowbit::kernels::table();
      lowbit::kernels::num_threads();
    } catch (const std::runtime_error& e) {
      throw UsageError(e.what());
    }
    if (a.has("--threads")) {
      const int64_t t = a.get_int("--threads", 0);
      if (t < 1 || t > 4096)
        throw UsageError("--threads must be a whole number from 1 to 4096, got " + a.get("--threads", ""));
      if (t > lowbit::kernels::num_cores())
        std::fprintf(stderr, "lowbit %s: warning: --threads %lld is more than the %d cores here; the threads will share them\n",
                     a.command.c_str(), (long long)t, lowbit::kernels::num_cores());
      lowbit::kernels::set_num_threads((int)t);
    }
    if (a.command == "info") return cmd_info(a);
    if (a.command == "bench") return cmd_bench(a);
    if (a.command == "demo") return cmd_demo(a);
    if (a.command == "train") return cmd_train(a);
    if (a.command == "eval") return cmd_eval(a);
    if (a.command == "quantize") return cmd_quantize(a);
    if (a.command == "qat") return cmd_qat(a);
    if (a.command == "distill") return cmd_distill(a);
    if (a.command == "analyze") return cmd_analyze(a);
    if (a.command == "report") return cmd_report(a);
    if (a.command == "infer") return cmd_infer(a);
    throw UsageError("unknown command '" + a.command + "' (commands: info, train, distill, eval, quantize, qat, analyze, infer, bench, demo, report; see lowbit --help)");
  } catch (const UsageError& e) {
    std::cerr << "lowbit " << a.command << ": " << e.what() << "\n";
    return 2;
  } catch (const lowbit::Error& e) {
    std::cerr << "lowbit " << a.command << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lowbit " << a.command << ": internal error: " << e.what() << "\n";
    return 1;
  }
}

// Output that could not be written (a full disk, a closed standard output) is
// an error, not a silent success: exit 2 with the reason.
int main(int argc, char** argv) {
  const int rc = run(argc, argv);
  std::cout.flush();
  errno = 0;
  const bool bad = std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout;
  if (bad) {
    const int err = errno;
    std::fprintf(stderr, "lowbit: could not write the output to standard output%s%s\n", err ? ": " : "",
                 err ? std::strerror(err) : "");
    return rc == 0 ? 2 : rc;
  }
  return rc;
}
