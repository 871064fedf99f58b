// regularizer.cpp: the regularizers R(q) of eq. (7): none (the unregularized VAE of section 2.4), KL (the ELBO, eq. 8),
// KL with free bits, and MMD between q(z) and p(z); the regularizer weight's warm-up.
#include "vae/regularizer.h"

#include <algorithm>
#include <cmath>

namespace gv::vae {

using ag::Var;

namespace {

// (B, Z) latents as the regularizers expect them, or a clear error.
void check_latents(const EncoderPosterior& q, const char* who) {
  GV_CHECK(q.mu.defined() && q.logvar.defined(), ValueError, "{}: the posterior has no mu or logvar", who);
  GV_CHECK(q.mu.dim() == 2 && q.mu.shape() == q.logvar.shape(), ShapeError,
           "{}: expected mu and logvar of shape (B, Z), got {} and {}", who, shape_str(q.mu.shape()),
           shape_str(q.logvar.shape()));
}

// ---- R = 0: the unregularized VAE (section 2.4, 1) -----------------------------------------------
class NoRegularizer : public Regularizer {
 public:
  std::string name() const override { return "none"; }
  // A constant zero scalar (a Var without a graph) in the posterior's dtype, so that
  // loss = -(recon - weight * R) keeps one shape of code for every regularizer.
  Var value(const EncoderPosterior& q, Generator&) const override {
    const ag::Var& like = q.z.defined() ? q.z : q.mu;
    GV_CHECK(like.defined(), ValueError, "none: the posterior is empty");
    return Var(Tensor::scalar(0, like.dtype(), like.data().device()));
  }
};

// ---- R = E_x KL(q(z|x) || p(z)): the ELBO (eq. 8) ------------------------------------------------
class KL : public Regularizer {
 public:
  std::string name() const override { return "kl"; }
  // sum over the latent dimensions, mean over the batch: (B, Z) -> ()
  Var value(const EncoderPosterior& q, Generator&) const override {
    check_latents(q, "kl");
    return ag::mean(ag::sum(kl_standard_normal(q.mu, q.logvar), {1}));
  }
};

// ---- KL with free bits (Kingma et al. 2016, "Improving variational inference with IAF") ---------
// R = sum_j max(lambda, E_x KL_j): a latent dimension j whose batch-averaged KL is below lambda
// nats costs a constant lambda and gets no gradient, so it may carry up to lambda nats for free.
class FreeBitsKL : public Regularizer {
 public:
  explicit FreeBitsKL(double lambda) : lambda_(lambda) {}
  std::string name() const override { return "free-bits"; }
  Var value(const EncoderPosterior& q, Generator&) const override {
    check_latents(q, "free-bits");
    Var per_dim = ag::mean(kl_standard_normal(q.mu, q.logvar), {0});  // (Z): mean over the batch
    Var floor(Tensor::full(per_dim.shape(), lambda_, per_dim.dtype(), per_dim.data().device()));
    return ag::sum(ag::maximum(per_dim, floor));
  }

 private:
  double lambda_;
};

// Gaussian kernel matrix k(a_i, b_j) = exp(-|a_i - b_j|^2 / (2 sigma^2)): a (n, Z), b (m, Z) -> (n, m).
// Differences are taken directly (not |a|^2 + |b|^2 - 2 a.b), so k(a_i, a_i) is exactly 1.
Var gaussian_kernel(const Var& a, const Var& b, double two_sigma2) {
  Var d = ag::unsqueeze(a, 1) - ag::unsqueeze(b, 0);  // (n, m, Z)
  return ag::exp(ag::sum(ag::square(d), {2}) * (-1.0 / two_sigma2));
}

// ---- MMD(q(z) || p(z)) (Gretton et al. 2012), as in InfoVAE (Zhao, Song and Ermon 2017b) -------
// The unbiased estimate (a U-statistic) of MMD^2 from the batch's n draws z_i ~ q(z) and n fresh
// draws y_i ~ p(z) = N(0, I):
//   MMD^2_u = 1/(n(n-1)) sum_{i!=j} [k(z_i, z_j) + k(y_i, y_j)] - 2/n^2 sum_{i,j} k(z_i, y_j).
// Its expectation is exactly MMD^2 (0 iff q(z) = p(z) for this characteristic kernel), so a single
// batch's value can be slightly negative when q(z) is close to p(z). Only the z-terms depend on z.
class MMD : public Regularizer {
 public:
  explicit MMD(double sigma) : sigma_(sigma) {}
  std::string name() const override { return "mmd"; }
  Var value(const EncoderPosterior& q, Generator& g) const override {
    GV_CHECK(q.z.defined() && q.z.dim() == 2, ShapeError, "mmd: expected a sample z of shape (B, Z), got {}",
             q.z.defined() ? shape_str(q.z.shape()) : std::string("nothing"));
    const int64_t n = q.z.size(0), zdim = q.z.size(1);
    GV_CHECK(n >= 2, ValueError, "mmd: the unbiased estimate needs a batch of at least 2 samples, got {}", n);
    // sigma <= 0: 2 sigma^2 = Z, the scale of |a - b|^2 between two N(0, I) draws is 2Z
    const double two_sigma2 = sigma_ > 0 ? 2 * sigma_ * sigma_ : double(zdim);
    Var y(normal(q.z.shape(), g, 0, 1, q.z.dtype(), q.z.data().device()));  // (n, Z) prior draws, one call
    const double off_diag = double(n) * double(n - 1);
    // sum_{i != j} k = sum_{i,j} k - n, the diagonal being exactly exp(0) = 1
    Var kzz = (ag::sum(gaussian_kernel(q.z, q.z, two_sigma2)) - double(n)) / off_diag;
    Var kyy = (ag::sum(gaussian_kernel(y, y, two_sigma2)) - double(n)) / off_diag;
    Var kzy = ag::sum(gaussian_kernel(q.z, y, two_sigma2)) * (2.0 / (double(n) * double(n)));
    return kzz + kyy - kzy;
  }

 private:
  double sigma_;
};

}  // namespace

std::shared_ptr<Regularizer> no_regularizer() { return std::make_shared<NoRegularizer>(); }
std::shared_ptr<Regularizer> kl() { return std::make_shared<KL>(); }
std::shared_ptr<Regularizer> kl_free_bits(double lambda) {
  GV_CHECK(std::isfinite(lambda) && lambda >= 0, ValueError,
           "kl_free_bits: lambda (nats per latent dimension) must be finite and >= 0, got {}", lambda);
  return std::make_shared<FreeBitsKL>(lambda);
}
std::shared_ptr<Regularizer> mmd(double sigma) {
  GV_CHECK(std::isfinite(sigma), ValueError, "mmd: the kernel width sigma must be finite, got {}", sigma);
  return std::make_shared<MMD>(sigma);
}

std::shared_ptr<Regularizer> make_regularizer(const std::string& name, double param) {
  if (name == "none") return no_regularizer();
  if (name == "kl") return kl();
  if (name == "free-bits") return kl_free_bits(param);
  if (name == "mmd") return mmd(param);
  GV_THROW(ValueError, "make_regularizer: unknown regularizer '{}'; known: none, kl, free-bits (param = lambda), "
                       "mmd (param = kernel sigma, <= 0 for 2 sigma^2 = latent size)",
           name);
}

// lambda(step) = weight * min(1, step / warmup_steps), or weight when warmup_steps <= 0.
double regularizer_weight(double weight, int64_t warmup_steps, int64_t step) {
  GV_CHECK(step >= 0, ValueError, "regularizer_weight: step must be >= 0, got {}", step);
  if (warmup_steps <= 0) return weight;
  return weight * std::min(1.0, double(step) / double(warmup_steps));
}

}  // namespace gv::vae
