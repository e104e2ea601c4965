// Shared pieces of the `lowbit` command line tool: argument parsing with
// one-line errors (exit code 2) and the subcommand entry points.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace lowbit::cli {

// Parsed "--key value" / "--flag" arguments after the subcommand; positional
// arguments in order. Unknown flags are rejected by the command (reject_unknown).
struct Args {
  std::string command;
  std::map<std::string, std::string> flags;  // "--threads" -> "4"; flag without value -> ""
  std::vector<std::string> positional;

  bool has(const std::string& k) const { return flags.count(k) != 0; }
  std::string get(const std::string& k, const std::string& def) const;
  int64_t get_int(const std::string& k, int64_t def) const;  // usage error if not an integer
  double get_double(const std::string& k, double def) const;
  void reject_unknown(const std::vector<std::string>& known) const;
};

// Thrown for bad usage; main prints "lowbit <command>: <message>" and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int cmd_info(const Args& a);
int cmd_bench(const Args& a);
int cmd_demo(const Args& a);
int cmd_train(const Args& a);
int cmd_eval(const Args& a);
int cmd_quantize(const Args& a);
int cmd_qat(const Args& a);

}  // namespace lowbit::cli
