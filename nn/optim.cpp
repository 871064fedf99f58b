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

#include "engine/backend.h"
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

// The parameter's data, whose memory the update may write in place (on its own device).
const Tensor& writable_data(const NamedVar& p) {
  const Tensor& d = p.second.data();
  GV_CHECK(d.is_contiguous(), ValueError,
           "optimizer: parameter '{}' ({}) is not contiguous; parameters are updated in place and must be",
           p.first, d.str());
  return d;
}

// ---- the update kernels -----------------------------------------------------------------------------
// The rules are engine/update_rules.h's; each backend runs one fused pass per parameter, in T
// arithmetic (as PyTorch does for float32).
void run_update(UpdateRule rule, const char* who, const Tensor& param, Tensor* s0, Tensor* s1, const Tensor& grad,
                std::initializer_list<double> h) {
  UpdateArgs a{rule, param.dtype(), param.numel(), param.raw_data(), s0 ? s0->raw_data() : nullptr,
               s1 ? s1->raw_data() : nullptr, grad.raw_data(), {0, 0, 0, 0, 0, 0}};
  size_t i = 0;
  for (double v : h) a.h[i++] = v;
  backend_for(param.device(), who).optimizer_update(a);
}

// x *= c over [b, e)
template <class T>
void scale(T* x, int64_t b, int64_t e, T c) {
  for (int64_t k = b; k < e; ++k) x[k] *= c;
}

// Elements per chunk of the deterministic sum of squares (chunk sums are added in order).
constexpr int64_t kNormChunk = 1 << 14;
constexpr int kNormLanes = 32;  // running sums per chunk

// sum of x^2 over a contiguous CPU float tensor, accumulated in double; the same value for any
// thread count.
double sum_of_squares(const Tensor& g) {
  return cpu::dispatch_float(g.dtype(), "clip_grad_norm", [&]<class T>() -> double {
    const T* x = g.data<T>();
    const int64_t n = g.numel(), chunks = (n + kNormChunk - 1) / kNormChunk;
    std::vector<double> part(chunks, 0.0);
    cpu::parallel_for(chunks, kNormChunk, [&](int64_t b, int64_t e) {
      // 32 running sums per chunk, in a fixed order: the loop vectorizes into independent chains
      // (eight sums in two chains were bound by the add's latency: 3.8% of a W2 step), and every
      // ISA path gives the same bits.
      cpu::isa_call([&] {
        for (int64_t c = b; c < e; ++c) {
          const int64_t k0 = c * kNormChunk, end = std::min(n, k0 + kNormChunk);
          double acc[kNormLanes] = {};
          int64_t k = k0;
          for (; k + kNormLanes <= end; k += kNormLanes)
            for (int j = 0; j < kNormLanes; ++j) acc[j] += double(x[k + j]) * double(x[k + j]);
          for (int j = 0; k < end; ++k, ++j) acc[j] += double(x[k]) * double(x[k]);
          for (int w = kNormLanes / 2; w >= 1; w /= 2)  // a fixed pairwise tree
            for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
          part[c] = acc[0];
        }
      });
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
    if (momentum_ > 0)
      run_update(UpdateRule::sgd_momentum, "SGD.step", param, &slot(0, i), nullptr, grad,
                 {lr_, momentum_, weight_decay_, nesterov_ ? 1.0 : 0.0});
    else
      run_update(UpdateRule::sgd, "SGD.step", param, nullptr, nullptr, grad, {lr_, weight_decay_});
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
    run_update(UpdateRule::adam, "Adam.step", param, &m_slot, &v_slot, grad,
               {beta1_, beta2_, eps_, weight_decay_, lr_ / bc1, 1 / std::sqrt(bc2)});
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
    run_update(UpdateRule::adamax, "Adamax.step", param, &m_slot, &u_slot, grad,
               {beta1_, beta2_, eps_, weight_decay_, lr_ / bc1});
  }
  ++steps_;
}

// ---- gradient clipping ----------------------------------------------------------------------------

double clip_grad_norm(const std::vector<NamedVar>& params, double max_norm, bool error_if_nonfinite) {
  GV_CHECK(max_norm >= 0, ValueError, "clip_grad_norm: max_norm must be >= 0, got {}", max_norm);
  // norm = sqrt(sum over parameters and elements of g^2), accumulated in double
  // On a GPU the per-parameter sums stay on the device and one number comes back.
  double total = 0;
  std::string first_bad;
  Tensor device_total;
  for (const auto& [name, v] : params) {
    const Tensor& g = v.grad();
    if (!g.defined()) continue;
    if (!g.device().is_cpu()) {
      Tensor s = gv::sum(gv::square(g.to(DType::f64)));
      device_total = device_total.defined() ? gv::add(device_total, s) : s;
      continue;
    }
    total += sum_of_squares(g.contiguous());
    if (first_bad.empty() && !finite(total)) first_bad = name;  // the first whose gradient broke the sum
  }
  if (device_total.defined()) {
    total += device_total.item();
    if (first_bad.empty() && !finite(total))
      for (const auto& [name, v] : params)  // only on the error path: find which one
        if (v.grad().defined() && !finite(gv::sum(gv::square(v.grad().to(DType::f64))).item())) {
          first_bad = name;
          break;
        }
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
    if (!g.device().is_cpu()) {
      v.set_grad(gv::mul(g, coef));
      continue;
    }
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
