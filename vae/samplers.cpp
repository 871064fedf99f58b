// samplers.cpp: ancestral sampling p(z) p(x|z) (Proposition 3's model) and the Markov chain of
// Proposition 2, eq. (6): z^(t) ~ q(z|x^(t)), x^(t+1) ~ p(x|z^(t)), which converges to p_data when
// every posterior q(x|z) is in the likelihood family, whether or not q(z) matches p(z).
#include "vae/samplers.h"

namespace gv::vae {

using ag::Var;

namespace {

// x ~ p(x|z) (or its mean): (N, C, H, W) twice.
Samples draw_x(Model& model, const Tensor& z, Generator& g, bool use_mean) {
  Decoder::Draw d = model.decoder().draw(z, g, use_mean);
  return {d.x, d.mean, z};
}

// The samplers hand their results to figures and metrics: on the host, whatever the model's device.
Samples on_host(Samples s) {
  const Device cpu = Device::cpu();
  for (Tensor* t : {&s.x, &s.mean, &s.z})
    if (t->defined()) *t = t->to(cpu);
  return s;
}

}  // namespace

Samples sample_ancestral(Model& model, int64_t n, Generator& g, bool use_mean) {
  GV_CHECK(n > 0, ValueError, "sample_ancestral: the number of samples must be positive, got {}", n);
  ag::NoGradGuard no_grad;
  Tensor z = normal({n, model.latent()}, g, 0, 1, model.dtype(), model.device());  // z ~ p(z) = N(0, I): (N, Z)
  return on_host(draw_x(model, z, g, use_mean));
}

std::vector<int64_t> markov_chain_kept_steps(int64_t steps, int64_t keep) {
  GV_CHECK(steps >= 1 && keep >= 1 && keep <= steps, ValueError,
           "markov_chain: need 1 <= keep <= steps, got steps {} and keep {}", steps, keep);
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < keep; ++i) kept.push_back((i + 1) * steps / keep);  // distinct: steps/keep >= 1
  return kept;
}

std::vector<Samples> sample_markov_chain(Model& model, const Tensor& x0, int64_t steps, int64_t keep, Generator& g,
                                         bool use_mean) {
  const std::vector<int64_t> kept = markov_chain_kept_steps(steps, keep);
  ag::NoGradGuard no_grad;
  const DType dt = model.dtype();
  Tensor x = (x0.dtype() == dt ? x0 : x0.to(dt)).to(model.device());  // (N, C, H, W), checked by encode
  std::vector<Samples> out;
  size_t next = 0;
  for (int64_t t = 1; t <= steps; ++t) {
    auto [mu, logvar] = model.encode(Var(x));
    Tensor z = reparameterize(mu, logvar, g).z.data();  // z^(t-1) ~ q(z|x^(t-1)): (N, Z)
    Samples s = draw_x(model, z, g, use_mean);           // x^(t) ~ p(x|z^(t-1))
    x = s.x;
    if (next < kept.size() && kept[next] == t) {
      out.push_back(on_host(std::move(s)));
      ++next;
    }
  }
  return out;
}

}  // namespace gv::vae
