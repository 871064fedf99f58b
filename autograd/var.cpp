// var.cpp: Var, the no-grad switch, and backward: an iterative topological sort of the recorded
// graph followed by one sweep in reverse order that accumulates each node's output gradient.
#include "autograd/var.h"

#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"

namespace gv::ag {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

Var::Var(Tensor data, bool requires_grad) : impl_(std::make_shared<VarImpl>()) {
  GV_CHECK(data.defined(), ValueError, "Var: undefined tensor");
  GV_CHECK(!requires_grad || is_floating(data.dtype()), DTypeError,
           "Var: only float tensors can require a gradient, got {}", data.str());
  impl_->data = std::move(data);
  impl_->requires_grad = requires_grad;
}

const Tensor& Var::data() const {
  GV_CHECK(impl_, ValueError, "Var: undefined variable");
  return impl_->data;
}
const Tensor& Var::grad() const {
  GV_CHECK(impl_, ValueError, "Var: undefined variable");
  return impl_->grad;
}
void Var::zero_grad() const {
  if (impl_) impl_->grad = Tensor();
}
Var Var::detach() const { return Var(data(), false); }
Var& Var::requires_grad_(bool on) {
  GV_CHECK(is_leaf(), ValueError, "requires_grad_: only leaves can change it (this Var came from {})",
           impl_ && impl_->grad_fn ? impl_->grad_fn->name : "?");
  GV_CHECK(!on || is_floating(data().dtype()), DTypeError, "requires_grad_: {} cannot require a gradient",
           data().str());
  impl_->requires_grad = on;
  return *this;
}
void Var::set_data(const Tensor& t) const {
  GV_CHECK(t.shape() == data().shape() && t.dtype() == data().dtype(), ShapeError,
           "set_data: new value {} does not match {}", t.str(), data().str());
  impl_->data = t;
}
void Var::set_grad(const Tensor& g) const {
  GV_CHECK(!g.defined() || g.shape() == data().shape(), ShapeError, "set_grad: gradient {} does not match {}",
           g.str(), data().str());
  impl_->grad = g;
}

Var record(Tensor out, const char* name, std::vector<Var> inputs,
           std::function<std::vector<Tensor>(const Tensor& gout)> backward) {
  bool any = false;
  for (const Var& v : inputs) any = any || v.requires_grad();
  if (!any || !g_grad_enabled) return Var(std::move(out), false);
  Var r(std::move(out), false);
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  r.impl()->requires_grad = true;
  r.impl()->grad_fn = std::move(node);
  return r;
}

Node::~Node() {
  // Destroying the last handle to a long chain would recurse once per node. Instead, take over
  // every input node that would die with this one and destroy them one at a time.
  std::vector<std::shared_ptr<Node>> pending;
  auto steal = [&pending](std::vector<Var>& ins) {
    for (Var& v : ins) {
      const auto& impl = v.impl();
      if (impl && impl.use_count() == 1 && impl->grad_fn && impl->grad_fn.use_count() == 1)
        pending.push_back(std::move(impl->grad_fn));
    }
    ins.clear();
  };
  steal(inputs);
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    steal(n->inputs);
  }  // n is destroyed here with no inputs left, so its destructor does not recurse
}

namespace {

// Nodes reachable from root, each after every node that consumes its output (iterative DFS).
std::vector<Node*> topo_order(Node* root) {
  std::vector<Node*> order;
  std::unordered_set<Node*> seen{root};
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [n, i] = stack.back();
    if (i < n->inputs.size()) {
      const Var& in = n->inputs[i++];
      Node* c = in.defined() && in.requires_grad() ? in.grad_fn().get() : nullptr;
      if (c && seen.insert(c).second) stack.push_back({c, 0});
    } else {
      order.push_back(n);  // post-order: inputs first
      stack.pop_back();
    }
  }
  return {order.rbegin(), order.rend()};  // consumers first
}

void accumulate(Tensor& slot, const Tensor& g) {
  slot = slot.defined() ? add(slot, g) : g.contiguous();
}

}  // namespace

void Var::backward(const Tensor& gout) const { backward(gout, nullptr); }

void Var::backward(const Tensor& gout, const std::function<void(const Var&)>& on_leaf_ready) const {
  GV_CHECK(requires_grad(), ValueError, "backward: this Var does not require a gradient");
  Tensor seed = gout;
  if (!seed.defined()) {
    GV_CHECK(numel() == 1, ShapeError, "backward: a Var of shape {} needs an explicit output gradient",
             shape_str(shape()));
    seed = Tensor::ones(shape(), dtype(), data().device());
  }
  GV_CHECK(seed.shape() == shape() && seed.dtype() == dtype(), ShapeError,
           "backward: output gradient {} does not match the Var {}", seed.str(), data().str());
  if (is_leaf()) {
    accumulate(impl_->grad, seed);
    if (on_leaf_ready) on_leaf_ready(*this);
    return;
  }
  NoGradGuard no_grad;  // backward functions compute with plain tensors; record nothing
  const std::vector<Node*> order = topo_order(grad_fn().get());
  // With a hook: how many nodes still feed each leaf; at zero its gradient is complete.
  std::unordered_map<VarImpl*, int> feeds;
  if (on_leaf_ready)
    for (Node* n : order)
      for (const Var& in : n->inputs)
        if (in.defined() && in.requires_grad() && in.is_leaf()) ++feeds[in.impl().get()];
  auto fed = [&](Node* n) {
    for (const Var& in : n->inputs)
      if (in.defined() && in.requires_grad() && in.is_leaf()) {
        int& left = feeds[in.impl().get()];
        if (--left == 0) on_leaf_ready(in);
      }
  };
  std::unordered_map<Node*, Tensor> grads{{grad_fn().get(), seed}};
  for (Node* n : order) {
    auto it = grads.find(n);
    if (it == grads.end()) {  // no gradient reached this node
      if (on_leaf_ready) fed(n);
      continue;
    }
    Tensor g = std::move(it->second);
    grads.erase(it);
    std::vector<Tensor> gin = n->backward(g);
    GV_CHECK(gin.size() == n->inputs.size(), Error, "backward of {}: {} gradients for {} inputs", n->name,
             gin.size(), n->inputs.size());
    for (size_t i = 0; i < gin.size(); ++i) {
      const Var& in = n->inputs[i];
      if (!in.requires_grad() || !gin[i].defined()) continue;
      GV_CHECK(gin[i].shape() == in.shape(), ShapeError,
               "backward of {}: gradient {} for input {} of shape {}", n->name, shape_str(gin[i].shape()), i,
               shape_str(in.shape()));
      if (in.is_leaf()) accumulate(in.impl()->grad, gin[i]);
      else accumulate(grads[in.grad_fn().get()], gin[i]);
    }
    if (on_leaf_ready) fed(n);
  }
}

}  // namespace gv::ag
