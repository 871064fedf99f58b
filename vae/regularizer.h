// regularizer.h: the regularizers R(q) of the generalized objective E_q[log p(x|z)] - lambda R(q),
// acting on the encoder's Gaussian posterior q(z|x) (encoder_posterior.h).
#pragma once
#include <memory>
#include <string>

#include "autograd/ops.h"
#include "engine/random.h"
#include "vae/encoder_posterior.h"

namespace gv::vae {

class Regularizer {
 public:
  virtual ~Regularizer() = default;
  virtual std::string name() const = 0;
  // R(q) averaged over the batch (a scalar); g supplies any extra randomness (MMD's prior draws)
  virtual ag::Var value(const EncoderPosterior& q, Generator& g) const = 0;
};

std::shared_ptr<Regularizer> no_regularizer();              // R = 0: the unregularized VAE
std::shared_ptr<Regularizer> kl();                          // R = KL(q(z|x)||p(z)): the ELBO
std::shared_ptr<Regularizer> kl_free_bits(double lambda);   // sum_j max(lambda, mean_batch KL_j) (Kingma et al. 2016)
// MMD between q(z) (the batch's z) and p(z) = N(0, I) (as many prior draws), Gaussian kernel
// k(a, b) = exp(-|a-b|^2 / (2 sigma^2)); sigma <= 0 picks 2 sigma^2 = Z, the latent size.
// The value is the unbiased estimate (U-statistic) of MMD^2: it can be slightly negative when q(z)
// is close to p(z). Needs B >= 2. The prior draws are one normal((B, Z)) call on g in z's dtype.
std::shared_ptr<Regularizer> mmd(double sigma = 0);

// By name: "none", "kl", "free-bits" (param = lambda), "mmd" (param = sigma)
std::shared_ptr<Regularizer> make_regularizer(const std::string& name, double param = 0);

// The weight lambda at a training step: `weight`, ramped linearly from 0 over `warmup_steps` when > 0:
// weight * min(1, step / warmup_steps) (step 0-based, so step 0 has weight 0).
double regularizer_weight(double weight, int64_t warmup_steps, int64_t step);

}  // namespace gv::vae
