// The backward engine: collect the graph reachable from the root, count each
// node's consumers, then run nodes whose consumers have all delivered their
// gradient (Kahn's algorithm; ties broken by creation order, newest first, so
// the sweep is deterministic).
#include "core/autograd.h"

#include <atomic>
#include <queue>
#include <unordered_map>

#include "core/detail.h"
#include "core/ops.h"

namespace lowbit {

namespace {
thread_local bool t_grad_enabled = true;
std::atomic<uint64_t> g_sequence{0};
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }

SavedTensor::SavedTensor(const Tensor& t, const char* op) : tensor_(t), op_(op) {
  if (t.defined()) version_ = t.version();
}

Tensor SavedTensor::unpack() const {
  LOWBIT_CHECK(!released_, "backward: ", op_,
               " was already run and its saved tensors freed; call backward(…, retain_graph=true) the first time "
               "to backward through the graph twice");
  if (tensor_.defined())
    LOWBIT_CHECK(tensor_.version() == version_, "backward: a tensor of shape ", shape_str(tensor_.shape()),
                 " saved by ", op_, " was modified in place (version ", version_, " when saved, now ",
                 tensor_.version(), "); its gradient would be wrong");
  return tensor_;
}

std::vector<Tensor> AccumulateGrad::backward(const Tensor& grad) {
  auto leaf = leaf_.lock();
  if (!leaf) return {};
  Tensor owner(leaf);
  LOWBIT_CHECK(grad.shape() == owner.shape(), "internal: gradient of shape ", shape_str(grad.shape()),
               " for a leaf of shape ", shape_str(owner.shape()));
  AutogradMeta* meta = leaf->autograd.get();
  if (!meta->grad.defined()) {
    // Own a fresh contiguous buffer: the incoming gradient may alias another
    // tensor (a view of an upstream gradient).
    meta->grad = grad.detach().clone();
  } else {
    Tensor acc = meta->grad;
    Tensor g = grad.contiguous();
    if (acc.is_contiguous()) {
      detail::fk().f32_binary(acc.data<float>(), acc.data<float>(), 1, g.data<float>(), 1, kernels::Binary::add,
                              acc.numel());
      acc.bump_version();
    } else {
      meta->grad = add(acc, g);
    }
  }
  return {};
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.impl()->autograd) return {};
  AutogradMeta* m = t.impl()->autograd.get();
  if (m->grad_fn) return {m->grad_fn};
  if (!m->requires_grad) return {};
  if (!m->accumulator) {
    m->accumulator = std::make_shared<AccumulateGrad>(t.impl_ptr());
    m->accumulator->sequence_nr = g_sequence++;
  }
  return {m->accumulator};
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

static void attach(const Tensor& out, const std::shared_ptr<Node>& node) {
  node->sequence_nr = g_sequence++;
  TensorImpl* impl = out.impl();
  if (!impl->autograd) impl->autograd = std::make_unique<AutogradMeta>();
  impl->autograd->grad_fn = node;
  impl->autograd->requires_grad = true;
}

void record(const Tensor& out, const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs) {
  node->next_edges.clear();
  for (const Tensor* t : inputs) node->next_edges.push_back(t ? gradient_edge(*t) : Edge{});
  attach(out, node);
}

void record(const Tensor& out, const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs) {
  node->next_edges.clear();
  for (const Tensor& t : inputs) node->next_edges.push_back(gradient_edge(t));
  attach(out, node);
}

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  Edge root_edge = gradient_edge(root);
  LOWBIT_CHECK(root_edge.fn != nullptr,
               "backward: tensor of shape ", shape_str(root.shape()), " does not require grad and has no grad_fn");
  NoGradGuard no_grad;

  // 1. Dependency counts: how many gradient contributions each node awaits.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{root_edge.fn.get()};
  deps[root_edge.fn.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.fn) continue;
      auto [it, inserted] = deps.try_emplace(e.fn.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(e.fn.get());
    }
  }

  // 2. Sweep.
  auto newer_first = [](Node* a, Node* b) { return a->sequence_nr < b->sequence_nr; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(newer_first)> ready(newer_first);
  std::unordered_map<Node*, Tensor> grads;
  grads[root_edge.fn.get()] = grad;
  ready.push(root_edge.fn.get());
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    LOWBIT_CHECK(!node->released, "backward: trying to backward through the graph a second time (", node->name(),
                 " already freed its saved tensors); pass retain_graph=true to the first backward");
    Tensor g = std::move(grads[node]);
    grads.erase(node);
    std::vector<Tensor> in_grads;
    if (g.defined()) in_grads = node->backward(g);
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      Node* next = node->next_edges[i].fn.get();
      if (!next) continue;
      if (i < in_grads.size() && in_grads[i].defined()) {
        Tensor& slot = grads[next];
        slot = slot.defined() ? add(slot, in_grads[i]) : in_grads[i];
      }
      if (--deps[next] == 0) ready.push(next);
    }
    if (!retain_graph && dynamic_cast<AccumulateGrad*>(node) == nullptr) {
      node->release_saved();
      node->released = true;
    }
  }
}

}  // namespace lowbit
