#include "nn/taps.h"

#include <set>

#include "core/error.h"

namespace lowbit::nn {

namespace {
thread_local TapScope* g_scope = nullptr;
}  // namespace

std::vector<std::string> tap_names(Module& model) {
  std::set<std::string> in_chains;
  model.for_each_module([&](const std::string& path, Module& m) {
    for (const auto& chain : m.fusable_chains())
      for (const auto& n : chain) in_chains.insert(path.empty() ? n : path + "." + n);
  });
  std::vector<std::string> names;
  model.for_each_module([&](const std::string& path, Module& m) {
    // Identity: a chain member fusion replaced (it passes its input on).
    if (!path.empty() && !in_chains.count(path) && m.type_name() != "Identity") names.push_back(path);
  });
  return names;
}

TapScope::TapScope(Module& model, const std::vector<std::string>& names, bool allow_chain_members) : prev_(g_scope) {
  std::map<std::string, Module*> modules;
  model.for_each_module([&](const std::string& path, Module& m) { modules[path] = &m; });
  const std::vector<std::string> valid = tap_names(model);
  const std::set<std::string> ok(valid.begin(), valid.end());
  for (const std::string& n : names) {
    if (!ok.count(n) && !(allow_chain_members && modules.count(n) && !n.empty())) {
      std::string list;
      for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
      fail(modules.count(n) ? "cannot tap '" + n + "': it is inside a conv → BN → activation chain, which fusion "
                                "merges (tap the block around it)"
                            : "no module '" + n + "' to tap",
           " in ", model.type_name(), " (valid: ", list, ")");
    }
    by_module_[modules.at(n)] = n;
  }
  g_scope = this;
}

TapScope::~TapScope() { g_scope = prev_; }

TapScope* TapScope::current() { return g_scope; }

void TapScope::offer(const Module* m, const Tensor& y) {
  auto it = by_module_.find(m);
  if (it != by_module_.end()) out_[it->second] = y;
}

const Tensor& TapScope::get(const std::string& name) const {
  auto it = out_.find(name);
  LOWBIT_CHECK(it != out_.end(), "tap '", name, "': the module did not run in this forward pass");
  return it->second;
}

const Tensor& Module::tapped(const Tensor& y) {
  if (TapScope* s = g_scope) s->offer(this, y);
  return y;
}

}  // namespace lowbit::nn
