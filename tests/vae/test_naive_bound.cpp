// test_naive_bound.cpp: the naive lower bound of section 2.2, eq. (3), E_{p(z)}[log p(x|z)] with
// z ~ N(0, I) drawn independently of x (vae::naive_objective): its value against a hand computation
// through a decoder with no hidden layer, z independent of x, the gradient reaching the decoder only
// (and matching finite differences), and the paper's point, eq. (4): trained on two binary patterns,
// the decoder collapses to one output, the per-pixel data mean, for every z, and reaches the
// closed-form optimum -sum_j H(m_j), while the same model trained on the ELBO (with q(z|x))
// reconstructs the two patterns distinctly and its g(z) varies with z.
#include <doctest/doctest.h>

#include "tests/test_util.h"
#include "tests/vae/vae_test_util.h"

#include <cmath>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/optim.h"
#include "vae/objective.h"

using namespace gv;
using namespace gv::vae;
using ag::Var;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_vae_test_naive_bound {

namespace {

VAE tiny_mlp(const Shape& data_shape, int64_t latent, int64_t hidden, int64_t layers, uint64_t seed,
             DType dt = DType::f64) {
  return gv::test::tiny_vae({.data_shape = data_shape, .latent = latent, .hidden = hidden, .hidden_layers = layers,
                             .seed = seed, .dtype = dt});
}

Tensor binary_data(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return gv::bernoulli(Tensor::full(s, 0.5, DType::f64), g);
}

bool is_encoder(const std::string& name) { return name.rfind("encoder.", 0) == 0; }

// Two 4x4 binary patterns that differ in 8 pixels and agree on 8 (4 on, 4 off).
const std::vector<double> kPatternA = {1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0};
const std::vector<double> kPatternB = {1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0};

// N examples alternating A, B: (N, 1, 4, 4) float32.
Tensor two_patterns(int64_t n) {
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i)
    for (double p : (i % 2 == 0 ? kPatternA : kPatternB)) v.push_back(float(p));
  return Tensor::from_vector(v, {n, 1, 4, 4});
}

// g(z) = mean of p(x|z) for n draws z ~ N(0, I), as rows of doubles (n x D).
std::vector<std::vector<double>> decoder_means(VAE& m, const Likelihood& p, int64_t n, uint64_t seed) {
  ag::NoGradGuard ng;
  Generator g(seed);
  Tensor z = normal({n, m.config().latent}, g, 0, 1, m.dtype());
  std::vector<double> all = p.mean(m.factorized().params(Var(z)).data()).to(DType::f64).to_vector<double>();
  const size_t d = all.size() / size_t(n);
  std::vector<std::vector<double>> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[i].assign(all.begin() + i * d, all.begin() + (i + 1) * d);
  return rows;
}

// Mean over pixels of the variance across rows.
double spread(const std::vector<std::vector<double>>& rows) {
  const size_t n = rows.size(), d = rows[0].size();
  double total = 0;
  for (size_t j = 0; j < d; ++j) {
    double s = 0, s2 = 0;
    for (const auto& r : rows) s += r[j], s2 += r[j] * r[j];
    total += s2 / double(n) - (s / double(n)) * (s / double(n));
  }
  return total / double(d);
}

// Adam on full batches of x for `steps`: the naive bound (naive = true) or the ELBO. The learning
// rate drops tenfold at half and at three quarters of the steps: with a constant one, Adam's
// normalized steps keep the weights jittering at about its size around the optimum, and the
// jitter alone leaves g(z) some dependence on z.
void train(VAE& m, const Tensor& x, bool naive, int64_t steps, double lr) {
  auto p = bernoulli();
  auto r = kl();
  nn::Adam opt(m.named_parameters(), lr);
  Generator g(77);
  for (int64_t s = 0; s < steps; ++s) {
    opt.set_lr(s < steps / 2 ? lr : s < 3 * steps / 4 ? lr / 10 : lr / 100);
    opt.zero_grad();
    Var loss = naive ? naive_objective(m, x, g).loss : objective(m, x, *r, 1.0, g).loss;
    loss.backward();
    opt.step();
  }
}

}  // namespace

TEST_CASE("naive_objective: the value is -mean_b sum_j [x l - log(1 + e^l)], l = W z_b + c, z_b ~ N(0, I) from g") {
  // no hidden layer: the decoder is Linear(Z, D) reshaped, so the logits can be computed by hand
  const int64_t B = 3, Z = 2, D = 6;
  VAE m = tiny_mlp({1, 2, 3}, Z, 4, 0, 41);
  Tensor x = binary_data({B, 1, 2, 3}, 42);
  auto p = bernoulli();
  Generator g(43);
  NaiveTerms t = naive_objective(m, x, g);
  CHECK(t.loss.dim() == 0);
  CHECK(t.loss.item() == -t.bound.item());
  // z: the generator's first normal((B, Z)) draws, nothing else taken from it
  Generator g2(43);
  std::vector<double> z = normal({B, Z}, g2, 0, 1, DType::f64).to_vector<double>();
  REQUIRE(t.z.shape() == Shape{B, Z});
  gv::test::expect_close(t.z.to_vector<double>(), z, 0, 0, "z ~ N(0, I) from g");
  CHECK(normal({1}, g, 0, 1, DType::f64).item() == normal({1}, g2, 0, 1, DType::f64).item());
  // the decoder's weight (D, Z) and bias (D)
  std::vector<double> w, c;
  for (const auto& [name, v] : m.named_parameters()) {
    if (is_encoder(name)) continue;
    if (v.shape() == Shape{D, Z}) w = v.data().to_vector<double>();
    if (v.shape() == Shape{D}) c = v.data().to_vector<double>();
  }
  REQUIRE(w.size() == size_t(D * Z));
  REQUIRE(c.size() == size_t(D));
  std::vector<double> xv = x.to_vector<double>();
  double total = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < D; ++j) {
      double l = c[j];
      for (int64_t k = 0; k < Z; ++k) l += w[j * Z + k] * z[b * Z + k];
      total += xv[b * D + j] * l - std::log1p(std::exp(l));
    }
  CHECK(t.bound.item() == doctest::Approx(total / B).epsilon(1e-13));
  CHECK(t.bound.item() < 0);
}

TEST_CASE("naive_objective: z does not depend on x, the encoder plays no part, the gradient reaches the decoder only") {
  VAE m = tiny_mlp({1, 3, 3}, 2, 5, 1, 50);
  auto p = bernoulli();
  Tensor x1 = binary_data({4, 1, 3, 3}, 51), x2 = binary_data({4, 1, 3, 3}, 52);
  Generator g1(53), g2(53);
  NaiveTerms a = naive_objective(m, x1, g1), b = naive_objective(m, x2, g2);
  CHECK(gv::max(gv::abs(a.z - b.z)).item() == 0.0);  // the same z for different data
  CHECK(a.loss.item() != b.loss.item());
  a.loss.backward();
  int encoder_params = 0, decoder_params = 0;
  for (const auto& [name, v] : m.named_parameters()) {
    INFO(name);
    if (is_encoder(name)) {
      ++encoder_params;
      CHECK((!v.grad().defined() || gv::max(gv::abs(v.grad())).item() == 0.0));
    } else {
      ++decoder_params;
      REQUIRE(v.grad().defined());
      CHECK(gv::max(gv::abs(v.grad())).item() > 0);
    }
  }
  CHECK(encoder_params == 4);
  CHECK(decoder_params == 4);
  // scrambling the encoder's weights changes nothing
  for (const auto& [name, v] : m.named_parameters())
    if (is_encoder(name)) {
      Tensor w = v.data();  // a handle on the parameter's storage
      w.fill_(0.37);
    }
  Generator g3(53);
  CHECK(naive_objective(m, x1, g3).loss.item() == a.loss.item());
  // and the gradient is that of the value (float64 finite differences, decoder parameters)
  std::vector<Var> dec;
  for (const auto& [name, v] : m.named_parameters())
    if (!is_encoder(name)) dec.push_back(v);
  auto f = [&](const std::vector<Var>&) {
    Generator g(54);
    return naive_objective(m, x1, g).loss;
  };
  auto res = ag::gradcheck(f, dec);
  INFO(res.message);
  CHECK(res.ok);
  CHECK(gv::test::has(gv::test::error_message([&] {
                        Generator g(1);
                        naive_objective(m, Tensor(), g);
                      }),
                      "naive_objective"));
}

TEST_CASE("eq. (4): on two patterns the naive bound collapses g(z) to the data mean; the ELBO does not") {
  const Tensor x = two_patterns(40);
  auto p = bernoulli();
  // the per-pixel data mean m, and the naive bound's optimum sum_j [m log m + (1 - m) log(1 - m)]:
  // 8 pixels with m = 1/2 contribute -log 2 each, the 8 where the patterns agree 0
  std::vector<double> mean(16);
  for (int j = 0; j < 16; ++j) mean[j] = (kPatternA[j] + kPatternB[j]) / 2;
  const double optimum = -8 * std::log(2.0);

  VAE naive = tiny_mlp({1, 4, 4}, 2, 16, 1, 60, DType::f32);
  VAE vae = tiny_mlp({1, 4, 4}, 2, 16, 1, 60, DType::f32);  // the same initial weights
  const double spread_init = spread(decoder_means(naive, *p, 200, 61));
  train(naive, x, true, 2000, 1e-2);
  train(vae, x, false, 2000, 1e-2);

  auto g_naive = decoder_means(naive, *p, 200, 61), g_vae = decoder_means(vae, *p, 200, 61);
  const double s_naive = spread(g_naive), s_vae = spread(g_vae);
  double worst = 0;  // the largest |g(z)_j - m_j| over the z's and pixels
  for (const auto& r : g_naive)
    for (int j = 0; j < 16; ++j) worst = std::max(worst, std::fabs(r[j] - mean[j]));
  // the naive bound on the data, averaged over many z: at most the optimum, and close to it
  double bound = 0;
  {
    ag::NoGradGuard ng;
    Generator g(62);
    for (int i = 0; i < 20; ++i) bound += naive_objective(naive, x, g).bound.item() / 20;
  }
  MESSAGE("two patterns: spread of g(z) at init " << spread_init << ", naive " << s_naive << ", ELBO " << s_vae
                                                  << "; max |g(z) - m| " << worst << "; naive bound " << bound
                                                  << " vs optimum " << optimum);
  CHECK(s_naive < 1e-4);
  CHECK(s_naive < spread_init / 10);
  CHECK(worst < 0.05);
  CHECK(bound <= optimum + 1e-3);
  CHECK(bound > optimum - 0.1);
  // the ELBO-trained model's g(z) varies with z
  CHECK(s_vae > 0.02);
  CHECK(s_vae > 100 * s_naive);

  // reconstructions through q: decode(mu(x)) gives back each pattern, and the two differ
  ag::NoGradGuard ng;
  Tensor ab = two_patterns(2);
  auto [mu, logvar] = vae.encode(Var(ab));
  std::vector<double> rec = p->mean(vae.factorized().params(mu).data()).to(DType::f64).to_vector<double>();
  double err = 0, apart = 0;
  for (int j = 0; j < 16; ++j) {
    err = std::max({err, std::fabs(rec[j] - kPatternA[j]), std::fabs(rec[16 + j] - kPatternB[j])});
    apart += std::fabs(rec[j] - rec[16 + j]);
  }
  MESSAGE("ELBO model: max reconstruction error " << err << ", L1 distance between the two " << apart);
  CHECK(err < 0.2);
  CHECK(apart > 6);  // the patterns differ in 8 pixels
  // the naive model "reconstructs" both as the mean (its encoder is unused, its decoder ignores z)
  auto [mu_n, lv_n] = naive.encode(Var(ab));
  std::vector<double> rec_n = p->mean(naive.factorized().params(mu_n).data()).to(DType::f64).to_vector<double>();
  double apart_n = 0;
  for (int j = 0; j < 16; ++j) apart_n += std::fabs(rec_n[j] - rec_n[16 + j]);
  CHECK(apart_n < 0.1);
}

}  // namespace file_vae_test_naive_bound
