// gradcheck.h: compare the analytic gradients of a function of Vars with central finite
// differences, in float64. Public so that users can check their own ops and layers.
//
// For f(inputs) -> output, with a fixed pseudo-random weight v of the output's shape, the check
// compares d/dx_j sum(v * f) from backward() with [L(x_j + eps) - L(x_j - eps)] / (2 eps) for every
// element j of every input that requires a gradient: |analytic - numeric| <= atol + rtol |numeric|.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace gv::ag {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_err = 0;  // over all inputs and elements
  std::string message;     // on failure: which input, element, analytic and numeric values
};

// The inputs must be float64 Vars; those with requires_grad() are checked. They may be views
// (non-contiguous, broadcast-free): each element is perturbed in place through its strides.
GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f, const std::vector<Var>& inputs,
                          const GradcheckOptions& opt = {});

}  // namespace gv::ag
