// module.h: Module, the base of every layer and model. A Module owns named parameters (Vars that
// require gradients), named buffers (Tensors that are state but not trained, e.g. a PixelCNN
// mask) and named submodules; names nest with dots ("enc.fc1.weight"), which is also how
// checkpoints and optimizer state refer to them. Layers with one input and one output derive from
// Layer and can be chained in a Sequential (nn/layers.h).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"

namespace gv::nn {

using NamedVar = std::pair<std::string, ag::Var>;
using NamedTensor = std::pair<std::string, Tensor>;

class Module {
 public:
  virtual ~Module() = default;

  // Everything below, depth first in registration order, with dotted names: a module's own
  // entries come before its submodules' (as in PyTorch); a parameter shared by two modules is listed once.
  std::vector<NamedVar> named_parameters() const;
  std::vector<ag::Var> parameters() const;
  std::vector<NamedTensor> named_buffers() const;
  int64_t parameter_count() const;  // number of scalar parameters
  DType dtype() const;              // the first parameter's dtype (after any to()); f32 without any

  // Training mode (the default) or evaluation mode, for this module and all below it.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  void zero_grad() const;  // drops every parameter's gradient
  // Converts every parameter and buffer to `dtype` (float64 for gradient checks), in place:
  // the layers' own handles see the change.
  void to(DType dtype);
  // Moves every parameter (and its gradient) and every float buffer to `device`, in place. int64
  // buffers stay on the host: they are counters the layers read there (a dropout stream's state).
  // Make the optimizer after the move: its state is allocated on the parameters' device.
  void to(Device device);
  Device device() const;  // the first parameter's device; the CPU without any

  // Replace a buffer's value (same shape and dtype), by its dotted name.
  void set_buffer(const std::string& name, const Tensor& value);

  // The class name without namespaces ("Linear"), for error messages.
  std::string type_name() const;

 protected:
  // Registration, from a subclass's constructor. Names are plain (no dots), unique per module.
  ag::Var register_parameter(const std::string& name, Tensor init);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  // The current value of one of this module's own buffers (by plain name). Layers read buffers
  // through this rather than keeping the Tensor register_buffer returned: to() replaces them.
  const Tensor& buffer(const std::string& name) const;

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void check_new_name(const std::string& name) const;
  // Calls f(prefix, module) for this module ("" prefix) and every module below it, depth first;
  // the prefix of a submodule is its dotted path plus a dot ("enc.fc1.").
  void visit(const std::string& prefix, const std::function<void(const std::string&, const Module&)>& f) const;
  std::vector<NamedVar> params_;
  std::vector<NamedTensor> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A module with one input and one output.
class Layer : public Module {
 public:
  virtual ag::Var forward(const ag::Var& x) = 0;
  ag::Var operator()(const ag::Var& x) { return forward(x); }
};

}  // namespace gv::nn
