// encoder_posterior.h: the encoder's posterior q(z|x) = N(mu, diag(exp(logvar))) over the latent
// code, its reparameterized draw and its KL to the prior p(z) = N(0, I). (The other posterior of the
// paper, q(x|z) over the data, is data_posterior.h.)
#pragma once
#include "autograd/ops.h"
#include "engine/random.h"

namespace gv::vae {

// q(z|x) = N(mu, diag(exp(logvar))), and a reparameterized draw z = mu + exp(logvar/2) * eps.
struct EncoderPosterior {
  ag::Var mu;      // (B, Z)
  ag::Var logvar;  // (B, Z)
  ag::Var z;       // (B, Z), one sample per example
};
// Draws z from q by the reparameterization trick (eps ~ N(0, I) from g).
EncoderPosterior reparameterize(const ag::Var& mu, const ag::Var& logvar, Generator& g);

// KL(q(z|x) || N(0, I)) per example and latent dimension: 0.5 (mu^2 + exp(logvar) - 1 - logvar), (B, Z)
ag::Var kl_standard_normal(const ag::Var& mu, const ag::Var& logvar);

}  // namespace gv::vae
