// likelihood.h: the likelihood families P of the generalized VAE, p(x|z) given the decoder's output.
// The decoder emits `params`; a family reads them as its distribution's parameters:
//   data x: (B, C, H, W) images (or (B, D) vectors); params: (B, k*C, H, W) (or (B, k*D)), the k
//   parameter planes of each data channel stacked along axis 1 as [all channels' first parameter,
//   all channels' second parameter, ...] (k = params_per_channel()).
// log_prob returns log p(x | params) per example (B), summed over every other axis, in nats.
#pragma once
#include <memory>
#include <string>

#include "autograd/ops.h"
#include "engine/random.h"

namespace gv::vae {

class Likelihood {
 public:
  virtual ~Likelihood() = default;
  virtual std::string name() const = 0;
  virtual int64_t params_per_channel() const = 0;  // k above (0: the family couples the channels)
  // The planes of params for data of C channels: k*C, or the coupled family's own count.
  virtual int64_t param_planes(int64_t channels) const { return params_per_channel() * channels; }
  // Whether log_prob is the log of a probability mass (the data are discrete: bits per dimension
  // are then -log p / (D log 2)) rather than of a density.
  virtual bool discrete() const { return false; }
  // log p(x | params) per example: x (B, ...) data, params (B, k*C, ...) -> (B)
  virtual ag::Var log_prob(const Tensor& x, const ag::Var& params) const = 0;
  // A draw x ~ p(x | params): (B, C, ...)
  virtual Tensor sample(const Tensor& params, Generator& g) const = 0;
  // The mean E[x | params]: (B, C, ...) (what a VAE's "g(z)" shows)
  virtual Tensor mean(const Tensor& params) const = 0;
};

// x in {0,1}; params are logits: log p = x*l - softplus(l)
std::shared_ptr<Likelihood> bernoulli();
// x real; params are the mean; fixed standard deviation sigma: the L2 loss up to constants
std::shared_ptr<Likelihood> gaussian_fixed(double sigma = 1.0);
// x real; params = [mean, log variance] per channel (k = 2); log variance clamped to [min_logvar, max_logvar]
//   layout: planes 0..C-1 are the means, planes C..2C-1 the log variances; the clamp passes the
//   gradient inside [min_logvar, max_logvar] and stops it outside
std::shared_ptr<Likelihood> gaussian_learned(double min_logvar = -9, double max_logvar = 9);
// x in {0, 1/255, ..., 1} (8-bit values scaled to [0,1]); params = 256 logits per channel (k = 256)
//   layout: params read as (B, 256, C, ...), plane j*C + c the logit of value j/255 in channel c;
//   x's value is j = round(255 x) (data outside [0, 1] is a ValueError); mean = sum_j p_j j/255
std::shared_ptr<Likelihood> categorical256();
// x in [-1, 1] from 8-bit values; params = K mixture logits, K means, K log scales per channel
// (k = 3K); the discretized logistic mixture of PixelCNN++ (Salimans et al. 2017), bins of width 2/255
//   layout: params read as (B, 3K, C, ...): planes [K*C logits, K*C means, K*C log scales], plane
//   j*C + c parameter j of channel c; log scales clamped below at -7; channels independent given
//   params (no channel-autoregressive coefficients); edge bins x = -1 and x = 1 take the tails;
//   sample: component by Gumbel-max, logistic draw clamped to [-1, 1] and rounded to the grid;
//   mean = clamp(sum_k pi_k mu_k, -1, 1)
std::shared_ptr<Likelihood> discretized_logistic_mixture(int64_t components = 5);
// The same bins with PixelCNN++'s RGB coupling: one mixture over the whole pixel, and the mean of
// channel c shifted by tanh(a_kcc') x_c' for every earlier channel c' (R -> G -> B); params_per_channel
// is 0 and param_planes(C) = K (1 + 2C + C(C-1)/2), 10K for RGB. Layout in likelihood.cpp.
std::shared_ptr<Likelihood> discretized_logistic_mixture_rgb(int64_t components = 10);

// By name: "bernoulli", "gaussian" (fixed, sigma), "gaussian-learned", "categorical256", "logistic-mixture",
// "logistic-mixture-rgb"
// (each family's name() is its name here); an unknown name is a ValueError listing these
std::shared_ptr<Likelihood> make_likelihood(const std::string& name, double sigma = 1.0, int64_t components = 5);

}  // namespace gv::vae
