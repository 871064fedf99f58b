// test_estimators.cpp: the estimators of vae/estimators.h on tiny MLP VAEs whose encoder and
// decoder are set to known functions through named_parameters():
//   - test_elbo in closed form when the decoder ignores z (and kl_per_dimension against it);
//   - the importance-weighted bound: k = 1 is the ELBO in expectation, more samples tighten it
//     towards log p(x), and it is exact for every k when q(z|x) is the exact posterior (a linear
//     Gaussian model);
//   - mutual information: 0 when q ignores x, log 2 for two separated clusters, log M when q is
//     nearly deterministic and distinct per example, unchanged by the row blocking;
//   - active units: only the latent dimensions whose mean depends on x count;
//   - the model's mode is restored, and bad arguments raise.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "vae/estimators.h"
#include "tests/vae/vae_test_util.h"

using namespace gv;
using namespace gv::vae;
using ag::Var;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_estimators {

namespace {

// A tiny MLP VAE over 1x2x2 images (D = 4). With hidden_layers = 0 the encoder is one Linear,
// x -> [mu, logvar] = W_e x + b_e (W_e (2Z, 4)), and the decoder one Linear, z -> W_d z + b_d (W_d (4, Z)).
VAE tiny_vae(int64_t latent, int64_t hidden_layers, uint64_t seed = 1, std::shared_ptr<Likelihood> p = nullptr) {
  return gv::test::tiny_vae(
      {.latent = latent, .hidden_layers = hidden_layers, .p = p, .activation = "tanh", .seed = seed});
}

// The last Linear of the encoder and of the decoder (found by name).
struct LastLayers {
  Var enc_w, enc_b, dec_w, dec_b;
};

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

LastLayers last_layers(const VAE& m) {
  LastLayers r;
  for (const auto& [name, v] : m.named_parameters()) {
    if (starts_with(name, "encoder.") && ends_with(name, ".weight")) r.enc_w = v;
    if (starts_with(name, "encoder.") && ends_with(name, ".bias")) r.enc_b = v;
    if (starts_with(name, "decoder.") && ends_with(name, ".weight")) r.dec_w = v;
    if (starts_with(name, "decoder.") && ends_with(name, ".bias")) r.dec_b = v;
  }
  REQUIRE(r.enc_w.defined());
  REQUIRE(r.enc_b.defined());
  REQUIRE(r.dec_w.defined());
  REQUIRE(r.dec_b.defined());
  return r;
}

void set_values(const Var& v, const std::vector<double>& values) {
  REQUIRE((int64_t)values.size() == v.numel());
  v.set_data(Tensor::from_vector(std::vector<float>(values.begin(), values.end()), v.shape()));
}

Tensor binary_images(int64_t n, uint64_t seed) {
  Generator g(seed);
  return gv::bernoulli(Tensor::full({n, 1, 2, 2}, 0.5), g);
}
Tensor uniform_images(int64_t n, uint64_t seed) {
  Generator g(seed);
  return uniform({n, 1, 2, 2}, g);
}

double softplus_d(double l) { return l > 0 ? l + std::log1p(std::exp(-l)) : std::log1p(std::exp(l)); }

struct MeanSe {
  double mean, se;  // sample mean and its standard error
};
MeanSe mean_se(const std::vector<double>& v) {
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= (double)v.size();
  for (double x : v) s += (x - m) * (x - m);
  return {m, std::sqrt(s / (double)(v.size() - 1) / (double)v.size())};
}

// log N(x; b, S) for a small symmetric positive definite S (n x n), by a Cholesky factorization.
double log_normal_density(const std::vector<double>& x, const std::vector<double>& b, std::vector<double> S) {
  const int n = (int)x.size();
  for (int j = 0; j < n; ++j) {  // S = L L^T, L in the lower triangle of S
    for (int k = 0; k < j; ++k) S[j * n + j] -= S[j * n + k] * S[j * n + k];
    S[j * n + j] = std::sqrt(S[j * n + j]);
    for (int i = j + 1; i < n; ++i) {
      for (int k = 0; k < j; ++k) S[i * n + j] -= S[i * n + k] * S[j * n + k];
      S[i * n + j] /= S[j * n + j];
    }
  }
  std::vector<double> y(n);  // L y = x - b
  double logdet = 0, quad = 0;
  for (int i = 0; i < n; ++i) {
    double r = x[i] - b[i];
    for (int k = 0; k < i; ++k) r -= S[i * n + k] * y[k];
    y[i] = r / S[i * n + i];
    quad += y[i] * y[i];
    logdet += 2 * std::log(S[i * n + i]);
  }
  return -0.5 * (n * std::log(2 * M_PI) + logdet + quad);
}

}  // namespace

// ---- the ELBO ----------------------------------------------------------------------------------

TEST_CASE("test_elbo: closed form when the decoder ignores z; kl_per_dimension adds up to its KL") {
  // Encoder known (Z = 2): mu_j = W[j].x + b_j, logvar_j = W[2+j].x + b_{2+j}. Decoder weights 0,
  // so p(x|z) = Bernoulli(logits b_d) for every z, and E_q log p(x|z) = log p(x|b_d) exactly.
  VAE model = tiny_vae(2, 0);
  LastLayers L = last_layers(model);
  const std::vector<double> We = {0.5, -0.3, 0.2, 0.1, -0.4, 0.6, 0.0, 0.3,
                                  0.2, 0.1, -0.5, 0.4, -0.1, 0.3, 0.2, -0.6};
  const std::vector<double> be = {0.3, -0.2, -0.5, 0.4};
  const std::vector<double> bd = {0.7, -1.2, 0.1, 2.0};
  set_values(L.enc_w, We);
  set_values(L.enc_b, be);
  set_values(L.dec_w, std::vector<double>(8, 0.0));
  set_values(L.dec_b, bd);

  const int64_t n = 10;
  const Tensor x = binary_images(n, 7);
  const std::vector<double> xv = x.to_vector<double>();
  double rec = 0;
  std::vector<double> kl_dim(2, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* xi = &xv[(size_t)(i * 4)];
    for (int d = 0; d < 4; ++d) rec += xi[d] * bd[d] - softplus_d(bd[d]);  // log Bernoulli(x; logit)
    for (int j = 0; j < 2; ++j) {
      double mu = be[j], lv = be[2 + j];
      for (int d = 0; d < 4; ++d) {
        mu += We[j * 4 + d] * xi[d];
        lv += We[(2 + j) * 4 + d] * xi[d];
      }
      kl_dim[j] += 0.5 * (mu * mu + std::exp(lv) - 1 - lv);
    }
  }
  rec /= n;
  kl_dim[0] /= n;
  kl_dim[1] /= n;

  auto lik = vae::bernoulli();
  Generator g(3);
  const ElboEstimate e = test_elbo(model, x, 3, g);  // batches of 3, 3, 3, 1
  CHECK(e.reconstruction == doctest::Approx(rec).epsilon(1e-5));
  CHECK(e.kl == doctest::Approx(kl_dim[0] + kl_dim[1]).epsilon(1e-5));
  CHECK(e.elbo == doctest::Approx(rec - kl_dim[0] - kl_dim[1]).epsilon(1e-5));

  const std::vector<double> kl = kl_per_dimension(model, x, 4);
  REQUIRE(kl.size() == 2);
  CHECK(kl[0] == doctest::Approx(kl_dim[0]).epsilon(1e-5));
  CHECK(kl[1] == doctest::Approx(kl_dim[1]).epsilon(1e-5));
  CHECK(kl[0] + kl[1] == doctest::Approx(e.kl).epsilon(1e-9));
}

TEST_CASE("kl_per_dimension sums to the KL term of test_elbo on a random model") {
  VAE model = tiny_vae(3, 1, 11);
  const Tensor x = binary_images(13, 5);
  auto lik = vae::bernoulli();
  Generator g(1);
  const ElboEstimate e = test_elbo(model, x, 5, g);
  const std::vector<double> kl = kl_per_dimension(model, x, 6);
  REQUIRE(kl.size() == 3);
  double total = 0;
  for (double v : kl) {
    CHECK(v > 0);
    total += v;
  }
  // Batches of 5 against batches of 6 of a float32 model: each example's KL is the same float32
  // bits in either (the engine's GEMM is batch invariant, engine/gemm.h), so only the order of
  // the double-precision sums differs: 1e-9 is far above that and far below float32's 6e-8.
  CHECK(total == doctest::Approx(e.kl).epsilon(1e-9));
  CHECK(e.elbo == doctest::Approx(e.reconstruction - e.kl).epsilon(1e-12));
}

// ---- the importance-weighted bound -------------------------------------------------------------

TEST_CASE("iwae_log_likelihood: k = 1 is the ELBO in expectation, and k = 50 is a tighter bound") {
  // A random model, so q(z|x) is not the true posterior. Each repetition uses a fresh generator.
  VAE model = tiny_vae(2, 1, 21);
  const Tensor x = binary_images(6, 9);
  auto lik = vae::bernoulli();
  std::vector<double> elbo, iwae1, iwae50;
  for (uint64_t r = 0; r < 400; ++r) {
    Generator ge(1000 + r), gi(90000 + r);
    elbo.push_back(test_elbo(model, x, 4, ge).elbo);
    iwae1.push_back(iwae_log_likelihood(model, x, 1, 4, gi));
  }
  for (uint64_t r = 0; r < 40; ++r) {
    Generator gi(500000 + r);
    iwae50.push_back(iwae_log_likelihood(model, x, 50, 6, gi));
  }
  const MeanSe e = mean_se(elbo), i1 = mean_se(iwae1), i50 = mean_se(iwae50);
  const double se = std::sqrt(e.se * e.se + i1.se * i1.se);
  INFO("ELBO ", e.mean, " +- ", e.se, ", IWAE k=1 ", i1.mean, " +- ", i1.se, ", k=50 ", i50.mean, " +- ", i50.se);
  CHECK(se < 0.05);  // the comparison below has the power to see a missing term
  CHECK(std::abs(e.mean - i1.mean) < 4 * se);
  CHECK(i50.mean > i1.mean + 4 * std::sqrt(i1.se * i1.se + i50.se * i50.se));
}

TEST_CASE("iwae_log_likelihood: tightens towards log p(x) when the decoder ignores z") {
  // Decoder weights 0: p(x|z) = p(x|b_d), so the true posterior is the prior and log p(x) = log p(x|b_d).
  // Encoder weights 0: q(z|x) = N(m, diag(v)) with m = (0.8, -0.5), v = (1.3, 0.9), which is not N(0, I).
  VAE model = tiny_vae(2, 0);
  LastLayers L = last_layers(model);
  const std::vector<double> bd = {0.4, -0.9, 1.5, 0.0};
  set_values(L.enc_w, std::vector<double>(16, 0.0));
  set_values(L.enc_b, {0.8, -0.5, std::log(1.3), std::log(0.9)});
  set_values(L.dec_w, std::vector<double>(8, 0.0));
  set_values(L.dec_b, bd);

  const int64_t n = 200;
  const Tensor x = binary_images(n, 4);
  const std::vector<double> xv = x.to_vector<double>();
  double log_px = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < 4; ++d) log_px += xv[(size_t)(i * 4 + d)] * bd[d] - softplus_d(bd[d]);
  log_px /= n;
  const double kl = 0.5 * (0.64 + 1.3 - 1 - std::log(1.3)) + 0.5 * (0.25 + 0.9 - 1 - std::log(0.9));

  auto lik = vae::bernoulli();
  Generator g0(1), g1(2), g2(3), g3(4);
  const double elbo = test_elbo(model, x, 64, g0).elbo;
  const double l1 = iwae_log_likelihood(model, x, 1, 64, g1);
  const double l10 = iwae_log_likelihood(model, x, 10, 64, g2);
  const double l200 = iwae_log_likelihood(model, x, 200, 200, g3);
  INFO("log p(x) ", log_px, ", ELBO ", elbo, ", L1 ", l1, ", L10 ", l10, ", L200 ", l200);
  CHECK(elbo == doctest::Approx(log_px - kl).epsilon(1e-5));  // log p(x|z) does not vary with z
  CHECK(std::abs(l1 - (log_px - kl)) < 0.15);                   // L_1 = ELBO in expectation
  CHECK(l10 > l1 + 0.2);
  CHECK(l200 > l10);
  CHECK(l200 < log_px + 0.02);  // a lower bound in expectation...
  CHECK(l200 > log_px - 0.05);  // ...and nearly tight with 200 samples
}

TEST_CASE("iwae_log_likelihood: exact for every k when q(z|x) is the exact posterior (linear Gaussian)") {
  // p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I) with orthogonal columns w_j of W, so the posterior is
  // diagonal: q(z|x) = N(S W^T (x - b) / s^2, S), S = diag(1 / (1 + |w_j|^2 / s^2)). Then every
  // importance weight p(x, z) / q(z|x) equals p(x) = N(x; b, s^2 I + W W^T).
  const double s = 0.5, s2 = s * s;
  const double W[4][2] = {{0.5, 0.8}, {0.5, -0.8}, {0.5, 0.8}, {0.5, -0.8}};  // (D, Z), w_1 . w_2 = 0
  const std::vector<double> b = {0.1, -0.2, 0.3, 0.0};
  double S[2];
  for (int j = 0; j < 2; ++j) {
    double norm2 = 0;
    for (int d = 0; d < 4; ++d) norm2 += W[d][j] * W[d][j];
    S[j] = 1 / (1 + norm2 / s2);
  }
  VAE model = tiny_vae(2, 0, 1, gaussian_fixed(s));  // p(x|z) = N(W z + b, s^2 I)
  LastLayers L = last_layers(model);
  std::vector<double> We(16, 0.0), be(4, 0.0), Wd(8);
  for (int j = 0; j < 2; ++j) {
    for (int d = 0; d < 4; ++d) {
      We[j * 4 + d] = S[j] * W[d][j] / s2;  // mu_j = S_j w_j . (x - b) / s^2
      be[j] -= S[j] * W[d][j] * b[d] / s2;
      Wd[d * 2 + j] = W[d][j];
    }
    be[2 + j] = std::log(S[j]);  // logvar_j, the same for every x
  }
  set_values(L.enc_w, We);
  set_values(L.enc_b, be);
  set_values(L.dec_w, Wd);
  set_values(L.dec_b, b);

  const int64_t n = 12;
  Generator gx(8);
  const Tensor x = normal({n, 1, 2, 2}, gx, 0, 1.5);
  const std::vector<double> xv = x.to_vector<double>();
  std::vector<double> cov(16);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) cov[r * 4 + c] = (r == c ? s2 : 0) + W[r][0] * W[c][0] + W[r][1] * W[c][1];
  double log_px = 0;
  for (int64_t i = 0; i < n; ++i)
    log_px += log_normal_density({xv.begin() + i * 4, xv.begin() + i * 4 + 4}, b, cov);
  log_px /= n;

  for (int64_t k : {1, 7}) {
    for (uint64_t seed : {1u, 2u}) {
      Generator g(seed);
      CAPTURE(k);
      CAPTURE(seed);
      CHECK(iwae_log_likelihood(model, x, k, 5, g) == doctest::Approx(log_px).epsilon(1e-4));
    }
  }
}

// ---- mutual information ------------------------------------------------------------------------

TEST_CASE("mutual_information: 0 when q(z|x) does not depend on x") {
  VAE model = tiny_vae(3, 0);
  LastLayers L = last_layers(model);
  set_values(L.enc_w, std::vector<double>(24, 0.0));
  set_values(L.enc_b, {0.2, -1.0, 0.5, 0.1, -0.3, 0.4});
  const Tensor x = uniform_images(40, 3);
  Generator g(5);
  const MutualInformation mi = mutual_information(model, x, 7, g);
  CHECK(mi.m == 40);
  CHECK(mi.ceiling == doctest::Approx(std::log(40.0)));
  CHECK(std::abs(mi.mi) < 1e-9);
}

TEST_CASE("mutual_information: log 2 for two well separated clusters of identical posteriors") {
  // Z = 1, mu = 4 x_0 - 2 (pixel 0 is 0 or 1), sigma = exp(-1): half the examples have q = N(-2, e^-2),
  // half q = N(2, e^-2); each z_i has density only under its own cluster's M/2 posteriors, so
  // I_i = log q(z_i|x_i) - log((1/M)(M/2) q(z_i|x_i)) = log 2.
  VAE model = tiny_vae(1, 0);
  LastLayers L = last_layers(model);
  set_values(L.enc_w, {4, 0, 0, 0, 0, 0, 0, 0});
  set_values(L.enc_b, {-2, -2});
  const int64_t m = 30;
  std::vector<float> pixels = uniform_images(m, 2).to_vector<float>();
  for (int64_t i = 0; i < m; ++i) pixels[(size_t)(i * 4)] = (float)(i % 2);
  const Tensor x = Tensor::from_vector(pixels, {m, 1, 2, 2});
  Generator g(9);
  const MutualInformation mi = mutual_information(model, x, 8, g);
  CHECK(std::abs(mi.mi - std::log(2.0)) < 1e-6);
  CHECK(mi.ceiling == doctest::Approx(std::log(30.0)));
}

TEST_CASE("mutual_information: approaches its ceiling log M when q is nearly deterministic and distinct") {
  // mu = (3 x_0, 3 x_1 - x_3), sigma = exp(-10): the posteriors of distinct images do not overlap,
  // so (1/M) sum_j q(z_i|x_j) = q(z_i|x_i) / M and every term is log M.
  VAE model = tiny_vae(2, 0);
  LastLayers L = last_layers(model);
  set_values(L.enc_w, {3, 0, 0, 0, 0, 3, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0});
  set_values(L.enc_b, {0, 0, -20, -20});
  const int64_t m = 40;
  const Tensor x = uniform_images(m, 6);
  Generator g(4);
  const MutualInformation mi = mutual_information(model, x, 16, g);
  CHECK(mi.mi == doctest::Approx(std::log((double)m)).epsilon(1e-6));
  CHECK(mi.mi <= mi.ceiling + 1e-9);
}

TEST_CASE("mutual_information: between 0 and log M for overlapping posteriors, and the row blocks do not change it") {
  // mu = W x with random W (Z = 3), sigma = exp(-0.5 - 0.1 sum x): posteriors of nearby images overlap.
  VAE model = tiny_vae(3, 0);
  LastLayers L = last_layers(model);
  Generator gw(17);
  std::vector<double> We = (normal({24}, gw) * 2.0).to_vector<double>();
  for (int j = 12; j < 24; ++j) We[j] = -0.1;
  set_values(L.enc_w, We);
  set_values(L.enc_b, {0.1, 0.2, -0.3, -1, -1, -1});
  const Tensor x = uniform_images(25, 12);
  Generator g1(3), g2(3);
  const MutualInformation whole = mutual_information(model, x, 25, g1);
  const MutualInformation blocks = mutual_information(model, x, 4, g2);
  CHECK(whole.mi > 0);
  CHECK(whole.mi < whole.ceiling);
  CHECK(blocks.mi == doctest::Approx(whole.mi).epsilon(1e-6));
}

// ---- active units ------------------------------------------------------------------------------

TEST_CASE("active_units: counts the latent dimensions whose mean varies with x") {
  // Z = 4: mu_0 = 2 x_0 + 0.1 and mu_2 = -3 x_2 + x_3 vary with x; mu_1 and mu_3 are constants.
  // logvar depends on x everywhere, which must not count.
  VAE model = tiny_vae(4, 0);
  LastLayers L = last_layers(model);
  std::vector<double> We(32, 0.0);
  We[0 * 4 + 0] = 2;
  We[2 * 4 + 2] = -3;
  We[2 * 4 + 3] = 1;
  for (int j = 4; j < 8; ++j)
    for (int d = 0; d < 4; ++d) We[j * 4 + d] = 0.5;
  set_values(L.enc_w, We);
  set_values(L.enc_b, {0.1, 0.7, -0.2, -1.5, 0, 0, 0, 0});

  const int64_t n = 50;
  const Tensor x = uniform_images(n, 1);
  const std::vector<float> xv = x.to_vector<float>();
  // The sample variances of mu_0 and mu_2 over the images, by hand (float32 means, as the model).
  auto sample_var = [&](auto f) {
    double m = 0, s = 0;
    for (int64_t i = 0; i < n; ++i) m += f(&xv[(size_t)(i * 4)]);
    m /= n;
    for (int64_t i = 0; i < n; ++i) s += (f(&xv[(size_t)(i * 4)]) - m) * (f(&xv[(size_t)(i * 4)]) - m);
    return s / (n - 1);
  };
  const double a0 = sample_var([](const float* p) { return 2.0 * p[0] + 0.1; });
  const double a2 = sample_var([](const float* p) { return -3.0 * p[2] + p[3] - 0.2; });

  const std::vector<double> a = latent_activity(model, x, 8);
  REQUIRE(a.size() == 4);
  CHECK(a[0] == doctest::Approx(a0).epsilon(1e-5));
  CHECK(a[1] == 0);
  CHECK(a[2] == doctest::Approx(a2).epsilon(1e-5));
  CHECK(a[3] == 0);
  CHECK(active_units(model, x, 8) == 2);
  CHECK(active_units(model, x, 8, 0.5 * (a0 + a2)) == 1);  // a0 ~ 4/12 < a2 ~ 10/12
  CHECK(active_units(model, x, 8, 10.0) == 0);
}

// ---- mode and arguments ------------------------------------------------------------------------

TEST_CASE("estimators: restore the model's mode and reject bad arguments") {
  VAE model = tiny_vae(2, 1);
  const Tensor x = binary_images(5, 1);
  auto lik = vae::bernoulli();
  Generator g(1);
  for (bool training : {true, false}) {
    model.train(training);
    test_elbo(model, x, 2, g);
    iwae_log_likelihood(model, x, 3, 2, g);
    kl_per_dimension(model, x, 2);
    active_units(model, x, 2);
    mutual_information(model, x, 2, g);
    CHECK(model.is_training() == training);
  }
  CHECK_THROWS_AS(test_elbo(model, x, 0, g), ValueError);
  CHECK_THROWS_AS(iwae_log_likelihood(model, x, 0, 2, g), ValueError);
  CHECK_THROWS_AS(mutual_information(model, Tensor::zeros({0, 1, 2, 2}), 2, g), ValueError);
  CHECK_THROWS_AS(kl_per_dimension(model, Tensor(), 2), ShapeError);
  CHECK(model.is_training() == false);
}

TEST_CASE("estimators refuse to report a result that is not finite, naming the quantity") {
  // weights all finite, but an encoder whose log-variance overflows: exp(logvar) is inf in float32,
  // so the KL is inf and the ELBO -inf or NaN
  VAE m = tiny_vae(2, 0);
  LastLayers l = last_layers(m);
  std::vector<double> b(l.enc_b.numel(), 0.0);
  for (size_t j = b.size() / 2; j < b.size(); ++j) b[j] = 1e30;  // [mu, logvar]: the logvar half
  set_values(l.enc_b, b);
  const Tensor x = binary_images(8, 3);
  auto bern = make_likelihood("bernoulli", 1.0, 1);
  Generator g(1);
  CHECK_THROWS_WITH_AS(test_elbo(m, x, 4, g), doctest::Contains("test_elbo: the"), NonFiniteError);
  CHECK_THROWS_WITH_AS(iwae_log_likelihood(m, x, 3, 4, g), doctest::Contains("the IWAE bound (k = 3) is"),
                       NonFiniteError);
  CHECK_THROWS_WITH_AS(kl_per_dimension(m, x, 4), doctest::Contains("the KL of latent dimension 0 is inf on 8 image(s)"),
                       NonFiniteError);
  CHECK_THROWS_WITH_AS(mutual_information(m, x, 4, g), doctest::Contains("mutual_information: "),
                       NonFiniteError);
  // a NaN mean: the activity is not finite, so active_units cannot quietly count 0
  b.assign(b.size(), 0.0);
  b[0] = std::numeric_limits<double>::quiet_NaN();
  set_values(l.enc_b, b);
  CHECK_THROWS_WITH_AS(active_units(m, x, 4), doctest::Contains("latent_activity: the mean of E_q z of latent dimension 0"),
                       NonFiniteError);
}

}  // namespace file_vae_test_estimators
