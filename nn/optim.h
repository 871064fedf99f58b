// optim.h: optimizers over a module's named parameters, gradient clipping, and learning-rate
// schedules. Optimizer state is keyed by parameter name (not address), so a checkpoint saved by
// one process resumes exactly in another.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace gv::nn {

class Optimizer {
 public:
  Optimizer(std::vector<NamedVar> params, double lr);
  virtual ~Optimizer() = default;

  virtual void step() = 0;  // one update from the parameters' current gradients
  void zero_grad() const;
  double lr() const { return lr_; }
  void set_lr(double lr);
  int64_t steps() const { return steps_; }  // updates done so far
  const std::vector<NamedVar>& params() const { return params_; }

  // The optimizer's state as named tensors ("<slot>.<parameter name>", e.g. "exp_avg.enc.fc1.weight")
  // plus the step count; load_state checks every name, shape and dtype before changing anything.
  virtual std::vector<NamedTensor> state() const;
  virtual void load_state(const std::vector<NamedTensor>& state, int64_t steps);
  virtual std::string kind() const = 0;  // "sgd", "adam", "adamax"

 protected:
  // Per-parameter state slots, e.g. {"exp_avg", "exp_avg_sq"}; slot(s, i) is slot s of param i.
  void add_slots(const std::vector<std::string>& names);
  Tensor& slot(size_t s, size_t i) { return slots_[s][i]; }
  // The parameters to update this step, all checked (CPU, contiguous data) before any changes:
  // (index, gradient) for each parameter that has a gradient, the gradient contiguous and of the
  // parameter's dtype. Slots whose dtype no longer matches their parameter's are converted.
  std::vector<std::pair<size_t, Tensor>> gradients_for_step();
  std::vector<NamedVar> params_;
  double lr_;
  int64_t steps_ = 0;

 private:
  std::vector<std::string> slot_names_;
  std::vector<std::vector<Tensor>> slots_;  // [slot][param], zeros of the param's shape
};

// p -= lr (g + wd p), with momentum v = mu v + g (+ Nesterov when asked)
class SGD : public Optimizer {
 public:
  SGD(std::vector<NamedVar> params, double lr, double momentum = 0, double weight_decay = 0, bool nesterov = false);
  void step() override;
  std::string kind() const override { return "sgd"; }

 private:
  double momentum_, weight_decay_;
  bool nesterov_;
};

// Kingma & Ba (2015), with bias correction; weight decay added to the gradient (L2), as PyTorch's Adam.
class Adam : public Optimizer {
 public:
  Adam(std::vector<NamedVar> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
       double weight_decay = 0);
  void step() override;
  std::string kind() const override { return "adam"; }

 private:
  double beta1_, beta2_, eps_, weight_decay_;
};

// Adamax: Adam with the infinity norm (Kingma & Ba, section 7.1).
class Adamax : public Optimizer {
 public:
  Adamax(std::vector<NamedVar> params, double lr = 2e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
         double weight_decay = 0);
  void step() override;
  std::string kind() const override { return "adamax"; }

 private:
  double beta1_, beta2_, eps_, weight_decay_;
};

// Scales all gradients so that their global L2 norm is at most max_norm; returns the norm before
// scaling. With error_if_nonfinite, a NaN or infinite norm throws ValueError naming the first
// parameter whose gradient is not finite (and nothing is changed).
double clip_grad_norm(const std::vector<NamedVar>& params, double max_norm, bool error_if_nonfinite = false);

// Learning rate as a function of the step (0-based).
class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  virtual double lr(int64_t step) const = 0;
};
class ConstantLR : public LRSchedule {
 public:
  explicit ConstantLR(double base);
  double lr(int64_t) const override { return base_; }
 private:
  double base_;
};
// base * gamma^floor(step / step_size)
class StepLR : public LRSchedule {
 public:
  StepLR(double base, int64_t step_size, double gamma);
  double lr(int64_t step) const override;
 private:
  double base_, gamma_;
  int64_t step_size_;
};
// base * gamma^(step / decay_steps), continuous
class ExponentialLR : public LRSchedule {
 public:
  ExponentialLR(double base, double gamma, double decay_steps = 1);
  double lr(int64_t step) const override;
 private:
  double base_, gamma_, decay_steps_;
};
// Linear warm-up from 0 over warmup_steps, then the inner schedule (counted from step 0).
class WarmupLR : public LRSchedule {
 public:
  WarmupLR(std::shared_ptr<LRSchedule> inner, int64_t warmup_steps);
  double lr(int64_t step) const override;
 private:
  std::shared_ptr<LRSchedule> inner_;
  int64_t warmup_;
};

}  // namespace gv::nn
