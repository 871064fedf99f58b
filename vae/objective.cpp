// objective.cpp: the generalized VAE objective, eq. (7) of Zhao, Song and Ermon (2017):
//   L = E_{p_data(x)} E_{q(z|x)} [log p(x|z)] - lambda R(q),
// estimated on a batch with one reparameterized z per example; `loss` = -L is what training minimizes.
// And the naive bound of section 2.2, eq. (3): E_{p(z)}[log p(x|z)] with z drawn independently of x.
#include "vae/objective.h"

namespace gv::vae {

using ag::Var;

ObjectiveTerms objective(Model& model, const Tensor& x, const Regularizer& r, double weight, Generator& g) {
  GV_CHECK(x.defined() && x.dim() >= 1 && x.size(0) > 0, ShapeError, "objective: expected a batch x (B, ...), got {}",
           x.defined() ? shape_str(x.shape()) : std::string("nothing"));
  const DType dt = model.dtype();
  const Tensor xd = (x.dtype() == dt ? x : x.to(dt)).to(model.device());  // the data in the model's dtype and place
  ObjectiveTerms t;
  t.weight = weight;
  // z ~ q(z|x) by reparameterization, so gradients reach the encoder through z
  auto [mu, logvar] = model.encode(Var(xd));  // (B, Z) each
  t.q = reparameterize(mu, logvar, g);
  // E_q[log p(x|z)], one sample of z per example, averaged over the batch: (B) -> ()
  t.reconstruction = ag::mean(model.decoder().log_prob(xd, t.q.z));
  t.regularizer = r.value(t.q, g);  // R(q), averaged over the batch
  // eq. (7), negated: loss = -(reconstruction - lambda R)
  t.loss = -(t.reconstruction - t.regularizer * weight);
  return t;
}

NaiveTerms naive_objective(Model& model, const Tensor& x, Generator& g) {
  GV_CHECK(x.defined() && x.dim() >= 1 && x.size(0) > 0, ShapeError,
           "naive_objective: expected a batch x (B, ...), got {}", x.defined() ? shape_str(x.shape()) : std::string("nothing"));
  const DType dt = model.dtype();
  const Tensor xd = (x.dtype() == dt ? x : x.to(dt)).to(model.device());
  NaiveTerms t;
  // z ~ p(z) = N(0, I), one per example, drawn without looking at x: no q(z|x)
  t.z = normal({x.size(0), model.latent()}, g, 0, 1, dt, model.device());
  // E_{p(z)}[log p(x|z)], one sample of z per example, averaged over the batch: (B) -> ()
  t.bound = ag::mean(model.decoder().log_prob(xd, Var(t.z)));
  t.loss = -t.bound;
  return t;
}

}  // namespace gv::vae
