// train_step.h: one optimizer update from a loss, the training step every program uses (the VAE
// trainer, the naive bound, the benchmarks, the MNIST classifier), so that none has its own.
#pragma once
#include <functional>
#include <limits>

#include "nn/distributed.h"
#include "nn/optim.h"

namespace gv::nn {

struct StepResult {
  double loss = 0;       // the loss before the update
  double grad_norm = 0;  // the global gradient norm before clipping
};

// zero_grad; loss = compute() (a scalar); NonFiniteError "the loss is NaN" when it is not finite,
// before anything changes; backward; the global gradient norm clipped to max_grad_norm (infinity:
// measured only); NonFiniteError "the gradient norm is inf" when it is not finite, before the
// update; then opt.step(). Callers add where they are (step, epoch) to the message.
// With a reducer (data-parallel training, nn/distributed.h), each rank's loss is its own slice's
// and the gradients are averaged over the ranks between backward and clipping, so the norm, the
// clipping and the update are the same on every rank.
StepResult train_step(Optimizer& opt, const std::function<ag::Var()>& compute,
                      double max_grad_norm = std::numeric_limits<double>::infinity(),
                      GradReducer* reducer = nullptr);

}  // namespace gv::nn
