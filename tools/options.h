// Every option of the `lowbit` tool, declared once (tools/options.cpp): its
// names, value, the commands that take it, its default, environment variable
// and help. The parser (switches, aliases), the unknown-option refusals with
// "did you mean", `--help`, `help CMD` and the flag reference in
// tools/README.md (`lowbit help --markdown`) are all made from this table.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace lowbit::cli {

struct Option {
  const char* names;   // "--batch" or "--batch --batch-size": the name, then aliases
  const char* value;   // the value's placeholder ("N", "F"); nullptr: a switch (takes no value)
  const char* scopes;  // where it is accepted, space-separated (see kScopes in options.cpp)
  const char* def;     // the default as text; "" none. Args::get*(name) without a default parse it
  const char* group;   // the heading it is listed under in help
  const char* help;
  const char* env = nullptr;  // environment variable read when the option is absent
};

struct Command {
  const char* name;      // "train"
  const char* synopsis;  // "--model M --out F.safetensors [options]"
  const char* summary;   // one line for `lowbit --help`
  const char* notes;     // lines after the options in `lowbit CMD --help` ("" none)
  size_t max_positional;
};

const std::vector<Option>& options();
const std::vector<Command>& commands();
const Command* find_command(const std::string& name);

// The option named `name` (or an alias of it) in one of `scopes`; nullptr if none.
const Option* find_option(const std::string& name, const std::vector<std::string>& scopes);
// Every name and alias accepted in `scopes`.
std::vector<std::string> option_names(const std::vector<std::string>& scopes);
// The canonical name of an alias ("--batch-size" → "--batch"); other words unchanged.
std::string canonical_name(const std::string& name);
// True if `name` (canonical) is a switch somewhere.
bool is_switch(const std::string& name);

std::string usage_text();                          // lowbit --help
std::string command_help(const Command& c);        // lowbit help CMD, lowbit CMD --help
std::string markdown_reference();                  // lowbit help --markdown (tools/README.md)

}  // namespace lowbit::cli
