// encoder_posterior.cpp: q(z|x) = N(mu, diag(exp(logvar))): the reparameterized draw and the KL to
// N(0, I) (encoder_posterior.h).
#include "vae/encoder_posterior.h"

namespace gv::vae {

using ag::Var;

// ---- q(z|x) = N(mu, diag(exp(logvar))) --------------------------------------------------------

// z = mu + exp(logvar / 2) * eps, eps ~ N(0, I): z is a differentiable function of mu and logvar
// (Kingma & Welling 2013), so the gradient of E_q[f(z)] passes through the sample.
EncoderPosterior reparameterize(const Var& mu, const Var& logvar, Generator& g) {
  GV_CHECK(mu.defined() && logvar.defined(), ValueError, "reparameterize: mu or logvar is undefined");
  GV_CHECK(mu.shape() == logvar.shape(), ShapeError, "reparameterize: mu {} and logvar {} differ in shape",
           shape_str(mu.shape()), shape_str(logvar.shape()));
  GV_CHECK(mu.dtype() == logvar.dtype(), DTypeError, "reparameterize: mu is {}, logvar is {}",
           dtype_name(mu.dtype()), dtype_name(logvar.dtype()));
  Var eps(normal(mu.shape(), g, 0, 1, mu.dtype(), mu.data().device()));  // (B, Z), a constant
  Var z = mu + ag::exp(logvar * 0.5) * eps;
  return {mu, logvar, z};
}

// KL(N(mu, s^2) || N(0, 1)) = 0.5 (mu^2 + s^2 - 1 - log s^2) per element, s^2 = exp(logvar): (B, Z).
// It is 0 exactly when mu = 0 and logvar = 0, and positive otherwise.
Var kl_standard_normal(const Var& mu, const Var& logvar) {
  GV_CHECK(mu.shape() == logvar.shape(), ShapeError, "kl_standard_normal: mu {} and logvar {} differ in shape",
           shape_str(mu.shape()), shape_str(logvar.shape()));
  return (ag::square(mu) + ag::exp(logvar) - 1.0 - logvar) * 0.5;
}

}  // namespace gv::vae
