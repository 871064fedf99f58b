// sequential.h: the sequential VAE of Zhao, Song and Ermon (2017), section 3.2, and its baseline,
// infusion training (Bordes, Honari and Vincent 2016).
//
// Sequential VAE. T steps, each with its own weights (a non-homogeneous chain). Step t has
//   an encoder q_t(z_t | x) = N(mu_t(x), diag(exp(logvar_t(x)))) of the true image, and
//   a decoder that reads z_t and, for t > 0, the previous output x_(t-1):
//     h    = from_z(z_t) + down(x_(t-1))             (down: two stride-2 convolutions; 0 at t = 0)
//     u    = relu(up1(h) + d1(x_(t-1)))              (d1: down's first feature map, the U-Net skip)
//     x^_t = up2(u)                                  (the new image: the Gaussian mean)
//     x_t  = r * x^_t + (1 - r) * x_(t-1)            (t > 0; t = 0: x_0 = x^_0)
//   where the gate r is sigmoid(a_t) for a learned scalar a_t ("scalar"), or the authors' map
//   sigmoid(up_r(u)), one value per pixel shared by the channels ("map").
// Training maximizes the sum over steps of the per-step objective of the core (objective.h):
//   sum_t E_q[log p(x | x_t)] - lambda R(q_t),    p(x | x_t) = N(x_t, sigma^2 I)   (L2 loss)
// so every step is reconstructed. By default x_(t-1) is detached (the authors' choice: a step
// learns to refine what it is given, and no gradient runs back through the chain); detach_prev =
// false lets the gradient of later steps reach earlier ones.
// The latent codes are independent given x (each q_t reads only x), so the code z(0..t) of the
// first t+1 steps has the Gaussian posterior with the concatenated means and variances, and
// Proposition 5 is a statement about the data posterior q(x | z(0..t)) of that concatenation:
//   Var_{q(x|z(0..t-1))}[x_i] >= E_{q(z_t | z(0..t-1))} Var_{q(x|z(0..t))}[x_i].
// step_posterior_variance measures its two sides on a data set, with data_posterior.h.
//
// Infusion training. No encoder: the "latent state" of step t is the previous output with some
// true pixels infused, z_t = where(m_t, x, x_(t-1)), m_t ~ Bernoulli(alpha_t) per pixel (all
// channels of a pixel together), alpha_t = min(1, alpha0 + t * alpha_step) growing with t, and
// x_(-1) = clip(mean + std * N(0, 1), 0, 1) noise around the training data's per-pixel mean and
// standard deviation (buffers of the model, so checkpoints carry them). Step t's network is the
// decoder above without z: h = down(z_t), u = relu(up1(h) + d1(z_t)), x_t = gate(up2(u), z_t).
// The chain's state is the mean x_t (a fixed-variance Gaussian; Bordes et al. draw from theirs),
// detached between steps; the loss is sum_t (t+1)/T * (-log p(x | x_t)), the t/T weighting of
// Bordes et al. with 1-based steps. Sampling runs the chain with alpha = 0: no data is read.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "vae/data_posterior.h"
#include "vae/encoder_posterior.h"
#include "vae/likelihood.h"
#include "vae/regularizer.h"

namespace gv::vae {

struct SequentialConfig {
  std::string kind = "sequential";  // "sequential" or "infusion"
  Shape data_shape = {1, 28, 28};   // (C, H, W), H and W divisible by 4
  int64_t steps = 4;                // T
  int64_t latent = 16;              // z per step (sequential)
  int64_t channels1 = 64, channels2 = 128;  // the feature maps at H/2 and H/4
  std::string gate = "scalar";      // "scalar" (sigmoid of a learned scalar) or "map" (per pixel)
  bool skips = true;                // the U-Net skip from the down path of x_(t-1)
  bool detach_prev = true;          // x_(t-1) enters step t without its gradient
  double alpha0 = 0.1, alpha_step = 0.15;  // infusion: alpha_t = min(1, alpha0 + t alpha_step)
};

// The names the checks and the command line accept.
std::string sequential_kinds_help();  // "sequential, infusion"
std::string sequential_gates_help();  // "scalar, map"

// One step's network. Its submodules: "encoder" (sequential only), "from_z" (sequential only),
// "down1", "down2" (every step that reads a previous image), "up1", "up2", and "gate_map" (map
// gate) or the parameter "gate" (scalar gate).
class SequentialStep : public nn::Module {
 public:
  SequentialStep(const SequentialConfig& c, int64_t t, Generator& g);
  bool reads_previous() const { return reads_prev_; }
  // x (B, C, H, W) -> mu, logvar (B, Z); ValueError for an infusion step
  std::pair<ag::Var, ag::Var> encode(const ag::Var& x);
  struct Out {
    ag::Var x;         // x_t (B, C, H, W)
    ag::Var proposal;  // x^_t, the new image before the gate (x_0 at step 0 of a sequential VAE)
    ag::Var gate;  // r: (1) or (B, 1, H, W); undefined without a previous image
  };
  // z (B, Z) or undefined (infusion); prev (B, C, H, W) or undefined (sequential step 0)
  Out decode(const ag::Var& z, const ag::Var& prev);

 private:
  SequentialConfig c_;
  bool reads_prev_ = false, has_z_ = false;
  std::shared_ptr<nn::Sequential> encoder_, from_z_;
  std::shared_ptr<nn::Conv2d> down1_, down2_;
  std::shared_ptr<nn::ConvTranspose2d> up1_, up2_, gate_map_;
  ag::Var gate_;
};

class SequentialVAE : public nn::Module {
 public:
  // The steps are submodules "step0", "step1", ...; data_mean and data_std (C, H, W) are the
  // buffers "data_mean" and "data_std" (infusion's starting noise; zeros and ones until set).
  SequentialVAE(const SequentialConfig& c, Generator& g);
  const SequentialConfig& config() const { return c_; }
  int64_t steps() const { return c_.steps; }
  bool infusion() const { return c_.kind == "infusion"; }
  SequentialStep& step(int64_t t);
  // Infusion's starting noise: the per-pixel mean and standard deviation of the training images.
  void set_data_statistics(const Tensor& images);  // (N, C, H, W)
  double alpha(int64_t t) const;                    // infusion's alpha_t

  // Infusion's x_(-1): clip(mean + std * N(0, 1), 0, 1), (B, C, H, W), in the model's dtype.
  Tensor infusion_noise(int64_t B, Generator& g) const;
  // z_t = where(m, x, prev), m ~ Bernoulli(alpha) per pixel; alpha = 0 returns prev and never
  // reads x (which may then be undefined).
  static Tensor infuse(const Tensor& x, const Tensor& prev, double alpha, Generator& g);

 private:
  SequentialConfig c_;
  std::vector<std::shared_ptr<SequentialStep>> steps_;
};

// ---- the objective ------------------------------------------------------------------------------
struct SequentialStepTerms {
  ag::Var x;               // x_t (B, C, H, W), the step's output (the Gaussian mean)
  ag::Var reconstruction;  // E_q[log p(x | x_t)] averaged over the batch
  ag::Var regularizer;     // R(q_t) averaged over the batch (undefined for infusion)
  EncoderPosterior q;      // sequential: q_t(z_t | x) and its draw
  double gate_mean = 0;    // the mean of r (0 at step 0)
};
struct SequentialTerms {
  ag::Var loss;  // sequential: sum_t -(reconstruction_t - weight R_t); infusion: sum_t (t+1)/T (-reconstruction_t)
  std::vector<SequentialStepTerms> steps;
  double weight = 1;
};

// One training batch x (B, C, H, W) through every step; p is the family (a Gaussian for the L2
// loss), r and weight the regularizer and its lambda (ignored by infusion).
SequentialTerms sequential_objective(SequentialVAE& m, const Tensor& x, const Likelihood& p, const Regularizer& r,
                                     double weight, Generator& g);

// The KL warm-up of the authors' code: lambda at training step s (0-based) is 1 - exp(-s / scale),
// scale 10^4 there.
double kl_warmup_weight(int64_t step, double scale = 1e4);

// ---- sampling --------------------------------------------------------------------------------------
// Every step's output, x_0 .. x_(T-1), each (B, C, H, W) (the Gaussian means), without a graph, on the
// host (the chains feed figures and metrics).
// From the model: z_t ~ p(z_t) = N(0, I) at every step (infusion: the chain from noise, alpha = 0).
std::vector<Tensor> sample_chain(SequentialVAE& m, int64_t B, Generator& g);
// The chain of reconstructions of x: z_t ~ q_t(z_t | x) (use_mean: z_t = mu_t(x)); infusion: the
// training chain with alpha_t.
std::vector<Tensor> reconstruction_chain(SequentialVAE& m, const Tensor& x, Generator& g, bool use_mean = false);

// ---- Proposition 5 ---------------------------------------------------------------------------------
// The encodings of every step of a sequential model over images, each (N, Z) (encode_data's form).
std::vector<EncodedData> encode_steps(SequentialVAE& m, const Tensor& images, int64_t batch);
// Steps 0..t's encodings as one code of (t+1) Z dimensions.
EncodedData concat_steps(const std::vector<EncodedData>& steps, int64_t t);

struct StepPosterior {
  double variance = 0;    // E_z sum_d Var_q(x|z(0..t))[x_d]: K points z(0..t) of the aggregate posterior
  double variance_se = 0; // its standard error over the K points
  double ess = 0;         // the mean effective sample size of the K posteriors
};
// Per step t, q(x | z(0..t)) over the data set images (N, C, H, W) whose step encodings are
// `steps`, at K points drawn from the aggregate posterior: image i uniform, then z_s ~ q_s(z_s|x_i)
// for every s (the same draws reused for every t, so the points of step t extend those of t-1).
std::vector<StepPosterior> step_posterior_variance(const std::vector<EncodedData>& steps, const Tensor& images,
                                                   int64_t K, Generator& g, const DataPosteriorOptions& o = {});

// ---- sharpness ----------------------------------------------------------------------------------------
// The variance of the Laplacian, a standard focus measure: per image, the channels averaged to one
// grey plane, the 4-neighbour Laplacian 4 x(i,j) - x(i-1,j) - x(i+1,j) - x(i,j-1) - x(i,j+1) at
// every interior pixel, and its variance over those pixels; averaged over the images (N, C, H, W)
// (H, W >= 3). Blur lowers it; the samples' figure against the data's own says how much detail
// is left. Pixel values are clamped to [0, 1] first, as they are shown.
double laplacian_variance(const Tensor& images);

}  // namespace gv::vae
