// module.cpp: Module's traversal (dotted names, depth first), training mode, dtype conversion,
// buffer replacement and the checks on registration. See nn/module.h.
#include "nn/module.h"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>
#include <unordered_set>

namespace gv::nn {

// ---- traversal --------------------------------------------------------------------------------
void Module::visit(const std::string& prefix,
                   const std::function<void(const std::string&, const Module&)>& f) const {
  f(prefix, *this);
  for (const auto& [name, child] : children_) child->visit(prefix + name + ".", f);
}

// A parameter shared by two modules (tied weights) is listed once, under its first name, so that
// an optimizer updates it once and parameter_count counts it once.
std::vector<NamedVar> Module::named_parameters() const {
  std::vector<NamedVar> out;
  std::unordered_set<const ag::VarImpl*> seen;
  visit("", [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, v] : m.params_)
      if (seen.insert(v.impl().get()).second) out.emplace_back(prefix + name, v);
  });
  return out;
}

std::vector<ag::Var> Module::parameters() const {
  std::vector<ag::Var> out;
  for (auto& [name, v] : named_parameters()) out.push_back(v);
  return out;
}

std::vector<NamedTensor> Module::named_buffers() const {
  std::vector<NamedTensor> out;
  visit("", [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, t] : m.buffers_) out.emplace_back(prefix + name, t);
  });
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, v] : named_parameters()) n += v.numel();
  return n;
}

DType Module::dtype() const {
  auto ps = parameters();
  return ps.empty() ? DType::f32 : ps.front().dtype();
}

// ---- state of the whole tree ------------------------------------------------------------------
void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() const {
  for (const auto& [name, v] : named_parameters()) v.zero_grad();
}

// Parameters are converted inside their VarImpl, so every handle to them (the layer's own members,
// an optimizer's list) sees the new dtype; requires_grad stays, a gradient is converted with them.
// Integer buffers (counters, indices) keep their dtype.
void Module::to(DType dtype) {
  GV_CHECK(is_floating(dtype), DTypeError, "{}.to: parameters must be floating point, not {}", type_name(),
           dtype_name(dtype));
  for (auto& [name, v] : params_) {
    ag::VarImpl& impl = *v.impl();
    impl.data = impl.data.to(dtype);
    if (impl.grad.defined()) impl.grad = impl.grad.to(dtype);
  }
  for (auto& [name, t] : buffers_)
    if (is_floating(t.dtype())) t = t.to(dtype);
  for (auto& [name, child] : children_) child->to(dtype);
}

void Module::to(Device device) {
  for (auto& [name, v] : params_) {
    ag::VarImpl& impl = *v.impl();
    if (!(impl.data.device() == device)) impl.data = impl.data.to(device);
    if (impl.grad.defined() && !(impl.grad.device() == device)) impl.grad = impl.grad.to(device);
  }
  for (auto& [name, t] : buffers_)
    if (is_floating(t.dtype()) && !(t.device() == device)) t = t.to(device);
  for (auto& [name, child] : children_) child->to(device);
}

Device Module::device() const {
  const auto ps = named_parameters();
  return ps.empty() ? Device::cpu() : ps.front().second.data().device();
}

// "enc.conv.mask": walk down the children named before the last dot, then replace the buffer
// there by copying the new value into it (the buffer keeps its own storage).
void Module::set_buffer(const std::string& name, const Tensor& value) {
  auto dot = name.find('.');
  if (dot != std::string::npos) {
    std::string head = name.substr(0, dot);
    for (auto& [cname, child] : children_)
      if (cname == head) return child->set_buffer(name.substr(dot + 1), value);
    GV_THROW(ValueError, "set_buffer: {} has no submodule named '{}' (looking for buffer '{}')", type_name(), head,
             name);
  }
  for (auto& [bname, t] : buffers_) {
    if (bname != name) continue;
    GV_CHECK(value.defined() && value.shape() == t.shape() && value.dtype() == t.dtype(), ShapeError,
             "set_buffer: {} buffer '{}' is {}, the new value is {}", type_name(), name, t.str(),
             value.defined() ? value.str() : "undefined");
    t.copy_(value);
    return;
  }
  GV_THROW(ValueError, "set_buffer: {} has no buffer named '{}'", type_name(), name);
}

std::string Module::type_name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string full = status == 0 && d ? d : mangled;
  std::free(d);
  // drop the namespaces of the class itself ("gv::nn::Linear" -> "Linear"), not of template arguments
  auto lt = full.find('<');
  auto colons = full.rfind("::", lt);
  return colons == std::string::npos ? full : full.substr(colons + 2);
}

// ---- registration -----------------------------------------------------------------------------
void Module::check_new_name(const std::string& name) const {
  GV_CHECK(!name.empty(), ValueError, "{}: cannot register a parameter, buffer or submodule with an empty name",
           type_name());
  GV_CHECK(name.find('.') == std::string::npos, ValueError,
           "{}: cannot register '{}': names may not contain '.' (dots separate nested modules)", type_name(), name);
  auto taken = [&](const auto& list) {
    for (const auto& entry : list)
      if (entry.first == name) return true;
    return false;
  };
  const char* kind = taken(params_)     ? "a parameter"
                     : taken(buffers_)  ? "a buffer"
                     : taken(children_) ? "a submodule"
                                        : nullptr;
  GV_CHECK(kind == nullptr, ValueError, "{}: cannot register '{}': the name is already taken by {}", type_name(),
           name, kind ? kind : "");
}

ag::Var Module::register_parameter(const std::string& name, Tensor init) {
  check_new_name(name);
  GV_CHECK(init.defined() && is_floating(init.dtype()), DTypeError,
           "{}: parameter '{}' must be a defined floating-point tensor, got {}", type_name(), name,
           init.defined() ? init.str() : "undefined");
  ag::Var v(std::move(init), /*requires_grad=*/true);
  params_.emplace_back(name, v);
  return v;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  GV_CHECK(value.defined(), ValueError, "{}: buffer '{}' is an undefined tensor", type_name(), name);
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name);
  GV_CHECK(m != nullptr, ValueError, "{}: submodule '{}' is null", type_name(), name);
  GV_CHECK(m.get() != this, ValueError, "{}: cannot register itself as its submodule '{}'", type_name(), name);
  children_.emplace_back(name, std::move(m));
}

const Tensor& Module::buffer(const std::string& name) const {
  for (const auto& [bname, t] : buffers_)
    if (bname == name) return t;
  GV_THROW(ValueError, "{} has no buffer named '{}'", type_name(), name);
}

}  // namespace gv::nn
