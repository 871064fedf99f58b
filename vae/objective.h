// objective.h: the generalized VAE objective of Zhao, Song and Ermon (2017), eq. (7):
//   L = E_{p_data(x)} E_{q(z|x)} [log p(x|z)] - lambda R(q),
// maximized; the returned `loss` is its negative, averaged over the batch. R = KL gives the ELBO.
// Also the naive lower bound of section 2.2, eq. (3), which has no q at all (naive_objective).
#pragma once
#include "vae/model.h"
#include "vae/regularizer.h"

namespace gv::vae {

struct ObjectiveTerms {
  ag::Var loss;            // -(reconstruction - weight * regularizer), the scalar to minimize
  ag::Var reconstruction;  // E_q[log p(x|z)] averaged over the batch (nats per example)
  ag::Var regularizer;     // R(q), averaged over the batch
  double weight = 1;       // lambda
  EncoderPosterior q;             // the posterior and its sample, for estimators and logging
};

// One Monte-Carlo sample of z per example.
ObjectiveTerms objective(Model& model, const Tensor& x, const Regularizer& r, double weight, Generator& g);

// ---- the naive lower bound, section 2.2 ------------------------------------------------------------
// Jensen's inequality gives a bound on log p(x) that needs no inference network, eq. (3):
//   log p(x) = log E_{p(z)}[p(x|z)] >= E_{p(z)}[log p(x|z)],
// with the cheap gradient E_{p(z)}[grad log p(x|z)]. It is useless for learning latent features:
// averaged over the data and swapped, eq. (4),
//   E_{p_data(x)} E_{p(z)}[log p(x|z)] = E_{p(z)} [ E_{p_data(x)}[log p(x|z)] ],
// so it is maximized by maximizing the inner term separately for every z. Every p(x|z) is a member
// of the same family P, and one member p* = argmax_{p in P} E_{p_data}[log p(x)] is best for all z:
// the optimal decoder maps every z to p* and ignores z. For a factorized Bernoulli P, p* is the
// per-pixel data mean, and the bound's optimum is sum_j [m_j log m_j + (1 - m_j) log(1 - m_j)] with
// m_j the mean of pixel j over the data (-sum_j H(m_j)). genvae-naive-bound shows it on MNIST.
struct NaiveTerms {
  ag::Var loss;            // -E_{p(z)}[log p(x|z)] averaged over the batch: the scalar to minimize
  ag::Var bound;           // E_{p(z)}[log p(x|z)] averaged over the batch (nats per example) = -loss
  Tensor z;                // (B, Z): the draws z ~ p(z), one per example, independent of x
};

// Eq. (3) on a batch x (B, ...): one z ~ N(0, I) per example from g (normal((B, Z), g) in the
// model's dtype, the generator's only use), decoded by the decoder alone; the encoder is not run
// and gets no gradient.
NaiveTerms naive_objective(Model& model, const Tensor& x, Generator& g);

}  // namespace gv::vae
