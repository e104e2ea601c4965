// Golden tests: every op of core/ops.h against PyTorch, forward output and
// every input gradient, on tests/fixtures/ops.safetensors (written by
// tools/make_fixtures.py; its docstring documents the layout: cases, inputs,
// gradients and op parameters, all named in the file's __metadata__).
//
// Tolerance (DESIGN.md: single ops agree with PyTorch to 1e-4), per element:
//   |lowbit_i - torch_i| / max(|torch_i|, 1e-3 · max_j |torch_j|, 1e-6)  ≤ 1e-4
// (relative to each element, so exp's small values on [-3, 3] are held as
// tightly as its large ones; the floor keeps elements near zero, where the
// result is a cancellation, from demanding more than the tensor's scale allows)
// where torch_i is PyTorch's float64 result (from the same f32 inputs)
// rounded to f32, so the bound measures lowbit's error alone. NaN anywhere
// fails.
//
// Each case runs in three layouts with the same values: contiguous inputs;
// "strided" (every input and the upstream gradient a stride-2 view, inner
// stride 2); "transposed" (storage with dims 0 and last swapped, viewed back).
// Ops that write in place (batch_norm's running stats) write through those
// views too.
//
// Adding an op: add a case in tools/make_fixtures.py (op name = the lowbit
// function, parameters as metadata strings), rerun it, commit the fixture,
// and add a GOLDEN test below that maps the inputs and parameters to the
// lowbit call, plus its name to kTestedOps.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/safetensors.h"
#include "tests/test_util.h"

using namespace lowbit;

#ifndef LOWBIT_FIXTURES_DIR
#error "LOWBIT_FIXTURES_DIR must be defined by the build (tests/meson.build)"
#endif

namespace {

constexpr double kRelTol = 1e-4;
const char* const kFixture = LOWBIT_FIXTURES_DIR "/ops.safetensors";

// Loaded once; a load failure fails every golden test with the reason.
const SafetensorsFile& fixture() {
  static std::string error;
  static const std::optional<SafetensorsFile> file = []() -> std::optional<SafetensorsFile> {
    try {
      return load_safetensors(kFixture);
    } catch (const std::exception& e) {
      error = e.what();
      return std::nullopt;
    }
  }();
  REQUIRE_MESSAGE(file.has_value(), "cannot load the golden fixture: ", error,
                  " (regenerate with /usr/bin/python3 tools/make_fixtures.py)");
  return *file;
}

using testing::split;

struct MissingKey : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One case of the fixture: its names, and typed access to its parameters and
// tensors that fail with the fixture path and the missing key.
struct GoldenCase {
  std::string name, op;
  std::vector<std::string> inputs, grads, updated;
  const SafetensorsFile* file = nullptr;

  bool has(const std::string& key) const { return file->metadata.count(name + "." + key) != 0; }
  std::string param(const std::string& key) const {
    auto it = file->metadata.find(name + "." + key);
    if (it == file->metadata.end())
      throw MissingKey("fixture " + file->path + " has no metadata '" + name + "." + key +
                       "' (stale fixture? rerun tools/make_fixtures.py)");
    return it->second;
  }
  int64_t i(const std::string& key) const { return std::stoll(param(key)); }
  float f(const std::string& key) const { return std::stof(param(key)); }
  bool b(const std::string& key) const { return i(key) != 0; }
  std::vector<int64_t> ints(const std::string& key) const {
    std::vector<int64_t> out;
    for (const auto& s : split(param(key), ',')) out.push_back(std::stoll(s));
    return out;
  }
  Reduction reduction() const {
    const std::string r = param("reduction");
    if (r == "none") return Reduction::none;
    if (r == "mean") return Reduction::mean;
    if (r == "sum") return Reduction::sum;
    if (r == "batchmean") return Reduction::batchmean;
    throw MissingKey("fixture case " + name + ": unknown reduction '" + r + "'");
  }
  const Tensor& tensor(const std::string& key) const {
    const std::string full = name + "." + key;
    if (!file->has(full))
      throw MissingKey("fixture " + file->path + " has no tensor '" + full +
                       "' (stale fixture? rerun tools/make_fixtures.py)");
    return file->get(full);
  }
};

std::vector<GoldenCase> cases_for(const SafetensorsFile& fx, const std::string& op) {
  std::vector<GoldenCase> out;
  auto it = fx.metadata.find("cases");
  REQUIRE_MESSAGE(it != fx.metadata.end(), "fixture ", fx.path, " has no 'cases' metadata");
  for (const auto& name : split(it->second, ',')) {
    GoldenCase c;
    c.name = name;
    c.file = &fx;
    c.op = c.param("op");
    if (c.op != op) continue;
    c.inputs = split(c.param("inputs"), ',');
    c.grads = split(c.param("grads"), ',');
    if (c.has("updated")) c.updated = split(c.param("updated"), ',');
    out.push_back(std::move(c));
  }
  return out;
}

// The inputs of one run, by name, in the fixture's order.
struct Inputs {
  const GoldenCase* c = nullptr;
  std::vector<std::pair<std::string, Tensor>> items;

  const Tensor& operator[](const std::string& k) const {
    for (const auto& [name, t] : items)
      if (name == k) return t;
    throw MissingKey("fixture case " + c->name + " has no input '" + k + "'");
  }
  Tensor opt(const std::string& k) const {  // undefined if absent (optional bias, affine=false)
    for (const auto& [name, t] : items)
      if (name == k) return t;
    return Tensor();
  }
  std::vector<Tensor> all() const {
    std::vector<Tensor> out;
    for (const auto& kv : items) out.push_back(kv.second);
    return out;
  }
};

enum class Layout { contiguous, strided, transposed };
const char* layout_name(Layout l) {
  switch (l) {
    case Layout::contiguous: return "contiguous";
    case Layout::strided: return "strided";
    case Layout::transposed: return "transposed";
  }
  return "?";
}

// A fresh tensor (own storage, no autograd history) with t's values in the layout.
Tensor fresh_copy(const Tensor& t, Layout layout) {
  if (layout == Layout::transposed && t.dim() >= 2) {
    const int64_t last = t.dim() - 1;
    Shape s = t.shape();
    std::swap(s[0], s[(size_t)last]);
    Tensor store = Tensor::empty(s, t.dtype());
    store.copy_(t.transpose(0, last));
    return store.transpose(0, last).detach();
  }
  if (layout != Layout::contiguous) {
    Shape s = t.shape();
    s.push_back(2);
    // The unused half holds a huge value so a kernel that ignores strides shows up.
    Tensor store = Tensor::full(s, t.dtype() == DType::f32 ? 1e30 : 0, t.dtype());
    Tensor view = store.select(t.dim(), 0);
    view.copy_(t);
    return view.detach();
  }
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  out.copy_(t);
  return out;
}

std::string where(const GoldenCase& c, Layout layout, const std::string& what) {
  return c.name + "." + what + " [" + layout_name(layout) + "]";
}

void check_close(const GoldenCase& c, Layout layout, const std::string& what, const Tensor& got,
                 const Tensor& want) {
  const std::string w = where(c, layout, what);
  if (!got.defined()) {
    FAIL_CHECK(w, ": lowbit produced no tensor");
    return;
  }
  if (got.shape() != want.shape()) {
    FAIL_CHECK(w, ": shape ", shape_str(got.shape()), ", PyTorch ", shape_str(want.shape()));
    return;
  }
  const std::vector<float> a = got.to_vector(), b = want.to_vector();
  double max_b = 0;
  for (float v : b) max_b = std::max(max_b, (double)std::fabs(v));
  const double floor = std::max(1e-3 * max_b, 1e-6);
  double rel = 0;
  size_t worst = 0;
  bool nan = false;
  for (size_t k = 0; k < a.size() && !nan; ++k) {
    const double e = std::fabs((double)a[k] - (double)b[k]) / std::max((double)std::fabs(b[k]), floor);
    if (std::isnan(e)) {
      nan = true;
      worst = k;
      rel = INFINITY;
    } else if (e > rel) {
      rel = e;
      worst = k;
    }
  }
  if (nan || rel > kRelTol) {
    FAIL_CHECK(w, ": rel error ", rel, " > ", kRelTol, " (worst at flat index ", worst, " of ", a.size(),
               ": lowbit ", a[worst], ", PyTorch ", b[worst], "; max |PyTorch| ", max_b, ")");
  } else {
    CHECK(rel <= kRelTol);  // counted as a passing assertion
  }
}

using OpFn = std::function<Tensor(const GoldenCase&, const Inputs&)>;

void run_case(const GoldenCase& c, Layout layout, const OpFn& fn) {
  Inputs in;
  in.c = &c;
  for (const auto& k : c.inputs) {
    Tensor t = fresh_copy(c.tensor(k), layout);
    if (std::find(c.grads.begin(), c.grads.end(), k) != c.grads.end()) t.set_requires_grad(true);
    in.items.emplace_back(k, t);
  }
  for (const auto& k : c.grads) (void)in[k];  // a gradient for a non-input is a fixture error (throws MissingKey)
  Tensor y = fn(c, in);
  check_close(c, layout, "y", y, c.tensor("y"));
  for (const auto& k : c.updated) check_close(c, layout, k + "_out", in[k], c.tensor(k + "_out"));
  if (c.grads.empty()) return;
  REQUIRE_MESSAGE(y.requires_grad(), where(c, layout, "y"), ": output does not require grad");
  y.backward(fresh_copy(c.tensor("gy"), layout));
  for (const auto& k : c.grads) check_close(c, layout, "d" + k, in[k].grad(), c.tensor("d" + k));
}

void run_golden(const std::string& op, const OpFn& fn) {
  const SafetensorsFile& fx = fixture();
  const std::vector<GoldenCase> cases = cases_for(fx, op);
  REQUIRE_MESSAGE(!cases.empty(), "fixture ", fx.path, " has no case for op '", op, "'");
  for (const auto& c : cases) {
    for (Layout layout : {Layout::contiguous, Layout::strided, Layout::transposed}) {
      try {
        run_case(c, layout, fn);
      } catch (const MissingKey& e) {
        FAIL_CHECK(e.what());
      } catch (const std::exception& e) {
        FAIL_CHECK(where(c, layout, "y"), ": threw: ", e.what());
      }
    }
  }
}

// Every op name the fixture may contain; the test below fails if the fixture
// has a case for an op that no TEST_CASE here runs.
const std::set<std::string> kTestedOps = {
    "add", "sub", "mul", "div", "add_scalar", "mul_scalar", "neg", "exp", "log", "sqrt", "pow", "abs", "clamp",
    "relu", "relu6", "sigmoid", "tanh", "sum", "mean", "max", "matmul", "linear", "conv2d", "batch_norm",
    "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "flatten", "cat", "pad", "softmax", "log_softmax",
    "cross_entropy", "mse_loss", "kl_div"};

Tensor unary(const char* op, const Tensor& x) {
  const std::string o = op;
  if (o == "neg") return neg(x);
  if (o == "exp") return exp(x);
  if (o == "log") return log(x);
  if (o == "sqrt") return sqrt(x);
  if (o == "abs") return abs(x);
  if (o == "relu") return relu(x);
  if (o == "relu6") return relu6(x);
  if (o == "sigmoid") return sigmoid(x);
  if (o == "tanh") return tanh(x);
  throw std::logic_error(std::string("unary: no op ") + op);
}

void run_unary(const char* op) {
  run_golden(op, [op](const GoldenCase&, const Inputs& in) { return unary(op, in["x"]); });
}

Pool2dOptions pool_options(const GoldenCase& c) {
  Pool2dOptions o{c.i("kernel_h"), c.i("kernel_w"), c.i("stride_h"), c.i("stride_w"), c.i("pad_h"), c.i("pad_w")};
  o.ceil_mode = c.b("ceil_mode");
  o.count_include_pad = c.b("count_include_pad");
  return o;
}

}  // namespace

#define GOLDEN(op) TEST_CASE("golden: " op)

TEST_CASE("golden: the fixture's ops all have a test here") {
  const SafetensorsFile& fx = fixture();
  std::set<std::string> ops;
  for (const auto& name : split(fx.metadata.at("cases"), ',')) {
    auto it = fx.metadata.find(name + ".op");
    REQUIRE_MESSAGE(it != fx.metadata.end(), "case ", name, " has no op");
    ops.insert(it->second);
  }
  for (const auto& op : ops) CHECK_MESSAGE(kTestedOps.count(op) == 1, "fixture op '", op, "' has no golden test");
  for (const auto& op : kTestedOps) CHECK_MESSAGE(ops.count(op) == 1, "no fixture case for op '", op, "'");
}

// ---- elementwise ----
GOLDEN("add") { run_golden("add", [](const GoldenCase&, const Inputs& in) { return add(in["a"], in["b"]); }); }
GOLDEN("sub") { run_golden("sub", [](const GoldenCase&, const Inputs& in) { return sub(in["a"], in["b"]); }); }
GOLDEN("mul") { run_golden("mul", [](const GoldenCase&, const Inputs& in) { return mul(in["a"], in["b"]); }); }
GOLDEN("div") { run_golden("div", [](const GoldenCase&, const Inputs& in) { return div(in["a"], in["b"]); }); }
GOLDEN("add_scalar") {
  run_golden("add_scalar", [](const GoldenCase& c, const Inputs& in) { return add(in["x"], c.f("scalar")); });
}
GOLDEN("mul_scalar") {
  run_golden("mul_scalar", [](const GoldenCase& c, const Inputs& in) { return mul(in["x"], c.f("scalar")); });
}
GOLDEN("neg") { run_unary("neg"); }
GOLDEN("exp") { run_unary("exp"); }
GOLDEN("log") { run_unary("log"); }
GOLDEN("sqrt") { run_unary("sqrt"); }
GOLDEN("abs") { run_unary("abs"); }
GOLDEN("relu") { run_unary("relu"); }
GOLDEN("relu6") { run_unary("relu6"); }
GOLDEN("sigmoid") { run_unary("sigmoid"); }
GOLDEN("tanh") { run_unary("tanh"); }
GOLDEN("pow") {
  run_golden("pow", [](const GoldenCase& c, const Inputs& in) { return pow(in["x"], c.f("exponent")); });
}
GOLDEN("clamp") {
  run_golden("clamp", [](const GoldenCase& c, const Inputs& in) { return clamp(in["x"], c.f("lo"), c.f("hi")); });
}

// ---- reductions ----
GOLDEN("sum") {
  run_golden("sum", [](const GoldenCase& c, const Inputs& in) {
    return c.has("dims") ? sum(in["x"], c.ints("dims"), c.b("keepdim")) : sum(in["x"]);
  });
}
GOLDEN("mean") {
  run_golden("mean", [](const GoldenCase& c, const Inputs& in) {
    return c.has("dims") ? mean(in["x"], c.ints("dims"), c.b("keepdim")) : mean(in["x"]);
  });
}
GOLDEN("max") {
  run_golden("max", [](const GoldenCase& c, const Inputs& in) { return max(in["x"], c.i("dim"), c.b("keepdim")); });
}

// ---- linear algebra ----
GOLDEN("matmul") { run_golden("matmul", [](const GoldenCase&, const Inputs& in) { return matmul(in["a"], in["b"]); }); }
GOLDEN("linear") {
  run_golden("linear", [](const GoldenCase&, const Inputs& in) { return linear(in["x"], in["w"], in.opt("b")); });
}

// ---- convolution, normalization, pooling ----
GOLDEN("conv2d") {
  run_golden("conv2d", [](const GoldenCase& c, const Inputs& in) {
    Conv2dOptions o{c.i("stride_h"), c.i("stride_w"), c.i("pad_h"), c.i("pad_w"),
                    c.i("dil_h"),    c.i("dil_w"),    c.i("groups")};
    return conv2d(in["x"], in["w"], in.opt("b"), o);
  });
}
GOLDEN("batch_norm") {
  run_golden("batch_norm", [](const GoldenCase& c, const Inputs& in) {
    return batch_norm(in["x"], in["rm"], in["rv"], in.opt("w"), in.opt("b"), c.b("training"), c.f("momentum"),
                      c.f("eps"));
  });
}
GOLDEN("max_pool2d") {
  run_golden("max_pool2d", [](const GoldenCase& c, const Inputs& in) { return max_pool2d(in["x"], pool_options(c)); });
}
GOLDEN("avg_pool2d") {
  run_golden("avg_pool2d", [](const GoldenCase& c, const Inputs& in) { return avg_pool2d(in["x"], pool_options(c)); });
}
GOLDEN("adaptive_avg_pool2d") {
  run_golden("adaptive_avg_pool2d", [](const GoldenCase& c, const Inputs& in) {
    return adaptive_avg_pool2d(in["x"], c.i("out_h"), c.i("out_w"));
  });
}

// ---- shape ----
GOLDEN("flatten") {
  run_golden("flatten", [](const GoldenCase& c, const Inputs& in) { return flatten(in["x"], c.i("start"), c.i("end")); });
}
GOLDEN("cat") { run_golden("cat", [](const GoldenCase& c, const Inputs& in) { return cat(in.all(), c.i("dim")); }); }
GOLDEN("pad") {
  run_golden("pad", [](const GoldenCase& c, const Inputs& in) { return pad(in["x"], c.ints("pads"), c.f("value")); });
}

// ---- softmax and losses ----
GOLDEN("softmax") { run_golden("softmax", [](const GoldenCase& c, const Inputs& in) { return softmax(in["x"], c.i("dim")); }); }
GOLDEN("log_softmax") {
  run_golden("log_softmax", [](const GoldenCase& c, const Inputs& in) { return log_softmax(in["x"], c.i("dim")); });
}
GOLDEN("cross_entropy") {
  run_golden("cross_entropy", [](const GoldenCase& c, const Inputs& in) {
    return cross_entropy(in["x"], in["t"], c.f("label_smoothing"), c.reduction());
  });
}
GOLDEN("mse_loss") {
  run_golden("mse_loss", [](const GoldenCase& c, const Inputs& in) { return mse_loss(in["x"], in["t"], c.reduction()); });
}
GOLDEN("kl_div") {
  run_golden("kl_div", [](const GoldenCase& c, const Inputs& in) { return kl_div(in["x"], in["t"], c.reduction()); });
}

// Dropout is random, so PyTorch cannot give golden values; what both must
// agree on is the contract: kept values scaled by 1/(1-p), dropped ones 0,
// the gradient masked and scaled the same way, identity in eval mode.
GOLDEN("dropout (scale only, no fixture)") {
  const float p = 0.25f;
  Generator gen(1234);
  Tensor x = Tensor::full({4000}, 2.0).set_requires_grad(true);
  Tensor y = dropout(x, p, /*training=*/true, &gen);
  const std::vector<float> v = y.to_vector();
  int dropped = 0, bad = 0;
  for (float e : v) {
    if (e == 0.0f) ++dropped;
    else if (std::fabs(e - 2.0f / (1 - p)) > 1e-6f) ++bad;
  }
  CHECK(bad == 0);
  CHECK(dropped > 4000 * p * 0.8);
  CHECK(dropped < 4000 * p * 1.2);
  y.backward(Tensor::ones({4000}));
  const std::vector<float> g = x.grad().to_vector();
  int mismatch = 0;
  for (size_t k = 0; k < v.size(); ++k)
    if (std::fabs(g[k] - v[k] / 2.0f) > 1e-6f) ++mismatch;  // grad = mask / (1-p) = y / x
  CHECK(mismatch == 0);
  CHECK(dropout(x, p, /*training=*/false).to_vector() == x.to_vector());
}
