// optim.cpp: the optimizers (SGD, Adam, Adamax), global-norm gradient clipping and the learning-rate
// schedules declared in optim.h.
//
// Each optimizer's step is one fused pass per parameter: a single loop over the elements that reads
// the gradient and updates the state slots and the parameter in place (no engine ops, no
// temporaries), split across threads with cpu::parallel_for when the tensor is large. Every element
// is computed by exactly one thread, so results do not depend on the thread count. The update rules
// follow PyTorch's torch.optim (same formulas, same order of operations up to rounding), with one
// difference: the step count used by Adam's and Adamax's bias correction is the optimizer's, not a
// per-parameter count, so a parameter skipped on some steps (no gradient) is bias-corrected as if it
// had been updated on all of them. The two agree whenever every parameter has a gradient.
#include "nn/optim.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <type_traits>
#include <unordered_map>

#include "engine/cpu/isa_call.h"
#include "engine/cpu/loops.h"

namespace gv::nn {

namespace {

bool finite(double x) { return std::isfinite(x); }

// Hyper-parameter checks shared by the constructors: "<what>: <name> must be ..., got x".
void check_nonneg(const char* what, const char* name, double x) {
  GV_CHECK(finite(x) && x >= 0, ValueError, "{}: {} must be finite and >= 0, got {}", what, name, x);
}
void check_beta(const char* what, const char* name, double b) {
  GV_CHECK(finite(b) && b >= 0 && b < 1, ValueError, "{}: {} must be in [0, 1), got {}", what, name, b);
}

// The parameter's data as a CPU tensor whose memory the update may write in place.
const Tensor& writable_data(const NamedVar& p) {
  const Tensor& d = p.second.data();
  GV_CHECK(d.device().is_cpu(), DeviceError,
           "optimizer: parameter '{}' is on {}; optimizers update CPU parameters only for now", p.first,
           d.device().str());
  GV_CHECK(d.is_contiguous(), ValueError,
           "optimizer: parameter '{}' ({}) is not contiguous; parameters are updated in place and must be",
           p.first, d.str());
  return d;
}

// ---- the update kernels -----------------------------------------------------------------------------
// Each updates elements [b, e) of one parameter in place, in one pass, in T arithmetic (as PyTorch
// does for float32). Constants come in as arguments: captured by the lambda that parallel_for
// outlines for OpenMP, they would be read through a pointer that the stores to p might alias (as
// far as the compiler can tell), and the loops stayed scalar on the threaded path.

// SGD, with v = nullptr when there is no momentum. Weight decay only when wd != 0, as in PyTorch.
template <class T>
void sgd_update(T* p, T* v, const T* g, int64_t b, int64_t e, T lr, T mu, T wd, bool nesterov) {
  if (!v) {
    // d = g + wd p;  p -= lr d
    for (int64_t k = b; k < e; ++k) p[k] -= lr * (wd != 0 ? g[k] + wd * p[k] : g[k]);
    return;
  }
  // d = g + wd p;  v = mu v + d;  p -= lr (nesterov ? d + mu v : v)   (v starts at 0, so v1 = d)
  for (int64_t k = b; k < e; ++k) {
    const T d = wd != 0 ? g[k] + wd * p[k] : g[k];
    v[k] = mu * v[k] + d;
    p[k] -= lr * (nesterov ? d + mu * v[k] : v[k]);
  }
}

// Adam, with step_size = lr / bc1 and inv_sqrt_bc2 = 1 / sqrt(bc2) (bc = 1 - beta^t).
template <class T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t b, int64_t e, T b1, T b2, T eps, T wd, T step_size,
                 T inv_sqrt_bc2) {
  // d = g + wd p;  m = b1 m + (1-b1) d;  v = b2 v + (1-b2) d^2;  p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
  // (std::sqrt vectorizes because the build has -fno-math-errno: see meson.build)
  for (int64_t k = b; k < e; ++k) {
    const T d = wd != 0 ? g[k] + wd * p[k] : g[k];
    m[k] = b1 * m[k] + (1 - b1) * d;
    v[k] = b2 * v[k] + (1 - b2) * d * d;
    p[k] -= step_size * m[k] / (std::sqrt(v[k]) * inv_sqrt_bc2 + eps);
  }
}

// Adamax (PyTorch's variant, eps inside the max), with clr = lr / bc1.
template <class T>
void adamax_update(T* p, T* m, T* u, const T* g, int64_t b, int64_t e, T b1, T b2, T eps, T wd, T clr) {
  // d = g + wd p;  m = b1 m + (1-b1) d;  u = max(b2 u, |d| + eps);  p -= lr/bc1 * m / u
  for (int64_t k = b; k < e; ++k) {
    const T d = wd != 0 ? g[k] + wd * p[k] : g[k];
    m[k] = b1 * m[k] + (1 - b1) * d;
    const T decayed = b2 * u[k], fresh = std::abs(d) + eps;
    u[k] = (fresh > decayed || fresh != fresh) ? fresh : decayed;  // a NaN gradient propagates
    p[k] -= clr * m[k] / u[k];
  }
}

// x *= c over [b, e)
template <class T>
void scale(T* x, int64_t b, int64_t e, T c) {
  for (int64_t k = b; k < e; ++k) x[k] *= c;
}

// parallel_for's cost per element of an update: about twice an element-wise add's (which splits at
// 32768 elements), so updates of 16384 elements (~10 us on one core) and more use every thread.
constexpr int64_t kUpdateCost = 2;

// Elements per chunk of the deterministic sum of squares (chunk sums are added in order).
constexpr int64_t kNormChunk = 1 << 14;

// sum of x^2 over a contiguous CPU float tensor, accumulated in double; the same value for any
// thread count.
double sum_of_squares(const Tensor& g) {
  return cpu::dispatch_float(g.dtype(), "clip_grad_norm", [&]<class T>() -> double {
    const T* x = g.data<T>();
    const int64_t n = g.numel(), chunks = (n + kNormChunk - 1) / kNormChunk;
    std::vector<double> part(chunks, 0.0);
    cpu::parallel_for(chunks, kNormChunk, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        double s = 0;
        for (int64_t k = c * kNormChunk, end = std::min(n, k + kNormChunk); k < end; ++k) s += double(x[k]) * x[k];
        part[c] = s;
      }
    });
    double total = 0;
    for (double s : part) total += s;
    return total;
  });
}

}  // namespace

// ---- Optimizer ------------------------------------------------------------------------------------

Optimizer::Optimizer(std::vector<NamedVar> params, double lr) : params_(std::move(params)), lr_(0) {
  GV_CHECK(!params_.empty(), ValueError, "optimizer: got an empty parameter list");
  std::unordered_map<std::string, size_t> by_name;
  std::unordered_map<const ag::VarImpl*, size_t> by_var;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, v] = params_[i];
    GV_CHECK(v.defined(), ValueError, "optimizer: parameter '{}' is an undefined Var", name);
    GV_CHECK(v.requires_grad(), ValueError,
             "optimizer: parameter '{}' does not require a gradient; only trainable Vars can be optimized", name);
    auto [it, fresh] = by_name.emplace(name, i);
    GV_CHECK(fresh, ValueError, "optimizer: parameter name '{}' appears twice (at {} and {})", name, it->second, i);
    auto [jt, fresh_var] = by_var.emplace(v.impl().get(), i);
    GV_CHECK(fresh_var, ValueError, "optimizer: parameters '{}' and '{}' are the same Var",
             params_[jt->second].first, name);
  }
  set_lr(lr);
}

void Optimizer::zero_grad() const {
  for (const auto& [name, v] : params_) v.zero_grad();
}

void Optimizer::set_lr(double lr) {
  GV_CHECK(finite(lr) && lr >= 0, ValueError, "optimizer: learning rate must be finite and >= 0, got {}", lr);
  lr_ = lr;
}

void Optimizer::add_slots(const std::vector<std::string>& names) {
  for (const std::string& s : names) {
    std::vector<Tensor> per_param;
    per_param.reserve(params_.size());
    for (const auto& [name, v] : params_)
      per_param.push_back(Tensor::zeros(v.shape(), v.dtype(), v.data().device()));
    slot_names_.push_back(s);
    slots_.push_back(std::move(per_param));
  }
}

std::vector<std::pair<size_t, Tensor>> Optimizer::gradients_for_step() {
  std::vector<std::pair<size_t, Tensor>> work;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = writable_data(params_[i]);
    const Tensor& g = params_[i].second.grad();
    if (!g.defined()) continue;  // no gradient this step: skipped, state untouched
    GV_CHECK(g.device().is_cpu(), DeviceError, "optimizer: the gradient of '{}' is on {}", params_[i].first,
             g.device().str());
    GV_CHECK(g.shape() == p.shape(), ShapeError, "optimizer: the gradient of '{}' has shape {}, the parameter {}",
             params_[i].first, shape_str(g.shape()), shape_str(p.shape()));
    work.emplace_back(i, g.to(p.dtype()).contiguous());
  }
  // A parameter converted since (Module::to) keeps its state, converted too.
  for (auto& per_param : slots_)
    for (size_t i = 0; i < params_.size(); ++i)
      if (per_param[i].dtype() != params_[i].second.dtype()) per_param[i] = per_param[i].to(params_[i].second.dtype());
  return work;
}

std::vector<NamedTensor> Optimizer::state() const {
  std::vector<NamedTensor> out;
  for (size_t s = 0; s < slot_names_.size(); ++s)
    for (size_t i = 0; i < params_.size(); ++i) {
      const Tensor& t = slots_[s][i];
      const DType dt = params_[i].second.dtype();  // a parameter converted since keeps its state, converted
      out.emplace_back(slot_names_[s] + "." + params_[i].first, t.dtype() == dt ? t.clone() : t.to(dt));
    }
  return out;
}

void Optimizer::load_state(const std::vector<NamedTensor>& state, int64_t steps) {
  const std::string who = "load_state (" + kind() + ")";
  GV_CHECK(steps >= 0, ValueError, "{}: the step count must be >= 0, got {}", who, steps);
  // Every check first; nothing below the checks can fail on the caller's input.
  std::map<std::string, std::pair<size_t, size_t>> expected;  // "<slot>.<param>" -> (slot, param)
  for (size_t s = 0; s < slot_names_.size(); ++s)
    for (size_t i = 0; i < params_.size(); ++i) expected[slot_names_[s] + "." + params_[i].first] = {s, i};
  std::set<std::string> seen;
  for (const auto& [name, t] : state) {
    auto it = expected.find(name);
    GV_CHECK(it != expected.end(), ValueError, "{}: unknown state entry '{}' (this optimizer's slots: {})", who,
             name, fmt::join(slot_names_, ", "));
    GV_CHECK(seen.insert(name).second, ValueError, "{}: state entry '{}' is given twice", who, name);
    const auto& [s, i] = it->second;
    const ag::Var& p = params_[i].second;
    GV_CHECK(t.defined(), ValueError, "{}: state entry '{}' is an undefined tensor", who, name);
    GV_CHECK(t.shape() == p.shape(), ShapeError, "{}: '{}' for parameter '{}' has shape {}, expected {}", who,
             name, params_[i].first, shape_str(t.shape()), shape_str(p.shape()));
    GV_CHECK(t.dtype() == p.dtype(), DTypeError, "{}: '{}' for parameter '{}' is {}, expected {}", who, name,
             params_[i].first, dtype_name(t.dtype()), dtype_name(p.dtype()));
  }
  for (const auto& [name, where] : expected)
    GV_CHECK(seen.count(name), ValueError, "{}: state entry '{}' for parameter '{}' is missing", who, name,
             params_[where.second].first);
  // Copies, on the parameters' devices, so the caller's tensors are never aliased.
  std::vector<std::vector<Tensor>> fresh(slots_.size(), std::vector<Tensor>(params_.size()));
  for (const auto& [name, t] : state) {
    const auto& [s, i] = expected.at(name);
    Device dev = params_[i].second.data().device();
    fresh[s][i] = t.device() == dev ? t.clone() : t.to(dev).contiguous();
  }
  slots_ = std::move(fresh);
  steps_ = steps;
}

// ---- SGD ------------------------------------------------------------------------------------------

SGD::SGD(std::vector<NamedVar> params, double lr, double momentum, double weight_decay, bool nesterov)
    : Optimizer(std::move(params), lr), momentum_(momentum), weight_decay_(weight_decay), nesterov_(nesterov) {
  check_nonneg("SGD", "momentum", momentum);
  check_nonneg("SGD", "weight_decay", weight_decay);
  GV_CHECK(!nesterov || momentum > 0, ValueError, "SGD: Nesterov momentum needs momentum > 0, got {}", momentum);
  if (momentum_ > 0) add_slots({"momentum_buffer"});
}

void SGD::step() {
  for (const auto& entry : gradients_for_step()) {
    const size_t i = entry.first;
    const Tensor& grad = entry.second;  // not a structured binding: clang 14 cannot capture those
    const Tensor& param = params_[i].second.data();
    Tensor* buf = momentum_ > 0 ? &slot(0, i) : nullptr;
    cpu::dispatch_float(param.dtype(), "SGD.step", [&]<class T>() {
      T *p = param.data<T>(), *v = buf ? buf->data<T>() : nullptr;
      const T* g = grad.data<T>();
      const T lr = T(lr_), mu = T(momentum_), wd = T(weight_decay_);
      const bool nesterov = nesterov_;
      cpu::parallel_for(param.numel(), kUpdateCost,
                        [&](int64_t b, int64_t e) { cpu::isa_call([&] { sgd_update(p, v, g, b, e, lr, mu, wd, nesterov); }); });
    });
  }
  ++steps_;
}

// ---- Adam -----------------------------------------------------------------------------------------

Adam::Adam(std::vector<NamedVar> params, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Optimizer(std::move(params), lr), beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay) {
  check_beta("Adam", "beta1", beta1);
  check_beta("Adam", "beta2", beta2);
  check_nonneg("Adam", "eps", eps);
  check_nonneg("Adam", "weight_decay", weight_decay);
  add_slots({"exp_avg", "exp_avg_sq"});
}

void Adam::step() {
  const double t = double(steps_ + 1);
  const double bc1 = 1 - std::pow(beta1_, t), bc2 = 1 - std::pow(beta2_, t);  // bias corrections
  for (const auto& entry : gradients_for_step()) {
    const size_t i = entry.first;
    const Tensor& grad = entry.second;  // not a structured binding: clang 14 cannot capture those
    const Tensor& param = params_[i].second.data();
    Tensor &m_slot = slot(0, i), &v_slot = slot(1, i);
    cpu::dispatch_float(param.dtype(), "Adam.step", [&]<class T>() {
      T *p = param.data<T>(), *m = m_slot.data<T>(), *v = v_slot.data<T>();
      const T* g = grad.data<T>();
      const T b1 = T(beta1_), b2 = T(beta2_), eps = T(eps_), wd = T(weight_decay_);
      const T step_size = T(lr_ / bc1), inv_sqrt_bc2 = T(1 / std::sqrt(bc2));
      cpu::parallel_for(param.numel(), kUpdateCost, [&](int64_t b, int64_t e) {
        cpu::isa_call([&] { adam_update(p, m, v, g, b, e, b1, b2, eps, wd, step_size, inv_sqrt_bc2); });
      });
    });
  }
  ++steps_;
}

// ---- Adamax ---------------------------------------------------------------------------------------

Adamax::Adamax(std::vector<NamedVar> params, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Optimizer(std::move(params), lr), beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay) {
  check_beta("Adamax", "beta1", beta1);
  check_beta("Adamax", "beta2", beta2);
  check_nonneg("Adamax", "eps", eps);
  check_nonneg("Adamax", "weight_decay", weight_decay);
  add_slots({"exp_avg", "exp_inf"});
}

void Adamax::step() {
  const double bc1 = 1 - std::pow(beta1_, double(steps_ + 1));
  for (const auto& entry : gradients_for_step()) {
    const size_t i = entry.first;
    const Tensor& grad = entry.second;  // not a structured binding: clang 14 cannot capture those
    const Tensor& param = params_[i].second.data();
    Tensor &m_slot = slot(0, i), &u_slot = slot(1, i);
    cpu::dispatch_float(param.dtype(), "Adamax.step", [&]<class T>() {
      T *p = param.data<T>(), *m = m_slot.data<T>(), *u = u_slot.data<T>();
      const T* g = grad.data<T>();
      const T b1 = T(beta1_), b2 = T(beta2_), eps = T(eps_), wd = T(weight_decay_), clr = T(lr_ / bc1);
      cpu::parallel_for(param.numel(), kUpdateCost,
                        [&](int64_t b, int64_t e) { cpu::isa_call([&] { adamax_update(p, m, u, g, b, e, b1, b2, eps, wd, clr); }); });
    });
  }
  ++steps_;
}

// ---- gradient clipping ----------------------------------------------------------------------------

double clip_grad_norm(const std::vector<NamedVar>& params, double max_norm, bool error_if_nonfinite) {
  GV_CHECK(max_norm >= 0, ValueError, "clip_grad_norm: max_norm must be >= 0, got {}", max_norm);
  // norm = sqrt(sum over parameters and elements of g^2), accumulated in double
  double total = 0;
  std::string first_bad;
  for (const auto& [name, v] : params) {
    const Tensor& g = v.grad();
    if (!g.defined()) continue;
    GV_CHECK(g.device().is_cpu(), DeviceError, "clip_grad_norm: the gradient of '{}' is on {}; CPU only for now",
             name, g.device().str());
    total += sum_of_squares(g.contiguous());
    if (first_bad.empty() && !finite(total)) first_bad = name;  // the first whose gradient broke the sum
  }
  const double norm = std::sqrt(total);
  if (!finite(norm) && error_if_nonfinite)
    GV_THROW(ValueError,
             "clip_grad_norm: the total gradient norm is {}; the gradient of '{}' is not finite (or too large)", norm,
             first_bad);
  if (!(norm > max_norm)) return norm;  // also leaves the gradients alone when the norm is NaN
  // g *= max_norm / (norm + 1e-6)
  const double coef = max_norm / (norm + 1e-6);
  for (const auto& [name, v] : params) {
    const Tensor& g = v.grad();
    if (!g.defined()) continue;
    // Scale in place only memory that this gradient alone holds: autograd may hand the same tensor
    // to several leaves (the two inputs of an add), or the caller may hold it.
    Tensor target = g;
    if (!(g.is_contiguous() && g.storage().use_count() == 2)) {  // 2: g and target
      target = g.clone();
      v.set_grad(target);
    }
    cpu::dispatch_float(target.dtype(), "clip_grad_norm", [&]<class T>() {
      T* x = target.data<T>();
      const T c = T(coef);
      cpu::parallel_for(target.numel(), 1, [&](int64_t b, int64_t e) { scale(x, b, e, c); });
    });
  }
  return norm;
}

// ---- learning-rate schedules ----------------------------------------------------------------------

namespace {
void check_step(const char* what, int64_t step) {
  GV_CHECK(step >= 0, ValueError, "{}: the step must be >= 0, got {}", what, step);
}
}  // namespace

ConstantLR::ConstantLR(double base) : base_(base) { check_nonneg("ConstantLR", "base", base); }

StepLR::StepLR(double base, int64_t step_size, double gamma) : base_(base), gamma_(gamma), step_size_(step_size) {
  check_nonneg("StepLR", "base", base);
  GV_CHECK(step_size >= 1, ValueError, "StepLR: step_size must be >= 1, got {}", step_size);
  GV_CHECK(finite(gamma) && gamma > 0, ValueError, "StepLR: gamma must be finite and > 0, got {}", gamma);
}
// base * gamma^floor(step / step_size)
double StepLR::lr(int64_t step) const {
  check_step("StepLR", step);
  return base_ * std::pow(gamma_, double(step / step_size_));
}

ExponentialLR::ExponentialLR(double base, double gamma, double decay_steps)
    : base_(base), gamma_(gamma), decay_steps_(decay_steps) {
  check_nonneg("ExponentialLR", "base", base);
  GV_CHECK(finite(gamma) && gamma > 0, ValueError, "ExponentialLR: gamma must be finite and > 0, got {}", gamma);
  GV_CHECK(finite(decay_steps) && decay_steps > 0, ValueError,
           "ExponentialLR: decay_steps must be finite and > 0, got {}", decay_steps);
}
// base * gamma^(step / decay_steps)
double ExponentialLR::lr(int64_t step) const {
  check_step("ExponentialLR", step);
  return base_ * std::pow(gamma_, double(step) / decay_steps_);
}

WarmupLR::WarmupLR(std::shared_ptr<LRSchedule> inner, int64_t warmup_steps)
    : inner_(std::move(inner)), warmup_(warmup_steps) {
  GV_CHECK(inner_ != nullptr, ValueError, "WarmupLR: the inner schedule is null");
  GV_CHECK(warmup_steps >= 0, ValueError, "WarmupLR: warmup_steps must be >= 0, got {}", warmup_steps);
}
// inner(step) * step / warmup while step < warmup (0 at step 0), then inner(step)
double WarmupLR::lr(int64_t step) const {
  check_step("WarmupLR", step);
  const double base = inner_->lr(step);
  return step < warmup_ ? base * double(step) / double(warmup_) : base;
}

}  // namespace gv::nn
