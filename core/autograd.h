// Define-by-run reverse-mode autograd, PyTorch-shaped: every differentiable op
// call that sees an input requiring grad creates one Node; its edges point to
// the producers' Nodes (or to an AccumulateGrad node for a leaf).
//
// Every lowbit op has exactly one differentiable output, so a Node's
// backward takes one gradient and returns one gradient per input (undefined
// where the input needs none).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace lowbit {

struct Edge {
  std::shared_ptr<Node> fn;  // null: this input needs no gradient
};

// A tensor saved for backward, with the version it had when saved. unpack()
// throws if it was written in place since: a wrong gradient is worse than none.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t, const char* op);
  Tensor unpack() const;
  void release() { tensor_ = Tensor(); released_ = true; }
  bool defined() const { return tensor_.defined(); }

 private:
  Tensor tensor_;
  uint64_t version_ = 0;
  const char* op_ = "";
  bool released_ = false;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // grad: gradient w.r.t. this node's output (same shape as the output).
  virtual std::vector<Tensor> backward(const Tensor& grad) = 0;
  // Drop saved tensors after a backward without retain_graph.
  virtual void release_saved() {}

  bool needs_input_grad(size_t i) const { return i < next_edges.size() && next_edges[i].fn != nullptr; }

  std::vector<Edge> next_edges;
  bool released = false;  // set after release_saved(); backward again is an error
  uint64_t sequence_nr = 0;  // creation order, for a deterministic sweep
};

// Terminal node of a leaf tensor: adds the incoming gradient into leaf.grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::weak_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {}
  const char* name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> backward(const Tensor& grad) override;

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;               // set for non-leaf results of recorded ops
  std::shared_ptr<AccumulateGrad> accumulator;  // lazily created for leaves
};

// Grad mode (thread-local, default on).
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// The edge through which a gradient for `t` flows (null edge if none needed).
Edge gradient_edge(const Tensor& t);

// True if recording is on and any input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

// Attach `node` as the grad_fn of `out`, with one edge per input.
// Only call when any_requires_grad(inputs) is true.
void record(const Tensor& out, const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs);
void record(const Tensor& out, const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs);

// Run backward from `root` with seed gradient `grad` (same shape as root).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace lowbit
