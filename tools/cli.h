// Shared pieces of the `lowbit` command line tool: argument parsing with
// one-line errors (exit code 2) and the subcommand entry points.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace lowbit::cli {

// Parsed "--key value" / "--key=value" / "--switch" arguments after the
// subcommand, and positional arguments in order. Every command calls
// reject_unknown first: it refuses unknown options (with a "did you mean"),
// options left without a value and stray words, each naming what to fix.
struct Args {
  std::string command;
  std::map<std::string, std::string> flags;  // "--threads" -> "4"; a switch -> ""
  std::vector<std::string> positional;
  std::vector<std::string> missing_value;  // options followed by another option or by nothing

  bool has(const std::string& k) const { return flags.count(k) != 0; }
  std::string get(const std::string& k, const std::string& def) const;
  int64_t get_int(const std::string& k, int64_t def) const;  // usage error if not an integer
  double get_double(const std::string& k, double def) const;
  // known: the command's options (the common --threads --seed --json --help
  // are added); max_positional: how many positional words it takes.
  void reject_unknown(const std::vector<std::string>& known, size_t max_positional = 0) const;
};

// Splits the words after the command. Switches (options without a value) and
// aliases (--batch-size for --batch, ...) are listed in lowbit.cpp; a value
// never starts with "--" (write --out=--odd-name for such a file).
Args parse_args(const std::string& command, const std::vector<std::string>& words);

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
int cmd_distill(const Args& a);
int cmd_analyze(const Args& a);
int cmd_report(const Args& a);
int cmd_infer(const Args& a);

}  // namespace lowbit::cli
