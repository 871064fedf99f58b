// estimators.h: what a trained VAE is measured by. All run without recording a graph, batch by
// batch over a data set (images (N, C, H, W)), and return plain numbers.
#pragma once
#include <vector>

#include "vae/model.h"

namespace gv::vae {

struct ElboEstimate {
  double elbo = 0;            // E_x [E_q log p(x|z) - KL(q(z|x)||p(z))], nats per example
  double reconstruction = 0;  // E_x E_q log p(x|z)
  double kl = 0;              // E_x KL(q(z|x)||p(z))
};
ElboEstimate test_elbo(Model& model, const Tensor& images, int64_t batch, Generator& g);

// Importance-weighted bound (Burda et al. 2016) with k samples, per example averaged:
//   log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x); k = 1 is the ELBO in expectation.
double iwae_log_likelihood(Model& model, const Tensor& images, int64_t k, int64_t batch, Generator& g);

// KL(q(z|x)||p(z)) per latent dimension, averaged over the data (Z values).
std::vector<double> kl_per_dimension(Model& model, const Tensor& images, int64_t batch);
// Active units (Burda et al.): dimensions j with Cov_x(E_q[z_j]) > threshold.
int64_t active_units(Model& model, const Tensor& images, int64_t batch, double threshold = 0.01);
// The activity of each latent dimension, A_j = Var_x(E_q[z_j]) (sample variance over the images,
// divided by N - 1), that active_units compares with its threshold (Z values).
std::vector<double> latent_activity(Model& model, const Tensor& images, int64_t batch);

// Mutual information I_q(x; z) under q(x,z) = p_data(x) q(z|x), by the estimator of the paper's
// appendix A.3: for z_i ~ q(z|x_i) over M data points,
//   I = (1/M) sum_i [log q(z_i|x_i) - log (1/M) sum_j q(z_i|x_j)], with logsumexp. It cannot exceed log M.
// M is the number of images given. The estimate is biased (the mixture over M posteriors stands in
// for q(z)) and saturates near log M when the true MI is large: read it against `ceiling`. When
// q(z|x) hardly depends on x it can come out slightly negative.
// Memory: mu and logvar of all M images (M x Z doubles) plus a few (batch x M) blocks of log
// densities, one row block at a time; the M x M matrix is never held whole. Time O(M^2 Z).
struct MutualInformation {
  double mi = 0;
  double ceiling = 0;  // log M
  int64_t m = 0;
};
MutualInformation mutual_information(Model& model, const Tensor& images, int64_t batch, Generator& g);

}  // namespace gv::vae
