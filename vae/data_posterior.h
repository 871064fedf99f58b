// data_posterior.h: the "inverse" posterior q(x|z) over the data (not q(z|x): that is encoder_posterior.h) of a VAE's encoder over a finite data set, the object
// of the paper's Proposition 4 (Zhao, Song and Ermon 2017, section 3.1, Figure 2).
//
// With p_data the empirical distribution of N images x_1..x_N and the encoder's q(z|x), the joint
// q(x, z) = p_data(x) q(z|x) has, at a latent point z, the conditional over the data set
//   q(x_i|z) = w_i(z) = q(z|x_i) / sum_j q(z|x_j),
// a weighting of the images by how likely each one's posterior finds z. Proposition 4: for the L2
// (Gaussian) reconstruction loss the optimal decoder is the posterior mean g*(z) = E_q(x|z)[x], and
// its expected reconstruction error at z, E_q(x|z)||g*(z) - x||^2, is the posterior variance
//   sum_d Var_q(x|z)[x_d] = E_w||x||^2 - ||E_w x||^2.
// Regions of z where many different images are encoded (large variance) get an average of them,
// a blurred digit. For any decoder g, E_q(x|z)||g(z) - x||^2 = ||g(z) - m(z)||^2 + variance(z).
//
// Computation: the encoder runs once over the images, batch by batch, without recording a graph
// (encode_data); then data_posterior streams over blocks of images with an online logsumexp
// (running maximum per z, earlier sums rescaled when it grows), in double:
//   log q(z_k|x_i) = -1/2 sum_j [ (z_kj - mu_ij)^2 exp(-logvar_ij) + logvar_ij + log 2pi ]
//   e_ik = exp(log q(z_k|x_i) - M_k)                    (M_k: the running maximum over i)
//   S_k = sum_i e_ik,  S2_k = sum_i e_ik^2,  A_k = sum_i e_ik x_i (a matmul E (K,B) @ X (B,D)),
//   Q_k = sum_i e_ik ||x_i||^2,
// so that w_ik = e_ik / S_k, m_k = A_k / S_k, variance_k = Q_k / S_k - ||m_k||^2 (clamped at 0),
// ESS_k = 1 / sum_i w_ik^2 = S_k^2 / S2_k, log q(z_k) = M_k + log S_k - log N.
// Memory: mu and logvar (N x Z doubles), the running sums (K x D doubles) and one (K x block)
// matrix of weights; never an N x K x D array (N = 60000, K = 1000, D = 784 needs ~ 30 MB).
// Time: O(N K (Z + D)), the D part in one dgemm per block.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "vae/model.h"

namespace gv::vae {

// The encoder's q(z|x_i) = N(mu_i, diag(exp(logvar_i))) for every image, in double on the CPU.
struct EncodedData {
  Tensor mu;      // (N, Z) float64
  Tensor logvar;  // (N, Z) float64
};

// Runs the encoder over images (N, C, H, W) (as the model sees them: preprocessed, any dtype) in
// batches of `batch`, in evaluation mode and without a graph (the model's mode is restored).
// `progress(done, total)` is called after each batch when given. ShapeError when an image's shape
// is not the model's data shape; ValueError for no images or batch < 1.
EncodedData encode_data(Model& model, const Tensor& images, int64_t batch,
                        const std::function<void(int64_t, int64_t)>& progress = {});
// The same for any Gaussian encoder x -> (mu, logvar) of images of data_shape, run with owner
// (the module it belongs to: its dtype, device and evaluation mode); the sequential VAE's steps.
using GaussianEncoder = std::function<std::pair<ag::Var, ag::Var>(const ag::Var&)>;
EncodedData encode_data(nn::Module& owner, const GaussianEncoder& encode, const Shape& data_shape,
                        const Tensor& images, int64_t batch,
                        const std::function<void(int64_t, int64_t)>& progress = {});

// q(x|z_k) over the data set at K latent points, summarized.
struct DataPosterior {
  int64_t n = 0;                 // images N in the data set
  Tensor mean;                   // (K, C, H, W) float64 (the images' trailing shape): m_k = E_q(x|z_k)[x]
  std::vector<double> variance;  // (K) sum_d Var_q(x|z_k)[x_d] = E_w||x||^2 - ||m_k||^2 (>= 0)
  std::vector<double> second_moment;  // (K) E_q(x|z_k)||x||^2
  std::vector<double> ess;       // (K) effective sample size 1 / sum_i w_ik^2, in [1, N]: how many
                                 // images the estimate at z_k really averages (1: one image dominates)
  std::vector<double> log_qz;    // (K) log q(z_k) = log (1/N) sum_i q(z_k|x_i), the aggregate posterior
};

struct DataPosteriorOptions {
  int64_t block = 2048;  // images per streaming block (the (K, block) weight matrix)
  std::function<void(int64_t, int64_t)> progress;  // (images done, N) after each block, when given
};

// The posterior summaries at z (K, Z) (Z the model's latent size) for the data set `images`
// (N, C, H, W) whose encodings are `enc` (from encode_data on the same images). ShapeError naming
// the shapes when z is not (K, Z) for the encodings' Z, or enc and images disagree on N.
DataPosterior data_posterior(const EncodedData& enc, const Tensor& images, const Tensor& z,
                                 const DataPosteriorOptions& o = {});
// encode_data then data_posterior; ShapeError when z's second axis is not the model's latent size.
DataPosterior data_posterior(Model& model, const Tensor& images, const Tensor& z, int64_t batch,
                                 const DataPosteriorOptions& o = {});

}  // namespace gv::vae
