// decoder.cpp: see decoder.h.
#include "vae/decoder.h"

namespace gv::vae {

using ag::Var;

Decoder::Draw Decoder::draw(const Tensor& z, Generator& g, bool use_mean) {
  GV_CHECK(!use_mean || has_mean(), ValueError, "{}: has no closed-form mean E[x|z] to use instead of a draw", name());
  Draw d;
  if (has_mean()) d.mean = mean(z);
  d.x = use_mean ? d.mean : sample(z, g);
  return d;
}

FactorizedDecoder::FactorizedDecoder(std::shared_ptr<nn::Sequential> net, std::shared_ptr<Likelihood> p, int64_t latent)
    : net_(std::move(net)), p_(std::move(p)), latent_(latent) {
  GV_CHECK(net_ && p_, ValueError, "FactorizedDecoder: needs a network and a likelihood");
  for (size_t i = 0; i < net_->size(); ++i) register_module(std::to_string(i), (*net_)[i]);
}

Var FactorizedDecoder::params(const Var& z) {
  GV_CHECK(z.defined() && z.dim() == 2 && z.size(1) == latent_, ShapeError,
           "FactorizedDecoder: expected z of shape (B, {}), got {}", latent_,
           z.defined() ? shape_str(z.shape()) : std::string("nothing"));
  return (*net_)(z);
}

Var FactorizedDecoder::log_prob(const Tensor& x, const Var& z) { return p_->log_prob(x, params(z)); }

Tensor FactorizedDecoder::sample(const Tensor& z, Generator& g) { return p_->sample(params(Var(z)).data(), g); }

Tensor FactorizedDecoder::mean(const Tensor& z) { return p_->mean(params(Var(z)).data()); }

Decoder::Draw FactorizedDecoder::draw(const Tensor& z, Generator& g, bool use_mean) {
  const Tensor ps = params(Var(z)).data();
  Draw d;
  d.mean = p_->mean(ps);
  d.x = use_mean ? d.mean : p_->sample(ps, g);
  return d;
}

}  // namespace gv::vae
