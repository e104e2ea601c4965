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
// reject_unknown first: it refuses options its scopes do not declare
// (tools/options.cpp; with a "did you mean"), options left without a value
// and stray words, each naming what to fix.
struct Args {
  std::string command;
  // Where the options are looked up: the command, or its mode ("distill-qat",
  // "quantize-dynamic", "bench-conv"); set by parse_args (scopes_of).
  std::vector<std::string> scopes;
  std::map<std::string, std::string> flags;  // "--threads" -> "4"; a switch -> ""
  std::vector<std::string> positional;
  std::vector<std::string> missing_value;  // options followed by another option or by nothing

  bool has(const std::string& k) const { return flags.count(k) != 0; }
  // The value, else the option's declared default in these scopes (options.cpp).
  std::string get(const std::string& k) const;
  int64_t get_int(const std::string& k) const;  // usage error if not an integer
  double get_double(const std::string& k) const;
  // The value, else a default the call site computes (declared as text in options.cpp:
  // "never", "--epochs", "the images'").
  std::string get(const std::string& k, const std::string& def) const;
  int64_t get_int(const std::string& k, int64_t def) const;
  double get_double(const std::string& k, double def) const;
  void reject_unknown() const;
};

// The scopes of a command line: the command, plus its mode where it has one.
std::vector<std::string> scopes_of(const std::string& command, const std::vector<std::string>& positional,
                                   const std::map<std::string, std::string>& flags);

// Splits the words after the command. Switches (options without a value) and
// aliases (--batch-size for --batch, ...) come from options.cpp; a value
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
