#include "nn/module.h"

#include <map>
#include <set>
#include <sstream>

#include "core/autograd.h"

namespace lowbit::nn {

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  LOWBIT_CHECK(name.find('.') == std::string::npos && !name.empty(), type_name(), ": bad parameter name '", name, "'");
  if (t.defined() && !t.requires_grad()) t.set_requires_grad(true);
  params_.emplace_back(name, std::move(t));
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  LOWBIT_CHECK(name.find('.') == std::string::npos && !name.empty(), type_name(), ": bad buffer name '", name, "'");
  buffers_.emplace_back(name, std::move(t));
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  LOWBIT_CHECK(m != nullptr, type_name(), ": child '", name, "' is null");
  for (auto& [n, c] : children_) LOWBIT_CHECK(n != name, type_name(), ": child '", name, "' registered twice");
  children_.emplace_back(name, std::move(m));
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> m) {
  LOWBIT_CHECK(m != nullptr, type_name(), ": replacement for child '", name, "' is null");
  for (auto& [n, c] : children_)
    if (n == name) {
      c = std::move(m);
      return;
    }
  fail(type_name(), ": no child '", name, "' to replace");
}

const Tensor& Module::param(const std::string& name) const {
  for (auto& [n, t] : params_)
    if (n == name) return t;
  fail(type_name(), ": no parameter '", name, "'");
}

const Tensor& Module::buffer(const std::string& name) const {
  for (auto& [n, t] : buffers_)
    if (n == name) return t;
  fail(type_name(), ": no buffer '", name, "'");
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  for (auto& [n, c] : children_)
    if (n == name) return c;
  return nullptr;
}

void Module::collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const {
  if (params)
    for (auto& [n, t] : params_)
      if (t.defined()) out.emplace_back(prefix + n, t);
  if (buffers)
    for (auto& [n, t] : buffers_)
      if (t.defined()) out.emplace_back(prefix + n, t);
  for (auto& [n, c] : children_) c->collect(prefix + n + ".", params, buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out{{"", shared_from_this()}};
  for (auto& [n, c] : children_)
    for (auto& [sub, m] : c->named_modules()) out.emplace_back(sub.empty() ? n : n + "." + sub, m);
  return out;
}

void Module::for_each_module(const std::function<void(const std::string&, Module&)>& f, const std::string& prefix) {
  f(prefix, *this);
  for (auto& [n, c] : children_) c->for_each_module(f, prefix.empty() ? n : prefix + "." + n);
}

NamedTensors Module::state_dict() const {
  // PyTorch order: per module, its parameters then its buffers, then children.
  NamedTensors out;
  struct Walk {
    static void run(const Module& m, const std::string& prefix, NamedTensors& out) {
      for (auto& [n, t] : m.params_)
        if (t.defined()) out.emplace_back(prefix + n, t.detach());
      for (auto& [n, t] : m.buffers_)
        if (t.defined()) out.emplace_back(prefix + n, t.detach());
      for (auto& [n, c] : m.children_) run(*c, prefix + n + ".", out);
    }
  };
  Walk::run(*this, "", out);
  return out;
}

void Module::load_state_dict(const NamedTensors& sd, bool strict) {
  NamedTensors mine = state_dict();
  std::map<std::string, const Tensor*> given;
  for (auto& [n, t] : sd) given[n] = &t;
  std::vector<std::string> missing, unexpected, mismatched;
  std::set<std::string> known;
  for (auto& [n, t] : mine) {
    known.insert(n);
    auto it = given.find(n);
    if (it == given.end()) {
      // num_batches_tracked is optional on load (older PyTorch files lack it).
      if (n.size() < 19 || n.compare(n.size() - 19, 19, "num_batches_tracked") != 0) missing.push_back(n);
      continue;
    }
    if (it->second->shape() != t.shape())
      mismatched.push_back(n + " (checkpoint " + shape_str(it->second->shape()) + ", model " + shape_str(t.shape()) + ")");
  }
  for (auto& [n, t] : sd)
    if (!known.count(n)) unexpected.push_back(n);
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 8) s += ", … (" + std::to_string(v.size()) + " in all)";
    return s;
  };
  std::string err;
  if (!mismatched.empty()) err += " shape mismatch: " + join(mismatched) + ";";
  if (strict && !missing.empty()) err += " missing keys: " + join(missing) + ";";
  if (strict && !unexpected.empty()) err += " unexpected keys: " + join(unexpected) + ";";
  LOWBIT_CHECK(err.empty(), "load_state_dict (", type_name(), "):", err.substr(0, err.size() - 1));
  NoGradGuard ng;
  for (auto& [n, t] : mine) {
    auto it = given.find(n);
    if (it != given.end()) Tensor(t).copy_(*it->second);
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (auto& [n, t] : named_parameters()) t.set_grad(Tensor());
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::repr_into(std::string& out, int indent) const {
  out += type_name() + "(" + extra_repr();
  if (children_.empty()) {
    out += ")";
    return;
  }
  if (!extra_repr().empty()) out += "\n";
  else out += "\n";
  for (auto& [n, c] : children_) {
    out += std::string(indent + 2, ' ') + "(" + n + "): ";
    c->repr_into(out, indent + 2);
    out += "\n";
  }
  out += std::string(indent, ' ') + ")";
}

std::string Module::repr() const {
  std::string s;
  repr_into(s, 0);
  return s;
}

}  // namespace lowbit::nn
