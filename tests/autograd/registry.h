// registry.h: one registry of differentiable ops with sample inputs. It drives the generic
// autograd checks in test_gradcheck_registry.cpp: float64 gradient check against central
// differences, the same check on non-contiguous inputs, and forward equality of contiguous and
// non-contiguous inputs. Every name in autograd/op_list.h must have at least one case here.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"

namespace gv::test {

struct InputSpec {
  Shape shape;
  double lo = -1, hi = 1;
  bool away_from_zero = false;  // keep |x| >= 0.05 (ops with a kink at 0)
  bool grad = true;
};

struct OpCase {
  std::string op;     // a name from GV_DIFFERENTIABLE_OPS
  std::string label;  // what this variant exercises
  std::vector<InputSpec> inputs;
  std::function<ag::Var(const std::vector<ag::Var>&)> fn;
};

const std::vector<OpCase>& registry();

// Deterministic sample values for case input i (float64, contiguous).
Tensor sample_input(const InputSpec& spec, uint64_t salt);

}  // namespace gv::test
