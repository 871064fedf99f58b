// estimators.cpp: the numbers a trained VAE is measured by (see estimators.h). Every estimator
// runs without recording a graph, with the model in evaluation mode (its mode is restored after),
// batch by batch over the images, and adds up in double.
#include "vae/estimators.h"

#include <algorithm>
#include <cmath>

namespace gv::vae {

namespace {

// Where the model computes: its parameters' dtype and device (data batches are moved there).
struct Placement {
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

Placement placement_of(const Model& model) { return {model.dtype(), model.device()}; }

void check_inputs(const char* op, const Tensor& images, int64_t batch) {
  GV_CHECK(images.defined() && images.dim() >= 2, ShapeError,
           "{}: images must be (N, C, H, W) (or (N, D)), got {}", op,
           images.defined() ? shape_str(images.shape()) : std::string("an undefined tensor"));
  GV_CHECK(images.size(0) > 0, ValueError, "{}: no images (shape {})", op, shape_str(images.shape()));
  GV_CHECK(batch > 0, ValueError, "{}: batch must be positive, got {}", op, batch);
}

// Rows [start, end) of the images, on the model's device and in its dtype.
Tensor batch_rows(const Tensor& images, int64_t start, int64_t end, const Placement& at) {
  Tensor x = images.slice(0, start, end);
  if (!(x.device() == at.device)) x = x.to(at.device);
  if (x.dtype() != at.dtype) x = x.to(at.dtype);
  return x;
}

// Calls f(x, rows) for each batch x of at most `batch` rows; rows is x's row count.
template <class F>
void for_each_batch(const Tensor& images, int64_t batch, const Placement& at, F&& f) {
  const int64_t n = images.size(0);
  for (int64_t s = 0; s < n; s += batch) {
    const int64_t e = std::min(n, s + batch);
    f(batch_rows(images, s, e, at), e - s);
  }
}

double sum_of(const Tensor& t) {
  double s = 0;
  for (double v : t.to_vector<double>()) s += v;
  return s;
}

// log sum_i exp(v_i), in double, stable for any v (all -inf gives -inf).
double logsumexp_of(const double* v, int64_t n) {
  double m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, v[i]);
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(v[i] - m);
  return m + std::log(s);
}

// Estimators never hand back NaN or infinity as if it were a figure: the op, the quantity and its
// value, and on how many images (the model's outputs were not finite on them).
double finite(const char* op, const std::string& what, double v, int64_t n) {
  GV_CHECK(std::isfinite(v), NonFiniteError, "{}: {} is {} on {} image(s): the model's outputs are not finite", op,
           what, v, n);
  return v;
}

const std::vector<double>& finite(const char* op, const std::string& what, const std::vector<double>& v, int64_t n) {
  for (size_t j = 0; j < v.size(); ++j)
    if (!std::isfinite(v[j])) finite(op, fmt::format("{} of latent dimension {}", what, j), v[j], n);
  return v;
}

}  // namespace

// ---- the ELBO --------------------------------------------------------------------------------
// ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x)||p(z)) (Kingma & Welling 2014; the paper's eq. (8)),
// the first term by one reparameterized draw per example, the KL in closed form.
ElboEstimate test_elbo(Model& model, const Tensor& images, int64_t batch, Generator& g) {
  check_inputs("test_elbo", images, batch);
  EvalScope scope(model);
  const Placement at = placement_of(model);
  double rec = 0, kl = 0;
  for_each_batch(images, batch, at, [&](const Tensor& x, int64_t) {
    auto [mu, logvar] = model.encode(ag::Var(x));           // (B, Z) each
    EncoderPosterior q = reparameterize(mu, logvar, g);            // z (B, Z)
    rec += sum_of(model.decoder().log_prob(x, q.z).data());  // sum_b log p(x_b|z_b)
    kl += sum_of(kl_standard_normal(mu, logvar).data());     // sum_b sum_j KL_bj
  });
  const double n = (double)images.size(0);
  ElboEstimate out;
  out.reconstruction = finite("test_elbo", "the reconstruction term E_q log p(x|z)", rec / n, images.size(0));
  out.kl = finite("test_elbo", "the KL term", kl / n, images.size(0));
  out.elbo = finite("test_elbo", "the ELBO", out.reconstruction - out.kl, images.size(0));
  return out;
}

// ---- the importance-weighted bound -----------------------------------------------------------
// Burda, Grosse and Salakhutdinov (2016), the k-sample bound L_k: with z_1..z_k ~ q(z|x) independently,
//   L_k(x) = log (1/k) sum_i w_i,   log w_i = log p(x|z_i) + log N(z_i; 0, I) - log q(z_i|x),
// computed as logsumexp_i(log w_i) - log k. L_1 is the ELBO in expectation, L_k <= L_{k+1} <= log p(x)
// in expectation. The k draws are taken one after another (each a batch-sized decoder call), and the
// log weights are kept per example, B x k doubles.
double iwae_log_likelihood(Model& model, const Tensor& images, int64_t k, int64_t batch,
                           Generator& g) {
  check_inputs("iwae_log_likelihood", images, batch);
  GV_CHECK(k > 0, ValueError, "iwae_log_likelihood: k (samples per example) must be positive, got {}", k);
  EvalScope scope(model);
  const Placement at = placement_of(model);
  double total = 0;
  std::vector<double> log_w;  // (B, k) row-major
  for_each_batch(images, batch, at, [&](const Tensor& x, int64_t rows) {
    auto [mu_v, logvar_v] = model.encode(ag::Var(x));
    const Tensor mu = mu_v.data(), logvar = logvar_v.data();  // (B, Z)
    const Tensor std_dev = exp(logvar * 0.5);
    const Tensor logvar64 = logvar.to(DType::f64);
    log_w.assign((size_t)(rows * k), 0.0);
    for (int64_t i = 0; i < k; ++i) {
      // z = mu + sigma * eps, eps ~ N(0, I): (B, Z) in the model's dtype
      const Tensor eps = normal(mu.shape(), g, 0, 1, mu.dtype(), mu.device());
      const Tensor z = mu + std_dev * eps;
      // log p(x|z): (B)
      const Tensor log_px = model.decoder().log_prob(x, ag::Var(z)).data();
      // log N(z; 0, I) = -1/2 sum_j (z_j^2 + log 2pi): (B), in double
      const Tensor log_pz = sum(square(z.to(DType::f64)) + kLog2Pi, {1}) * -0.5;
      // log q(z|x) = -1/2 sum_j (eps_j^2 + logvar_j + log 2pi), from eps itself (exact, also for tiny sigma)
      const Tensor log_qz = sum(square(eps.to(DType::f64)) + logvar64 + kLog2Pi, {1}) * -0.5;
      const std::vector<double> w = (log_px.to(DType::f64) + log_pz - log_qz).to_vector<double>();
      for (int64_t b = 0; b < rows; ++b) log_w[(size_t)(b * k + i)] = w[(size_t)b];
    }
    for (int64_t b = 0; b < rows; ++b) total += logsumexp_of(&log_w[(size_t)(b * k)], k) - std::log((double)k);
  });
  return finite("iwae_log_likelihood", fmt::format("the IWAE bound (k = {})", k), total / (double)images.size(0),
                images.size(0));
}

// ---- KL per latent dimension -----------------------------------------------------------------
// KL_j = E_x [ 1/2 (mu_j^2 + exp(logvar_j) - 1 - logvar_j) ], the closed form of
// KL(N(mu_j, exp(logvar_j)) || N(0, 1)) (Kingma & Welling 2014, appendix B). The entries add up
// to the KL term of test_elbo.
std::vector<double> kl_per_dimension(Model& model, const Tensor& images, int64_t batch) {
  check_inputs("kl_per_dimension", images, batch);
  EvalScope scope(model);
  const Placement at = placement_of(model);
  std::vector<double> total;
  for_each_batch(images, batch, at, [&](const Tensor& x, int64_t) {
    auto [mu, logvar] = model.encode(ag::Var(x));
    const int64_t zdim = mu.size(1);
    const std::vector<double> kl = kl_standard_normal(mu, logvar).data().to_vector<double>();  // (B, Z)
    if (total.empty()) total.assign((size_t)zdim, 0.0);
    for (size_t i = 0; i < kl.size(); ++i) total[i % (size_t)zdim] += kl[i];
  });
  for (double& v : total) v /= (double)images.size(0);
  return finite("kl_per_dimension", "the KL", total, images.size(0));
}

// ---- active units ----------------------------------------------------------------------------
// Burda, Grosse and Salakhutdinov (2016), their measure of active units: the activity of unit u is
//   A_u = Cov_x( E_{q(z|x)}[z_u] ) = Var_x( mu_u(x) ),
// here the sample variance over the data set (divided by N - 1; 0 for a single example), computed
// in two passes over the stored means (N x Z doubles) in double.
std::vector<double> latent_activity(Model& model, const Tensor& images, int64_t batch) {
  check_inputs("latent_activity", images, batch);
  EvalScope scope(model);
  const Placement at = placement_of(model);
  std::vector<double> mus;  // (N, Z) row-major
  int64_t zdim = 0;
  for_each_batch(images, batch, at, [&](const Tensor& x, int64_t) {
    auto [mu, logvar] = model.encode(ag::Var(x));
    zdim = mu.size(1);
    const std::vector<double> m = mu.data().to_vector<double>();
    mus.insert(mus.end(), m.begin(), m.end());
  });
  const int64_t n = images.size(0);
  std::vector<double> mean((size_t)zdim, 0.0), var((size_t)zdim, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < zdim; ++j) mean[(size_t)j] += mus[(size_t)(i * zdim + j)];
  for (double& m : mean) m /= (double)n;
  finite("latent_activity", "the mean of E_q z", mean, n);
  if (n < 2) return var;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < zdim; ++j) {
      const double d = mus[(size_t)(i * zdim + j)] - mean[(size_t)j];
      var[(size_t)j] += d * d;
    }
  for (double& v : var) v /= (double)(n - 1);
  return finite("latent_activity", "the activity Var_x(E_q z)", var, n);
}

int64_t active_units(Model& model, const Tensor& images, int64_t batch, double threshold) {
  int64_t count = 0;
  for (double a : latent_activity(model, images, batch)) count += a > threshold ? 1 : 0;
  return count;
}

// ---- mutual information I_q(x; z) --------------------------------------------------------------
// The paper's appendix A.3: I_q(x; z) = E_q(x,z)[log q(z|x) / q(z)], with q(z) replaced by the
// mixture of the M posteriors of the data set:
//   I ~ (1/M) sum_i [ log q(z_i|x_i) - log (1/M) sum_j q(z_i|x_j) ],   z_i ~ q(z|x_i),
// where log q(z_i|x_j) = -1/2 sum_d [ (z_id - mu_jd)^2 exp(-logvar_jd) + logvar_jd + log 2pi ].
// Steps: (1) encode all M examples and keep mu, logvar (M x Z, double); (2) draw z_i; (3) for row
// blocks of `batch` samples, the (batch x M) matrix of log q(z_i|x_j), one latent dimension at a
// time, and its logsumexp over j. The estimate is biased and cannot exceed log M (the j = i term
// alone bounds the mixture from below by q(z_i|x_i)/M): it saturates when the true MI is near log M.
MutualInformation mutual_information(Model& model, const Tensor& images, int64_t batch, Generator& g) {
  check_inputs("mutual_information", images, batch);
  EvalScope scope(model);
  const Placement at = placement_of(model);
  const int64_t m = images.size(0);

  // (1) the posteriors of every example, in double: mu, logvar (M, Z)
  std::vector<Tensor> mus, logvars;
  for_each_batch(images, batch, at, [&](const Tensor& x, int64_t) {
    auto [mu, logvar] = model.encode(ag::Var(x));
    mus.push_back(mu.data().to(DType::f64));
    logvars.push_back(logvar.data().to(DType::f64));
  });
  const Tensor mu = concat(mus, 0), logvar = concat(logvars, 0);
  const int64_t zdim = mu.size(1);
  for (const auto& [t, what] : {std::pair{&mu, "a posterior mean"}, std::pair{&logvar, "a posterior log-variance"}})
    if (const auto bad = first_non_finite(*t)) finite("mutual_information", what, bad->value, m);

  // (2) z_i = mu_i + exp(logvar_i / 2) eps_i, and log q(z_i|x_i) = -1/2 sum_d (eps_id^2 + logvar_id + log 2pi)
  const Tensor eps = normal(mu.shape(), g, 0, 1, DType::f64, mu.device());
  const Tensor z = mu + exp(logvar * 0.5) * eps;  // (M, Z)
  const std::vector<double> log_q_own = (sum(square(eps) + logvar + kLog2Pi, {1}) * -0.5).to_vector<double>();

  // (3) per latent dimension d, as rows over j: mu_d (1, M), 1/var_d (1, M); and
  // c_j = sum_d logvar_jd + Z log 2pi (1, M)
  const Tensor mu_t = mu.t().contiguous();                       // (Z, M)
  const Tensor inv_var_t = exp(-logvar).t().contiguous();         // (Z, M)
  const Tensor c = (sum(logvar, {1}) + (double)zdim * kLog2Pi).unsqueeze(0);  // (1, M)
  double total = 0;
  for (int64_t s = 0; s < m; s += batch) {
    const int64_t e = std::min(m, s + batch);
    const Tensor zb = z.slice(0, s, e);  // (b, Z)
    // quad_ij = sum_d (z_id - mu_jd)^2 / var_jd: (b, M)
    Tensor quad = Tensor::zeros({e - s, m}, DType::f64, mu.device());
    for (int64_t d = 0; d < zdim; ++d) {
      const Tensor diff = zb.slice(1, d, d + 1) - mu_t.slice(0, d, d + 1);  // (b, 1) - (1, M) -> (b, M)
      quad = quad + square(diff) * inv_var_t.slice(0, d, d + 1);
    }
    // log sum_j q(z_i|x_j) = logsumexp_j(-1/2 (quad_ij + c_j)): (b)
    const std::vector<double> lse = logsumexp((quad + c) * -0.5, {1}).to_vector<double>();
    for (int64_t i = s; i < e; ++i) total += log_q_own[(size_t)i] - (lse[(size_t)(i - s)] - std::log((double)m));
  }
  MutualInformation out;
  out.m = m;
  out.ceiling = std::log((double)m);
  out.mi = finite("mutual_information", "I_q(x;z)", total / (double)m, m);
  return out;
}

}  // namespace gv::vae
