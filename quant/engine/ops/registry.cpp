// Every op kind, by OpKind (the order of the enum in model.h).
#include "core/error.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

namespace {
const std::vector<const OpDef*>& all() {
  static const std::vector<const OpDef*> defs = [] {
    std::vector<const OpDef*> d{&quantize_op(), &conv_op(),  &linear_op(), &add_op(), &max_pool_op(),
                                &global_avg_pool_op(), &input_op(), &dynamic_linear_op()};
    for (size_t i = 0; i < d.size(); ++i)
      LOWBIT_CHECK((size_t)d[i]->kind == i, "engine: op '", d[i]->name, "' is listed out of its OpKind order");
    return d;
  }();
  return defs;
}
}  // namespace

const OpDef& op_def(OpKind k) { return *all().at((size_t)k); }

const char* op_kind_name(OpKind k) { return (size_t)k < all().size() ? all()[(size_t)k]->name : "?"; }

const OpDef* find_op(const std::string& name) {
  for (const OpDef* d : all())
    if (name == d->name) return d;
  return nullptr;
}

std::string op_names() {
  std::string s;
  for (const OpDef* d : all()) s += std::string(s.empty() ? "" : ", ") + d->name;
  return s;
}

}  // namespace lowbit::quant::engine
