// train_step.cpp: see train_step.h.
#include "nn/train_step.h"

#include <cmath>

namespace gv::nn {

StepResult train_step(Optimizer& opt, const std::function<ag::Var()>& compute, double max_grad_norm,
                      GradReducer* reducer) {
  opt.zero_grad();
  ag::Var loss = compute();
  GV_CHECK(loss.defined() && loss.numel() == 1, ValueError, "train_step: the loss must be a scalar, got {}",
           loss.defined() ? shape_str(loss.shape()) : std::string("nothing"));
  StepResult r;
  r.loss = loss.item();
  if (!std::isfinite(r.loss)) throw NonFiniteError("the loss is " + number_str(r.loss));
  if (reducer) {
    loss.backward(Tensor(), [reducer](const ag::Var& leaf) { reducer->leaf_ready(leaf); });
    reducer->finish();
  } else {
    loss.backward();
  }
  r.grad_norm = clip_grad_norm(opt.params(), max_grad_norm);
  if (!std::isfinite(r.grad_norm)) throw NonFiniteError("the gradient norm is " + number_str(r.grad_norm));
  opt.step();
  return r;
}

}  // namespace gv::nn
