// decoder.h: the decoder p(x|z) of a generalized VAE, a Module that owns its likelihood family.
// The objective, the estimators and the samplers only ask it for log p(x|z), a draw, and the mean
// where one exists, so a decoder whose network also reads x (a PixelCNN) plugs in beside the
// factorized one.
//   FactorizedDecoder: a network z -> the parameters of a factorized family P (bernoulli, gaussian,
//   ...), p(x|z) = prod_j p(x_j | params_j(z)): today's MLP and convolutional decoders.
#pragma once
#include <memory>
#include <string>

#include "nn/layers.h"
#include "vae/likelihood.h"

namespace gv::vae {

class Decoder : public nn::Module {
 public:
  virtual std::string name() const = 0;
  // log p(x|z) per example: x (B, C, H, W) preprocessed as the family expects, z (B, Z) -> (B)
  virtual ag::Var log_prob(const Tensor& x, const ag::Var& z) = 0;
  // A draw x ~ p(x|z): (B, C, H, W)
  virtual Tensor sample(const Tensor& z, Generator& g) = 0;
  // Whether E[x|z] has a closed form; mean() is a ValueError when not.
  virtual bool has_mean() const = 0;
  virtual Tensor mean(const Tensor& z) = 0;
  // A draw and the mean (undefined without one) as the samplers want them; with use_mean, x is the
  // mean. The default runs sample() and mean(); a decoder may share one network pass.
  struct Draw {
    Tensor x, mean;
  };
  virtual Draw draw(const Tensor& z, Generator& g, bool use_mean);
  // The family P of each pixel's distribution.
  virtual const Likelihood& likelihood() const = 0;
};

class FactorizedDecoder : public Decoder {
 public:
  // net: z (B, latent) -> params (B, p->param_planes(C), H, W). Its layers are this
  // module's children "0", "1", ..., so checkpoints name them "decoder.0.weight" as before.
  FactorizedDecoder(std::shared_ptr<nn::Sequential> net, std::shared_ptr<Likelihood> p, int64_t latent);
  std::string name() const override { return "factorized " + p_->name(); }
  // The family's parameters, the network's output: (B, k*C, H, W)
  ag::Var params(const ag::Var& z);
  ag::Var log_prob(const Tensor& x, const ag::Var& z) override;
  Tensor sample(const Tensor& z, Generator& g) override;
  bool has_mean() const override { return true; }
  Tensor mean(const Tensor& z) override;
  Draw draw(const Tensor& z, Generator& g, bool use_mean) override;  // one network pass
  const Likelihood& likelihood() const override { return *p_; }

 private:
  std::shared_ptr<nn::Sequential> net_;
  std::shared_ptr<Likelihood> p_;
  int64_t latent_;
};

}  // namespace gv::vae
