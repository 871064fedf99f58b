// objective.h: the generalized VAE objective of Zhao, Song and Ermon (2017), eq. (7):
//   L = E_{p_data(x)} E_{q(z|x)} [log p(x|z)] - lambda R(q),
// maximized; the returned `loss` is its negative, averaged over the batch. R = KL gives the ELBO.
#pragma once
#include "vae/model.h"

namespace gv::vae {

struct ObjectiveTerms {
  ag::Var loss;            // -(reconstruction - weight * regularizer), the scalar to minimize
  ag::Var reconstruction;  // E_q[log p(x|z)] averaged over the batch (nats per example)
  ag::Var regularizer;     // R(q), averaged over the batch
  double weight = 1;       // lambda
  Posterior q;             // the posterior and its sample, for estimators and logging
};

// One Monte-Carlo sample of z per example.
ObjectiveTerms objective(VAE& model, const Tensor& x, const Likelihood& p, const Regularizer& r, double weight,
                         Generator& g);

}  // namespace gv::vae
