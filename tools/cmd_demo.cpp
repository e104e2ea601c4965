// `lowbit demo`: the whole cycle on Fashion-MNIST, as the commands a user
// would type — train a ResNet-20 teacher, distill a MobileNetV2 (width 0.5,
// small input) student from it, quantize the student three ways (PTQ
// per-tensor MinMax, PTQ per-channel histogram, QAT w8a8 LSQ + KD; plus w4a4
// LSQ + KD), run every quantized model on the int8 engine — ending in one
// table: stage, model, accuracy, size, batch-1 latency float vs int8.
//
// Each stage runs this same `lowbit` binary as a child process with --json
// (its progress bars on the terminal), printing the command first; its
// result line goes to RUN_DIR/metrics.jsonl. Everything — checkpoints, int8
// models, the log, the table — lands in one run folder (--out DIR; default
// lowbit-demo-YYYYMMDD-HHMMSS), printed at the end.
//
// Default: short schedules, 9 to 31 minutes on 2 cores (stated in the
// header it prints); --full: the documented recipes (hours).
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "tools/cli.h"
#include "tools/common.h"
#include "core/json.h"

namespace lowbit::cli {

namespace {

std::string join_words(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& w : v) s += (s.empty() ? "" : " ") + w;
  return s;
}

// Runs `lowbit ARGS…` (this binary) with stdout captured; stderr (progress)
// passes through. Returns the last non-empty stdout line (the --json result).
std::string run_stage(const std::vector<std::string>& args, std::ofstream& log, const std::string& stage) {
  std::fprintf(stderr, "\n$ lowbit %s\n", join_words(args).c_str());
  std::vector<char*> argv{const_cast<char*>("lowbit")};  // made before fork: the child only execs
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fd[2];
  LOWBIT_CHECK(pipe(fd) == 0, "demo: pipe: ", std::strerror(errno));
  const pid_t pid = fork();
  LOWBIT_CHECK(pid >= 0, "demo: fork: ", std::strerror(errno));
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, (size_t)n);
  }
  close(fd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (rc == 130 || stop_requested()) fail("demo interrupted during '", stage, "'");
  LOWBIT_CHECK(rc == 0, "demo: stage '", stage, "' failed (exit ", rc, "): lowbit ", join_words(args));
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  const size_t nl = out.rfind('\n');
  const std::string line = nl == std::string::npos ? out : out.substr(nl + 1);
  // The stage's own --json line goes in as parsed JSON (null if it printed none).
  const Json result = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  log << json_line({{"stage", stage}, {"command", "lowbit " + join_words(args)},
                    {"result", result.is_discarded() ? Json(nullptr) : result}})
      << "\n";
  log.flush();
  return line;
}

// A number field of a flat JSON object ("key": 1.5); Error if absent.
double field(const std::string& json, const std::string& key) {
  const double v = json_number(json, key);
  LOWBIT_CHECK(!std::isnan(v), "demo: no '", key, "' in the result ", json);
  return v;
}

struct Row {
  std::string stage, model;
  double accuracy, mb, float_ms, int8_ms;  // int8_ms < 0: a float model
  double margin = -1;  // quantized rows: the most accuracy (points) they may lose against the float student
};

// How far below the distilled student a quantized stage may end before the
// demo prints a warning row (points of accuracy on the test images). 8 bits:
// PTQ and one epoch of QAT from a trained model should stay within a point
// (QAT w8a8 ended +0.04 and -0.46 at seeds 0 and 1; PTQ per-tensor MinMax
// at seed 1 did not: 10.00%, README). 4 bits after one epoch of QAT lose
// 3.5 to 7 points at these schedules (5.29 at 24537a9; 6.31 at seed 0 at
// 36ab399; 5.42 and 3.52 at seeds 0 and 1 at 29b2fde): 8 keeps a collapse
// (the 15.5 points of seed 1 at 46e6869, 32.8 at 36ab399) and no healthy run.
constexpr double kMargin8Bit = 1.0, kMargin4Bit = 8.0;

// The run folder: --out DIR (new, or empty) or lowbit-demo-DATE-TIME.
std::string make_run_dir(const Args& a) {
  std::string dir = a.get("--out", "");
  if (dir.empty()) {
    char b[64];
    const std::time_t t = std::time(nullptr);
    std::strftime(b, sizeof b, "lowbit-demo-%Y%m%d-%H%M%S", std::localtime(&t));
    dir = b;
  }
  if (mkdir(dir.c_str(), 0755) != 0) {
    if (errno != EEXIST) throw UsageError("--out " + dir + ": cannot create the run folder: " + std::strerror(errno));
    if (DIR* d = opendir(dir.c_str())) {
      int entries = 0;
      while (dirent* e = readdir(d)) entries += std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..");
      closedir(d);
      if (entries) throw UsageError("--out " + dir + " is not empty; the demo writes a new run folder");
    }
  }
  return dir;
}

void print_header(const std::string& dir, bool full) {
  std::fprintf(stderr,
               "== lowbit demo: train → distill → quantize → int8 on Fashion-MNIST, in %s\n"
               "   %s\n",
               dir.c_str(),
               full ? "the full recipes: teacher 30 epochs, student 30 epochs of distillation, QAT 3 epochs (hours)"
                    : "short schedules (9 minutes on 2 cores of AMD Zen 5, 31 with AVX2 only): teacher 3 epochs and the student 2 epochs on 30,000 "
                      "images, QAT 1 epoch on 20,000; accuracy on all 10,000 test images; --full for the recipes");
}

// The stages, as the commands a user would type, and their rows.
std::vector<Row> run_stages(const Args& a, const std::string& dir, std::ofstream& log) {
  const bool full = a.has("--full");
  // Schedules: short by default (the whole run in 9 to 31 minutes on 2 cores).
  const std::string teacher_epochs = full ? "30" : "3", student_epochs = full ? "30" : "2",
                    qat_epochs = full ? "3" : "1";
  std::vector<std::string> common{"--seed", a.get("--seed")};
  if (a.has("--data")) common.insert(common.end(), {"--data", a.get("--data", "")});
  std::vector<std::string> train_subset, qat_subset;
  if (!full) train_subset = {"--limit", "30000"}, qat_subset = {"--limit", "20000"};
  if (a.has("--limit")) {  // a quick look: every stage on N training and N test images
    const int64_t n = a.get_int("--limit", 0);
    if (n < 256) throw UsageError("--limit must be at least 256 (images per stage)");
    train_subset = qat_subset = {"--limit", std::to_string(n), "--val-limit", std::to_string(n)};
  }
  if (a.has("--quiet")) common.push_back("--quiet");
  std::vector<std::string> test_subset;  // eval and quantize: --limit counts test images
  if (a.has("--limit")) test_subset = {"--limit", a.get("--limit", "")};
  auto with = [&](std::vector<std::string> v, const std::vector<std::string>& extra = {}) {
    v.insert(v.end(), extra.begin(), extra.end());
    v.insert(v.end(), common.begin(), common.end());
    v.push_back("--json");
    return v;
  };
  const std::string T = dir + "/teacher.safetensors", S = dir + "/student.safetensors";
  const std::vector<std::string> student_model{"--model", "mobilenet_v2", "--width", "0.5", "--small-input"};
  print_header(dir, full);
  std::vector<Row> rows;
  auto float_row = [&](const std::string& stage, const std::string& model, const std::string& file, double acc) {
    const std::string e = run_stage(with({"eval", "--weights", file}, test_subset), log, stage + " (eval)");
    rows.push_back({stage, model, acc, field(e, "parameters") * 4 / 1e6, field(e, "latency_ms"), -1});
    return rows.back().float_ms;
  };
  auto int8_row = [&](const std::string& stage, const std::string& file, double float_ms, double margin) {
    const std::string e = run_stage(with({"eval", "--weights", file}, test_subset), log, stage + " (int8 engine)");
    rows.push_back({stage, "mobilenet_v2 w0.5", field(e, "accuracy"), field(e, "int8_mb"), float_ms,
                    field(e, "latency_ms"), margin});
  };
  // 1. The teacher.
  std::string r = run_stage(with({"train", "--model", "resnet20", "--epochs", teacher_epochs, "--out", T, "--metrics",
                                  dir + "/curves-1-teacher.jsonl"},
                                 train_subset),
                            log, "teacher");
  float_row("teacher (float)", "resnet20", T, field(r, "accuracy"));
  // 2. The student, distilled.
  std::vector<std::string> d{"distill", "--teacher", T, "--teacher-model", "resnet20"};
  d.insert(d.end(), student_model.begin(), student_model.end());
  d.insert(d.end(), {"--epochs", student_epochs, "--out", S, "--metrics", dir + "/curves-2-student-kd.jsonl"});
  r = run_stage(with(d, train_subset), log, "student");
  const double student_ms = float_row("student, distilled (float)", "mobilenet_v2 w0.5", S, field(r, "accuracy"));
  // 3. PTQ, two ways.
  for (const auto& [name, flags] :
       {std::pair<std::string, std::vector<std::string>>{"ptq_minmax", {"--qconfig", "w8a8-per-tensor", "--observer", "minmax"}},
        {"ptq_histogram", {"--qconfig", "w8a8", "--observer", "histogram"}}}) {
    std::vector<std::string> q{"quantize", "--weights", S, "--calib", "512", "--out", dir + "/" + name + ".safetensors",
                               "--int8-out", dir + "/" + name + ".int8.safetensors"};
    q.insert(q.end(), flags.begin(), flags.end());
    run_stage(with(q, test_subset), log, name);
    int8_row(name == "ptq_minmax" ? "PTQ per-tensor MinMax" : "PTQ per-channel histogram",
             dir + "/" + name + ".int8.safetensors", student_ms, kMargin8Bit);
  }
  // 4. QAT with the teacher: w8a8 and w4a4 LSQ students.
  for (const std::string qc : {"w8a8", "w4a4"}) {
    const std::string f = dir + "/qat_" + qc + "_kd";
    std::vector<std::string> q{"distill", "--teacher", T, "--teacher-model", "resnet20", "--init", S};
    q.insert(q.end(), student_model.begin(), student_model.end());
    q.insert(q.end(), {"--qconfig", qc, "--quantizer", "lsq", "--epochs", qat_epochs, "--out", f + ".safetensors",
                       "--int8-out", f + ".int8.safetensors", "--metrics",
                       dir + "/curves-" + (qc == "w8a8" ? "3" : "4") + "-qat-" + qc + "-kd.jsonl",
                       "--on-divergence", "warn"});  // the table still shows the stage (with a warning row)
    run_stage(with(q, qat_subset), log, "qat_" + qc + "_kd");
    int8_row("QAT " + qc + " LSQ + KD", f + ".int8.safetensors", student_ms,
             qc == "w8a8" ? kMargin8Bit : kMargin4Bit);
  }
  return rows;
}

// The table, its warning rows (a quantized stage below its margin) last; and those rows alone.
std::pair<std::string, std::string> make_table(const std::vector<Row>& rows) {
  std::string table = "| stage | model | accuracy | size (MB) | float batch-1 (ms) | int8 batch-1 (ms) | speed-up |\n"
                      "|---|---|---|---|---|---|---|\n";
  const double student_accuracy = rows.size() > 1 ? rows[1].accuracy : 0;
  std::string warnings;
  for (const Row& row : rows) {
    char b[512];
    const double lost = 100 * (student_accuracy - row.accuracy);
    if (row.margin >= 0 && lost > row.margin) {
      std::snprintf(b, sizeof b, "| **warning** | %s is %.2f pt below the distilled student (margin %.1f pt) | | | | | |\n",
                    row.stage.c_str(), lost, row.margin);
      warnings += b;
    }
    if (row.int8_ms < 0)
      std::snprintf(b, sizeof b, "| %s | %s | %.2f%% | %.3f | %.3f | | |\n", row.stage.c_str(), row.model.c_str(),
                    100 * row.accuracy, row.mb, row.float_ms);
    else
      std::snprintf(b, sizeof b, "| %s | %s | %.2f%% | %.3f | %.3f | %.3f | %.2fx |\n", row.stage.c_str(),
                    row.model.c_str(), 100 * row.accuracy, row.mb, row.float_ms, row.int8_ms, row.float_ms / row.int8_ms);
    table += b;
  }
  table += warnings;
  return {table, warnings};
}

}  // namespace

// A run folder in which nothing finished (a stage refused its flags, say): its
// empty metrics.jsonl and the folder itself are removed. True if the folder is gone.
bool remove_if_empty(const std::string& dir) {
  struct stat st {};
  if (::stat((dir + "/metrics.jsonl").c_str(), &st) == 0 && st.st_size == 0) ::unlink((dir + "/metrics.jsonl").c_str());
  return ::rmdir(dir.c_str()) == 0;  // only when nothing else is in it
}

int cmd_demo(const Args& a) {
  a.reject_unknown();
  const std::string dir = make_run_dir(a);
  std::vector<Row> rows;
  std::ofstream log;
  try {
    check_output_path("--out", dir + "/teacher.safetensors");
    install_stop_handler();  // Ctrl-C: the running stage stops and says how to resume; so does the demo
    log.open(dir + "/metrics.jsonl", std::ios::app);
    rows = run_stages(a, dir, log);
  } catch (const UsageError&) {
    log.close();
    remove_if_empty(dir);
    throw;
  } catch (const Error& e) {
    log.close();
    if (remove_if_empty(dir))
      std::fprintf(stderr, "\nlowbit demo: %s. No stage finished; the empty run folder %s was removed.\n", e.what(),
                   dir.c_str());
    else
      std::fprintf(stderr, "\nlowbit demo: %s. The run folder %s holds what finished (metrics.jsonl).\n", e.what(),
                   dir.c_str());
    return stop_requested() ? 130 : 2;
  }

  const auto [table, warnings] = make_table(rows);
  std::ofstream(dir + "/table.md") << table;
  std::vector<std::string> rep{"report", dir, "--json"};
  if (a.has("--data")) rep.insert(rep.end(), {"--data", a.get("--data", "")});
  try {
    run_stage(rep, log, "report");
  } catch (const Error& e) {
    std::fprintf(stderr, "lowbit demo: %s\n", e.what());
    return 2;
  }
  std::printf("\n%s\nrun folder: %s (checkpoints, int8 models, metrics.jsonl, curves-*.jsonl, table.md, report.html)\n",
              table.c_str(), dir.c_str());
  if (warnings.empty()) return 0;
  std::fprintf(stderr, "lowbit demo: a quantized stage ended below its margin (the warning rows of the table)\n");
  // --limit is a quick look (every stage on a few hundred images): its rows
  // are too noisy to hold to the margins, so they warn without failing.
  return a.has("--limit") ? 0 : 1;
}

}  // namespace lowbit::cli
