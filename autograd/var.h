// var.h: the autograd Variable. A Var wraps an engine Tensor (its value) with what reverse-mode
// differentiation needs: whether it requires a gradient, its accumulated gradient (leaves only),
// and the Node that produced it. Ops on Vars (autograd/ops.h) compute with engine ops and, when
// an input requires a gradient and grad mode is on, record a Node whose backward function maps
// the output's gradient to the inputs' gradients, again with engine ops (so it runs on any device).
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace gv::ag {

struct Node;

struct VarImpl {
  Tensor data;
  Tensor grad;  // accumulated by backward() on leaves that require a gradient
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor data, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& data() const;
  const Tensor& grad() const;
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  bool is_leaf() const { return impl_ && !impl_->grad_fn; }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  const std::shared_ptr<VarImpl>& impl() const { return impl_; }

  const Shape& shape() const { return data().shape(); }
  int64_t dim() const { return data().dim(); }
  int64_t size(int64_t axis) const { return data().size(axis); }
  int64_t numel() const { return data().numel(); }
  DType dtype() const { return data().dtype(); }
  double item() const { return data().item(); }

  // Reverse-mode sweep from this Var. With no gradient given it must hold one element (the seed
  // is 1); otherwise gout has this Var's shape. Gradients add up in the leaves' grad().
  void backward(const Tensor& gout = Tensor()) const;
  // The same sweep, calling on_leaf_ready(leaf) as soon as a leaf's gradient is complete (after
  // the last node that feeds it, in the sweep's fixed order): data-parallel training starts
  // reducing a gradient while the rest of backward runs (nn/distributed.h). Every leaf of the
  // graph is reported once, a leaf that received no gradient too; leaves outside it are not.
  void backward(const Tensor& gout, const std::function<void(const Var&)>& on_leaf_ready) const;
  void zero_grad() const;                  // drops the accumulated gradient
  Var detach() const;                      // the same value, cut from the graph
  Var& requires_grad_(bool on = true);     // leaves only
  void set_data(const Tensor& t) const;    // replace the value (optimizer updates), same shape
  void set_grad(const Tensor& g) const;

 private:
  std::shared_ptr<VarImpl> impl_;
};

// One recorded op. backward(gout) returns one gradient per input (an undefined Tensor where the
// input needs none), each of that input's shape.
struct Node {
  const char* name;
  std::vector<Var> inputs;
  std::function<std::vector<Tensor>(const Tensor& gout)> backward;
  ~Node();  // tears the graph down iteratively (long chains must not overflow the stack)
};

// Grad mode: when off, ops record nothing.
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

// Wraps an op's result: records a Node over `inputs` when grad mode is on and any input requires
// a gradient, else returns a plain Var.
Var record(Tensor out, const char* name, std::vector<Var> inputs,
           std::function<std::vector<Tensor>(const Tensor& gout)> backward);

}  // namespace gv::ag
