// gradcheck.cpp: central-difference gradient checking (see gradcheck.h).
#include "autograd/gradcheck.h"

#include <cmath>

#include "autograd/ops.h"

namespace gv::ag {
namespace {

// A fixed weight of the given shape: deterministic, varied, away from zero.
Tensor projection(const Shape& shape) {
  Tensor v = Tensor::empty(shape, DType::f64);
  double* p = v.data<double>();
  for (int64_t i = 0; i < v.numel(); ++i) p[i] = 0.5 + 0.5 * std::sin(1.7 * double(i) + 0.3) * (i % 2 ? 1 : -1);
  return v;
}

double loss(const std::function<Var(const std::vector<Var>&)>& f, const std::vector<Var>& inputs, const Tensor& v) {
  NoGradGuard ng;
  Var out = f(inputs);
  return gv::sum(gv::mul(out.data().to(DType::f64), v)).item();
}

// Storage offset (in elements, from the tensor's data pointer) of row-major element j.
int64_t element_offset(const Tensor& t, int64_t j) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (j % t.shape()[d]) * t.strides()[d];
    j /= t.shape()[d];
  }
  return off;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f, const std::vector<Var>& inputs,
                          const GradcheckOptions& opt) {
  for (size_t i = 0; i < inputs.size(); ++i)
    GV_CHECK(inputs[i].dtype() == DType::f64 || !inputs[i].requires_grad(), DTypeError,
             "gradcheck: input {} is {}; checks run in float64", i, inputs[i].data().str());
  GradcheckResult res;
  for (const Var& x : inputs) x.zero_grad();
  Var out = f(inputs);
  GV_CHECK(out.requires_grad(), ValueError, "gradcheck: the output does not depend on any input that requires a gradient");
  Tensor v = projection(out.shape());
  out.backward(v.to(out.dtype()));

  for (size_t i = 0; i < inputs.size(); ++i) {
    const Var& x = inputs[i];
    if (!x.requires_grad()) continue;
    Tensor analytic = x.grad().defined() ? x.grad().to(DType::f64).contiguous() : Tensor::zeros(x.shape(), DType::f64);
    const double* pa = analytic.data<double>();
    double* px = x.data().data<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      double& xj = px[element_offset(x.data(), j)];
      const double saved = xj;
      xj = saved + opt.eps;
      double lp = loss(f, inputs, v);
      xj = saved - opt.eps;
      double lm = loss(f, inputs, v);
      xj = saved;
      double numeric = (lp - lm) / (2 * opt.eps), err = std::fabs(pa[j] - numeric);
      res.max_abs_err = std::max(res.max_abs_err, std::isnan(err) ? INFINITY : err);
      if (!(err <= opt.atol + opt.rtol * std::fabs(numeric)) && res.ok) {
        res.ok = false;
        res.message = fmt::format("input {} of shape {}, element {}: analytic {:.10g}, numeric {:.10g} (error {:.3g})",
                                  i, shape_str(x.shape()), j, pa[j], numeric, err);
      }
    }
  }
  for (const Var& x : inputs) x.zero_grad();
  return res;
}

}  // namespace gv::ag
